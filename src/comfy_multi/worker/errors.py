"""Errors of the worker side, under the platform's tree in ``comfy_multi.errors``.

    ComfyMultiError
    └── WorkerError
        ├── ComfyUIUnavailable   ComfyUI did not answer (refused, timed out, 5xx)
        ├── ComfyUIRejected      ComfyUI answered POST /prompt with 400; carries its body
        ├── ComfyUIFileMissing   /view has no such file
        ├── GatewayUnavailable   the gateway could not be reached or answered 5xx (retried)
        ├── GatewayRejected      the gateway refused a call the worker cannot fix (4xx)
        └── GatewayAnswerInvalid the gateway's answer is not what the protocol says

The gateway's 401, 404, 409 ``lease_lost`` and 413 answers raise the platform's own
``Unauthorized``, ``NotFound``, ``LeaseLost`` and ``TooLarge``.
"""

from __future__ import annotations

from typing import Any

from comfy_multi.errors import ComfyMultiError


class WorkerError(ComfyMultiError):
    """Base of the worker's own errors."""


class ComfyUIUnavailable(WorkerError):
    def __init__(self, url: str, why: str) -> None:
        super().__init__(f"ComfyUI at {url} is not answering: {why}")
        self.url = url
        self.why = why


class ComfyUIRejected(WorkerError):
    """ComfyUI refused the prompt; ``body`` is its ``{error, node_errors}`` answer."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        error = body.get("error")
        message = error.get("message") if isinstance(error, dict) else error
        super().__init__(f"ComfyUI refused the prompt (HTTP {status}): {message}")
        self.status = status
        self.body = body


class ComfyUIFileMissing(WorkerError):
    def __init__(self, filename: str, subfolder: str, kind: str, status: int) -> None:
        where = f"{subfolder}/{filename}" if subfolder else filename
        super().__init__(f"ComfyUI has no {kind} file {where!r} (HTTP {status})")
        self.filename = filename
        self.subfolder = subfolder
        self.kind = kind


class GatewayUnavailable(WorkerError):
    def __init__(self, url: str, why: str) -> None:
        super().__init__(f"gateway at {url} is not answering: {why}")
        self.url = url
        self.why = why


class GatewayRejected(WorkerError):
    def __init__(self, call: str, status: int, body: str) -> None:
        super().__init__(f"gateway refused {call} (HTTP {status}): {body[:300]}")
        self.call = call
        self.status = status
        self.body = body


class GatewayAnswerInvalid(WorkerError):
    """The gateway answered, but not with the protocol's shape (another version?)."""

    def __init__(self, call: str, expected: str, problem: str) -> None:
        super().__init__(
            f"the gateway's answer to {call} is not a valid {expected} ({problem}); "
            "are the gateway and this worker the same comfy-multi version?"
        )
        self.call = call
        self.expected = expected
        self.problem = problem
