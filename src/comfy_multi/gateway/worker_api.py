"""The worker channel, `/worker/v1` (docs/worker-protocol.md). Worker tokens only."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import logging
import time
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from comfy_multi.errors import BadRequest, Conflict, NotFound, TooLarge, WorkerNotFound
from comfy_multi.queue.models import ClaimedJob
from comfy_multi.queue.workers import Registration
from comfy_multi.services import extensions as web_extensions
from comfy_multi.services import outputs as output_rules
from comfy_multi.services.auth import PlatformDep, WorkerName

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/worker/v1", include_in_schema=False)

MAX_CLAIM_WAIT_S = 60.0
MAX_PREVIEW_BYTES = 16 * 1024 * 1024
MAX_OBJECT_INFO_BYTES = 128 * 1024 * 1024
# a job-scoped call names its lease: the claim's token and the worker that claimed
LeaseToken = Annotated[str, Header(alias="X-Lease-Token", max_length=200)]
WorkerId = Annotated[str, Header(alias="X-Worker-Id", max_length=200)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ClaimRequest(Strict):
    worker_id: str
    wait_seconds: float = Field(default=25.0, ge=0)


class HeldJob(Strict):
    job_id: str
    lease_token: str = Field(max_length=200)


class HeartbeatRequest(Strict):
    worker_id: str
    jobs: list[HeldJob] = Field(default_factory=list)


class Events(Strict):
    events: list[dict[str, Any]] = Field(max_length=10_000)


class Completion(Strict):
    outputs: dict[str, Any] = Field(default_factory=dict)
    meta: dict[str, Any] = Field(default_factory=dict)


class Failure(Strict):
    error: dict[str, Any]
    requeue: bool = False


@router.get("/whoami")
async def whoami(name: WorkerName) -> dict[str, str]:
    """The worker token's name: a worker started without --name is called after it."""
    return {"name": name}


@router.post("/register")
async def register(body: Registration, name: WorkerName, platform: PlatformDep) -> dict[str, Any]:
    need = await platform.workers.register(body, name)
    await platform.bus.publish({"event": "worker", "worker": {"worker_id": body.worker_id}})
    s = platform.settings
    return {
        "worker_id": body.worker_id,
        "need_object_info": need,
        "heartbeat_seconds": s.heartbeat_seconds,
        "lease_seconds": s.lease_seconds,
        "job_timeout_seconds": s.job_timeout_seconds,
    }


@router.put("/object_info", status_code=204)
async def put_object_info(
    request: Request, digest: str, _: WorkerName, platform: PlatformDep
) -> Response:
    body = await request.body()
    if request.headers.get("content-encoding", "").lower() == "gzip":
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError):
            raise BadRequest("the object_info body is not valid gzip") from None
    if len(body) > MAX_OBJECT_INFO_BYTES:
        raise TooLarge("object_info is larger than the gateway accepts")
    if hashlib.sha256(body).hexdigest() != digest:
        raise BadRequest("object_info does not match its digest")
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequest("object_info is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise BadRequest("object_info must be a JSON object of node definitions")
    await platform.workers.store_object_info(digest, body)
    return Response(status_code=204)


class ExtensionSet(Strict):
    worker_id: str = Field(min_length=1, max_length=100)
    files: dict[str, Any] = Field(default_factory=dict)


@router.post("/extensions")
async def post_extensions(
    body: ExtensionSet, _: WorkerName, platform: PlatformDep
) -> dict[str, Any]:
    """A worker's web extension set, `{url path: {sha256, size}}`: the files the
    gateway still lacks come back as `missing`; once none are, the set is the
    worker's and its participants' pages load it."""
    if not await platform.workers.seen(body.worker_id):
        raise WorkerNotFound(body.worker_id)
    checked = web_extensions.check_manifest(body.files)
    manifest = {path: sha for path, (sha, _size) in checked.items()}
    digest = web_extensions.manifest_digest(manifest)
    if await platform.extensions.known(digest):
        missing: list[str] = []
    else:
        missing = platform.extension_files.missing(set(manifest.values()))
        if not missing:
            await platform.extensions.store(digest, manifest)
    if not missing:
        await platform.extensions.publish(body.worker_id, digest)
        logger.info(
            "worker %s serves %d extension files (%s)", body.worker_id, len(manifest), digest[:12]
        )
    return {"digest": digest, "missing": missing}


@router.put("/extensions/files/{sha256}", status_code=204)
async def put_extension_file(
    sha256: str, request: Request, _: WorkerName, platform: PlatformDep
) -> Response:
    await platform.extension_files.write(sha256, request.stream())
    return Response(status_code=204)


@router.post("/claim", response_model=None)
async def claim(
    body: ClaimRequest, request: Request, _: WorkerName, platform: PlatformDep
) -> ClaimedJob | Response:
    """Long-poll: answers the moment a job this worker can run is queued."""
    deadline = time.monotonic() + min(body.wait_seconds, MAX_CLAIM_WAIT_S)
    while True:
        changed = platform.bus.queue_generation()
        if platform.stopping.is_set():
            return Response(status_code=204)
        if not await platform.workers.seen(body.worker_id):
            raise WorkerNotFound(body.worker_id)
        if await request.is_disconnected():
            return Response(status_code=204)
        job = await platform.queue.claim(body.worker_id)
        if job is not None:
            if await request.is_disconnected():  # the worker hung up meanwhile
                await platform.queue.fail(
                    job.job_id, job.lease_token, body.worker_id, {}, mode="release"
                )
                return Response(status_code=204)
            return job
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return Response(status_code=204)
        # wake at least every few seconds: the lease sweep may have requeued a job
        if await _wait_for_change(changed, platform.stopping, min(remaining, 5.0)):
            return Response(status_code=204)  # the gateway is stopping


async def _wait_for_change(
    changed: asyncio.Event, stopping: asyncio.Event, within_s: float
) -> bool:
    """Wait for a queue change; True if the gateway began stopping instead."""
    waits = [asyncio.ensure_future(changed.wait()), asyncio.ensure_future(stopping.wait())]
    try:
        await asyncio.wait(waits, timeout=within_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()
    return stopping.is_set()


@router.post("/heartbeat")
async def heartbeat(body: HeartbeatRequest, _: WorkerName, platform: PlatformDep) -> dict[str, Any]:
    if not await platform.workers.seen(body.worker_id):
        raise WorkerNotFound(body.worker_id)
    lost = [
        held.job_id
        for held in body.jobs
        if not await platform.queue.extend_lease(held.job_id, held.lease_token, body.worker_id)
    ]
    return {
        "cancel": await platform.workers.take_cancels(body.worker_id),
        "lease_lost": lost,
        "drain": await platform.workers.is_draining(body.worker_id),
    }


@router.get("/jobs/{job_id}/inputs")
async def get_input(
    job_id: str,
    token: LeaseToken,
    worker_id: WorkerId,
    _: WorkerName,
    platform: PlatformDep,
    filename: str,
    subfolder: str = "",
    type: Annotated[str, Query(pattern="^input$")] = "input",
) -> FileResponse:
    await platform.queue.lease_holder(job_id, token, worker_id)
    job = await platform.queue.get(job_id)
    if not any(i.filename == filename and i.subfolder == subfolder for i in job.inputs):
        raise NotFound(f"{filename!r} is not one of this job's input files")
    path = platform.files.resolve(job.user, type, subfolder, filename)
    if not path.is_file():
        raise NotFound(f"the input file {filename!r} is gone from the user's folder")
    return FileResponse(path)


@router.post("/jobs/{job_id}/events", status_code=204)
async def post_events(
    job_id: str,
    body: Events,
    token: LeaseToken,
    worker_id: WorkerId,
    _: WorkerName,
    platform: PlatformDep,
) -> Response:
    # host paths (VHS's fullpath) stop here, before anything reaches a participant
    events = [
        {**e, "data": output_rules.scrub_event(str(e.get("type")), e["data"])}
        if isinstance(e.get("data"), dict)
        else e
        for e in body.events
    ]
    await platform.queue.relay(job_id, token, worker_id, events)
    return Response(status_code=204)


@router.put("/jobs/{job_id}/preview", status_code=204)
async def put_preview(
    job_id: str,
    request: Request,
    token: LeaseToken,
    worker_id: WorkerId,
    _: WorkerName,
    platform: PlatformDep,
    meta: Annotated[str | None, Header(alias="X-Preview-Meta")] = None,
) -> Response:
    user, client_id = await platform.queue.lease_holder(job_id, token, worker_id)
    image = await request.body()
    if len(image) > MAX_PREVIEW_BYTES:
        raise TooLarge("preview image too large")
    content_type = request.headers.get("content-type", "image/jpeg")
    if content_type not in ("image/jpeg", "image/png", "image/webp"):
        raise BadRequest("a preview must be image/jpeg, image/png or image/webp")
    try:
        meta_obj = orjson.loads(meta) if meta else None
    except orjson.JSONDecodeError:
        raise BadRequest("X-Preview-Meta is not valid JSON") from None
    header = {
        "user": user,
        "job_id": job_id,
        "client_id": client_id,
        "content_type": content_type,
        "meta": meta_obj,
    }
    await platform.bus.publish_preview(header, image)
    return Response(status_code=204)


@router.put("/jobs/{job_id}/outputs")
async def put_output(
    job_id: str,
    request: Request,
    token: LeaseToken,
    worker_id: WorkerId,
    _: WorkerName,
    platform: PlatformDep,
    filename: str,
    subfolder: str = "",
    type: Annotated[str, Query(pattern="^(output|temp)$")] = "output",
) -> dict[str, str]:
    user, _client = await platform.queue.lease_holder(job_id, token, worker_id)
    stored, folder = await platform.files.write_stream(
        user,
        type,
        subfolder,
        filename,
        request.stream(),
        max_bytes=platform.settings.max_output_bytes,
    )
    logger.info("job %s: output %s/%s stored for %s", job_id, folder, stored, user)
    return {"filename": stored, "subfolder": folder, "type": type}


@router.post("/jobs/{job_id}/complete", status_code=204)
async def complete(
    job_id: str,
    body: Completion,
    token: LeaseToken,
    worker_id: WorkerId,
    _: WorkerName,
    platform: PlatformDep,
) -> Response:
    outputs = output_rules.scrub_outputs(body.outputs)
    await platform.queue.complete(job_id, token, worker_id, outputs, body.meta)
    return Response(status_code=204)


@router.post("/jobs/{job_id}/fail", status_code=204)
async def fail(
    job_id: str,
    body: Failure,
    token: LeaseToken,
    worker_id: WorkerId,
    _: WorkerName,
    platform: PlatformDep,
) -> Response:
    mode = "retry" if body.requeue else "fail"
    await platform.queue.fail(job_id, token, worker_id, body.error, mode=mode)
    return Response(status_code=204)


@router.post("/jobs/{job_id}/release", status_code=204)
async def release(
    job_id: str, token: LeaseToken, worker_id: WorkerId, _: WorkerName, platform: PlatformDep
) -> Response:
    await platform.queue.fail(job_id, token, worker_id, {"type": "released"}, mode="release")
    return Response(status_code=204)


@router.post("/jobs/{job_id}/cancelled", status_code=204)
async def cancelled(job_id: str, _: WorkerName, platform: PlatformDep) -> Response:
    job = await platform.queue.get(job_id)
    if not job.state.final:
        raise Conflict(f"job {job_id!r} was not cancelled; it is {job.state}")
    logger.info("job %s: worker confirmed the interrupt", job_id)
    return Response(status_code=204)
