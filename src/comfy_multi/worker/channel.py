"""The gateway's worker channel ``/worker/v1`` (see docs/worker-protocol.md).

Requests are built and answers read with the protocol's own models
(``comfy_multi.wire``, which the gateway uses too); an answer that does not fit
raises ``GatewayAnswerInvalid``. Calls that must land (register, claim,
complete, fail ...) retry with backoff and jitter while the gateway is
unreachable or answers 5xx. Job-scoped calls carry the lease token; a 409
raises ``LeaseLost`` and the job must be dropped.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import logging
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import httpx
import pydantic

from comfy_multi import wire
from comfy_multi.errors import LeaseLost, NotFound, TooLarge, Unauthorized
from comfy_multi.wire import ClaimedJob, InputRef
from comfy_multi.worker.errors import GatewayAnswerInvalid, GatewayRejected, GatewayUnavailable
from comfy_multi.worker.retry import Backoff, retrying

logger = logging.getLogger(__name__)

T = TypeVar("T")
A = TypeVar("A", bound=pydantic.BaseModel)

CONNECT_TIMEOUT = 5.0
CALL_TIMEOUT = 30.0
HEARTBEAT_TIMEOUT = 10.0
PREVIEW_TIMEOUT = 10.0
CLAIM_SLACK = 15.0  # beyond wait_seconds before a claim counts as hung
TRANSIENT_STATUSES = {408, 425, 429, 500, 502, 503, 504}


class Channel:
    """One gateway, as seen by one worker process."""

    def __init__(
        self, url: str, token: str, worker_id: str, *, backoff: Backoff | None = None
    ) -> None:
        self.url = url.rstrip("/")
        self.worker_id = worker_id
        self.backoff = backoff or Backoff()
        self._http = httpx.AsyncClient(
            base_url=f"{self.url}{wire.PREFIX}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(CALL_TIMEOUT, connect=CONNECT_TIMEOUT),
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- plumbing ---------------------------------------------------------

    async def _send(
        self, method: str, path: str, *, job: ClaimedJob | None = None, **kwargs: Any
    ) -> httpx.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if job is not None:
            headers[wire.LEASE_HEADER] = job.lease_token
            headers[wire.WORKER_ID_HEADER] = self.worker_id
        try:
            response = await self._http.request(method, path, headers=headers, **kwargs)
        except httpx.TransportError as exc:
            raise GatewayUnavailable(self.url, f"{method} {path}: {_describe(exc)}") from exc
        self._check(response, f"{method} {path}", job)
        return response

    def _check(self, response: httpx.Response, call: str, job: ClaimedJob | None) -> None:
        status = response.status_code
        if status < 300:
            return
        code, message = _error_of(response)
        if status == 401:
            raise Unauthorized(message or "the gateway refused the worker token")
        if job is not None and (status == 409 or code == "job_not_found"):
            raise LeaseLost(job.job_id, message or code or "lease lost")
        if status == 404:
            raise NotFound(message or f"{call}: not found")
        if status == 413:
            raise TooLarge(message or f"{call}: too large")
        if status in TRANSIENT_STATUSES:
            raise GatewayUnavailable(self.url, f"{call} answered {status}: {message or code}")
        raise GatewayRejected(call, status, message or response.text)

    def _answer(self, response: httpx.Response, model: type[A], call: str) -> A:
        """The answer as the protocol says it is, or ``GatewayAnswerInvalid``."""
        try:
            return model.model_validate_json(response.content)
        except pydantic.ValidationError as exc:
            raise GatewayAnswerInvalid(call, model.__name__, _first_problem(exc)) from None

    async def _retried(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        return await retrying(call, backoff=self.backoff, what=what)

    async def _call(
        self, what: str, method: str, path: str, *, job: ClaimedJob | None = None, **kwargs: Any
    ) -> httpx.Response:
        return await self._retried(what, lambda: self._send(method, path, job=job, **kwargs))

    # --- worker-scoped ------------------------------------------------------

    async def token_name(self) -> str:
        response = await self._call("ask the worker token's name", "GET", "/whoami")
        return str(response.json().get("name") or "")

    async def register(self, registration: wire.Registration) -> wire.Registered:
        if registration.worker_id != self.worker_id:
            raise ValueError(f"registering {registration.worker_id!r} on {self.worker_id!r}")
        response = await self._call(
            f"register worker {self.worker_id}",
            "POST",
            "/register",
            json=registration.model_dump(mode="json"),
        )
        return self._answer(response, wire.Registered, "POST /register")

    async def put_object_info(self, digest: str, raw: bytes) -> None:
        query = wire.ObjectInfoQuery(digest=digest)
        packed = await asyncio.to_thread(gzip.compress, raw, 6)
        await self._call(
            f"upload object_info {digest[:12]}",
            "PUT",
            "/object_info",
            params=query.model_dump(),
            content=packed,
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        )

    async def sync_extensions(self, files: dict[str, bytes]) -> str:
        """Hand the gateway this worker's web extension files; only those it
        lacks (by content hash) travel. Returns the set's digest."""
        manifest = {
            path: {"sha256": hashlib.sha256(body).hexdigest(), "size": len(body)}
            for path, body in files.items()
        }
        by_hash = {entry["sha256"]: files[path] for path, entry in manifest.items()}
        what = f"send web extensions of worker {self.worker_id}"
        body = {"worker_id": self.worker_id, "files": manifest}
        answer = (await self._call(what, "POST", "/extensions", json=body)).json()
        for sha in answer.get("missing") or []:
            if sha not in by_hash:
                continue
            await self._call(
                f"upload extension file {sha[:12]}",
                "PUT",
                f"/extensions/files/{sha}",
                content=by_hash[sha],
                headers={"Content-Type": "application/octet-stream"},
            )
        if answer.get("missing"):
            answer = (await self._call(what, "POST", "/extensions", json=body)).json()
        return str(answer.get("digest", ""))

    async def claim(self, wait_seconds: float) -> ClaimedJob | None:
        request = wire.ClaimRequest(worker_id=self.worker_id, wait_seconds=wait_seconds)
        response = await self._call(
            f"claim for worker {self.worker_id}",
            "POST",
            "/claim",
            json=request.model_dump(mode="json"),
            timeout=httpx.Timeout(wait_seconds + CLAIM_SLACK, connect=CONNECT_TIMEOUT),
        )
        if response.status_code == 204 or not response.content:
            return None
        return self._answer(response, ClaimedJob, "POST /claim")

    async def heartbeat(self, jobs: list[ClaimedJob]) -> wire.HeartbeatAnswer:
        """One heartbeat, not retried: the next one is due soon anyway."""
        request = wire.Heartbeat(
            worker_id=self.worker_id,
            jobs=[wire.HeldJob(job_id=j.job_id, lease_token=j.lease_token) for j in jobs],
        )
        response = await self._send(
            "POST", "/heartbeat", json=request.model_dump(mode="json"), timeout=HEARTBEAT_TIMEOUT
        )
        return self._answer(response, wire.HeartbeatAnswer, "POST /heartbeat")

    # --- job-scoped ---------------------------------------------------------

    @asynccontextmanager
    async def input_file(self, job: ClaimedJob, item: InputRef) -> AsyncIterator[httpx.Response]:
        """The user's input file as an open stream; read it with ``chunks``."""

        async def open_stream() -> httpx.Response:
            query = wire.InputQuery(filename=item.filename, subfolder=item.subfolder)
            request = self._http.build_request(
                "GET",
                f"/jobs/{job.job_id}/inputs",
                params=query.model_dump(),
                headers={wire.LEASE_HEADER: job.lease_token, wire.WORKER_ID_HEADER: self.worker_id},
            )
            try:
                response = await self._http.send(request, stream=True)
            except httpx.TransportError as exc:
                raise GatewayUnavailable(self.url, f"input {item.ref!r}: {_describe(exc)}") from exc
            if response.status_code >= 300:
                await response.aread()
                await response.aclose()
                self._check(response, f"GET input {item.ref!r}", job)
            return response

        response = await self._retried(f"job {job.job_id}: fetch input {item.ref!r}", open_stream)
        try:
            yield response
        finally:
            await response.aclose()

    async def chunks(self, response: httpx.Response) -> AsyncIterator[bytes]:
        """A gateway body; a broken read raises ``GatewayUnavailable``."""
        try:
            async for chunk in response.aiter_bytes():
                yield chunk
        except httpx.TransportError as exc:
            raise GatewayUnavailable(self.url, f"download broke off: {_describe(exc)}") from exc

    async def post_events(self, job: ClaimedJob, events: list[wire.Event]) -> None:
        """One attempt; the relay retries, merging what arrived meanwhile."""
        batch = wire.Events(events=events)
        await self._send(
            "POST", f"/jobs/{job.job_id}/events", job=job, json=batch.model_dump(mode="json")
        )

    async def put_preview(
        self, job: ClaimedJob, image: bytes, content_type: str, meta: dict[str, Any] | None
    ) -> None:
        if content_type not in wire.PREVIEW_TYPES:
            raise ValueError(f"a preview cannot be {content_type!r}")
        headers = {"Content-Type": content_type}
        if meta is not None:
            headers[wire.PREVIEW_META_HEADER] = json.dumps(meta, separators=(",", ":"))
        await self._send(
            "PUT",
            f"/jobs/{job.job_id}/preview",
            job=job,
            content=image,
            headers=headers,
            timeout=PREVIEW_TIMEOUT,
        )

    async def put_output(
        self,
        job: ClaimedJob,
        *,
        filename: str,
        subfolder: str,
        kind: str,
        content: AsyncIterable[bytes] | bytes,
        size: int | None,
    ) -> wire.StoredOutput:
        """Stream one output file up; one attempt (a retry must reopen the source)."""
        query = wire.OutputQuery.model_validate(
            {"filename": filename, "subfolder": subfolder, "type": kind}
        )
        headers = {"Content-Type": "application/octet-stream"}
        if size is not None:
            headers["Content-Length"] = str(size)
        response = await self._send(
            "PUT",
            f"/jobs/{job.job_id}/outputs",
            job=job,
            params=query.model_dump(),
            content=content,
            headers=headers,
        )
        return self._answer(response, wire.StoredOutput, "PUT /jobs/{job_id}/outputs")

    async def complete(
        self, job: ClaimedJob, outputs: dict[str, Any], meta: dict[str, Any]
    ) -> None:
        await self._call(
            f"job {job.job_id}: complete",
            "POST",
            f"/jobs/{job.job_id}/complete",
            job=job,
            json=wire.Completion(outputs=outputs, meta=meta).model_dump(mode="json"),
        )

    async def fail(self, job: ClaimedJob, error: dict[str, Any], *, requeue: bool) -> None:
        await self._call(
            f"job {job.job_id}: fail",
            "POST",
            f"/jobs/{job.job_id}/fail",
            job=job,
            json=wire.Failure(error=error, requeue=requeue).model_dump(mode="json"),
        )

    async def cancelled(self, job: ClaimedJob) -> None:
        await self._call(
            f"job {job.job_id}: report cancelled", "POST", f"/jobs/{job.job_id}/cancelled", job=job
        )

    async def release(self, job: ClaimedJob) -> None:
        await self._call(
            f"job {job.job_id}: release", "POST", f"/jobs/{job.job_id}/release", job=job
        )


def _error_of(response: httpx.Response) -> tuple[str, str]:
    """(code, message) of an error answer; a proxy's page gives its text instead."""
    try:
        body = wire.ErrorBody.model_validate_json(response.content)
    except pydantic.ValidationError:
        return "", response.text[:300]
    return body.error, body.message


def _first_problem(exc: pydantic.ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ())) or "the body"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {first.get('msg', 'invalid')}{more}"


def _describe(exc: httpx.TransportError) -> str:
    return str(exc) or type(exc).__name__
