"""Every error the platform raises on purpose.

    ComfyMultiError            (500 unless a subclass says otherwise)
    ├── ConfigError            bad settings or environment, at start-up
    ├── StoreUnavailable       Redis cannot be reached (503)
    └── RequestError           the caller's fault or state; has an HTTP status
        ├── BadRequest         400
        ├── PromptInvalid      400, carries ComfyUI's {error, node_errors}
        ├── Unauthorized       401
        ├── Forbidden          403
        ├── NotFound           404 (JobNotFound, UserNotFound, WorkerNotFound)
        ├── Conflict           409 (LeaseLost, AlreadyExists, WorkerIdTaken)
        ├── TooLarge           413
        ├── QueueFull          429 (per-user pending cap)
        ├── TooManyAttempts    429 with Retry-After (sign-in throttle)
        ├── Busy               503 with Retry-After (too much work of one kind at once)
        ├── StoreFull          503 (Redis reached its maxmemory)
        └── NoWorkerYet        503 (no GPU worker has ever registered)

The gateway maps the RequestError branch to JSON `{"error": code, "message": text}`.
"""

from __future__ import annotations

from typing import Any

from comfy_multi.wording import plural, sentence


class ComfyMultiError(Exception):
    """Base of every deliberate error."""


class ConfigError(ComfyMultiError):
    """Settings or environment are wrong; the message is one readable line."""


class StoreUnavailable(ComfyMultiError):
    status = 503
    code = "store_unavailable"


class RequestError(ComfyMultiError):
    status = 400
    code = "bad_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "message": sentence(self.message)}

    @property
    def headers(self) -> dict[str, str]:
        return {}


class BadRequest(RequestError):
    pass


class PromptInvalid(RequestError):
    """ComfyUI-shaped validation failure: the body is ComfyUI's own 400 shape."""

    code = "invalid_prompt"

    def __init__(self, error: dict[str, Any], node_errors: dict[str, Any]) -> None:
        super().__init__(str(error.get("message", "invalid prompt")))
        self.error = error
        self.node_errors = node_errors

    def body(self) -> dict[str, Any]:
        return {"error": self.error, "node_errors": self.node_errors}


class Unauthorized(RequestError):
    status = 401
    code = "unauthorized"


class Forbidden(RequestError):
    status = 403
    code = "forbidden"


class NotFound(RequestError):
    status = 404
    code = "not_found"


class JobNotFound(NotFound):
    code = "job_not_found"

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id!r} does not exist or was deleted")
        self.job_id = job_id


class UserNotFound(NotFound):
    code = "user_not_found"

    def __init__(self, name: str) -> None:
        super().__init__(f"user {name!r} does not exist")
        self.name = name


class WorkerNotFound(NotFound):
    code = "worker_not_found"

    def __init__(self, worker_id: str) -> None:
        super().__init__(f"worker {worker_id!r} is not registered")
        self.worker_id = worker_id


class Conflict(RequestError):
    status = 409
    code = "conflict"


class LeaseLost(Conflict):
    code = "lease_lost"

    def __init__(self, job_id: str, why: str) -> None:
        super().__init__(f"job {job_id!r} is no longer yours: {why}")
        self.job_id = job_id


class AlreadyExists(Conflict):
    code = "already_exists"


class WorkerIdTaken(Conflict):
    code = "worker_id_taken"

    def __init__(self, worker_id: str) -> None:
        super().__init__(
            f"worker id {worker_id!r} belongs to another worker token; "
            "each worker must use an id of its own"
        )
        self.worker_id = worker_id


class TooLarge(RequestError):
    status = 413
    code = "too_large"


class QueueFull(RequestError):
    status = 429
    code = "queue_full"
    title = "Queue limit reached"  # ComfyUI shows it as the heading; the message goes below

    def __init__(self, waiting: int) -> None:
        its = "it" if waiting == 1 else "one"
        super().__init__(
            f"You already have {plural(waiting, 'job')} waiting, the most allowed per person. "
            f"Wait for {its} to finish, or cancel {its}."
        )
        self.waiting = waiting


class TooManyAttempts(RequestError):
    status = 429
    code = "too_many_attempts"

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = max(1, retry_after_s)

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}


class Busy(TooManyAttempts):
    status = 503
    code = "busy"


class StoreFull(RequestError):
    status = 503
    code = "store_full"

    def __init__(self) -> None:
        super().__init__(
            "the queue store is full (its memory limit is reached), so nothing new can be "
            "saved; the instructor can remove old jobs or raise COMFY_MULTI_REDIS_MAXMEMORY_MB"
        )


class NoWorkerYet(RequestError):
    status = 503
    code = "no_worker"

    def __init__(self) -> None:
        super().__init__(
            "no GPU worker has connected yet, so nothing can run; "
            "the instructor needs to start one (comfy-multi worker ...)"
        )
