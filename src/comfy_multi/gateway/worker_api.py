"""The worker channel, `/worker/v1` (docs/worker-protocol.md). Worker tokens only."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from typing import Annotated

import orjson
from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import FileResponse

from comfy_multi import wire
from comfy_multi.errors import BadRequest, Conflict, NotFound, TooLarge, WorkerNotFound
from comfy_multi.gateway.unpack import gunzip, off_loop
from comfy_multi.services import extensions as web_extensions
from comfy_multi.services import outputs as output_rules
from comfy_multi.services.auth import PlatformDep, WorkerName

logger = logging.getLogger(__name__)

router = APIRouter(prefix=wire.PREFIX, include_in_schema=False)

MAX_PREVIEW_BYTES = 16 * 1024 * 1024
LeaseToken = Annotated[wire.LeaseToken, Header(alias=wire.LEASE_HEADER)]
WorkerId = Annotated[str, Header(alias=wire.WORKER_ID_HEADER, max_length=200)]
ObjectInfoQuery = Annotated[wire.ObjectInfoQuery, Query()]
InputQuery = Annotated[wire.InputQuery, Query()]
OutputQuery = Annotated[wire.OutputQuery, Query()]


@router.get("/whoami")
async def whoami(name: WorkerName) -> wire.WhoAmI:
    """The worker token's name: a worker started without --name is called after it."""
    return wire.WhoAmI(name=name)


@router.post("/register")
async def register(
    body: wire.Registration, name: WorkerName, platform: PlatformDep
) -> wire.Registered:
    need = await platform.workers.register(body, name)
    await platform.bus.publish({"event": "worker", "worker": {"worker_id": body.worker_id}})
    s = platform.settings
    return wire.Registered(
        worker_id=body.worker_id,
        need_object_info=need,
        heartbeat_seconds=s.heartbeat_seconds,
        lease_seconds=s.lease_seconds,
        job_timeout_seconds=s.job_timeout_seconds,
    )


@router.put("/object_info", status_code=204)
async def put_object_info(
    request: Request, query: ObjectInfoQuery, _: WorkerName, platform: PlatformDep
) -> Response:
    body = await request.body()  # the packed size is bounded by the body limit
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip"):
        raise BadRequest(f"object_info may be sent plain or gzip, not {encoding!r}")
    budget = platform.settings.max_object_info_bytes
    plain = await off_loop(
        lambda: _checked_object_info(body, encoding == "gzip", budget, query.digest)
    )
    await platform.workers.store_object_info(query.digest, plain)
    return Response(status_code=204)


def _checked_object_info(body: bytes, packed: bool, budget: int, digest: str) -> bytes:
    """The unpacked, checked object_info; on the unpacking thread (it may be MBs)."""
    plain = gunzip(body, budget, "object_info") if packed else body
    if len(plain) > budget:
        raise TooLarge(f"object_info is larger than the {budget:,} bytes allowed")
    if hashlib.sha256(plain).hexdigest() != digest:
        raise BadRequest("object_info does not match its digest")
    try:
        parsed = orjson.loads(plain)
    except orjson.JSONDecodeError:
        raise BadRequest("object_info is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise BadRequest("object_info must be a JSON object of node definitions")
    return plain


@router.post("/extensions")
async def post_extensions(
    body: wire.ExtensionSet, name: WorkerName, platform: PlatformDep
) -> wire.ExtensionsAnswer:
    """A worker's web extension set, `{url path: {sha256, size}}`: the files the
    gateway still lacks come back as `missing`; once none are, the set is the
    worker's and its participants' pages load it."""
    if not await platform.workers.seen(body.worker_id, name):
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
    return wire.ExtensionsAnswer(digest=digest, missing=missing)


@router.put("/extensions/files/{sha256}", status_code=204)
async def put_extension_file(
    sha256: str, request: Request, _: WorkerName, platform: PlatformDep
) -> Response:
    await platform.extension_files.write(sha256, request.stream())
    return Response(status_code=204)


@router.post("/claim", response_model=None)
async def claim(
    body: wire.ClaimRequest, request: Request, name: WorkerName, platform: PlatformDep
) -> wire.ClaimedJob | Response:
    """Long-poll: answers the moment a job this worker can run is queued."""
    deadline = time.monotonic() + min(body.wait_seconds, wire.MAX_CLAIM_WAIT_S)
    while True:
        changed = platform.bus.queue_generation()
        if platform.stopping.is_set():
            return Response(status_code=204)
        if not await platform.workers.seen(body.worker_id, name):
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
async def heartbeat(
    body: wire.Heartbeat, name: WorkerName, platform: PlatformDep
) -> wire.HeartbeatAnswer:
    if not await platform.workers.seen(body.worker_id, name):
        raise WorkerNotFound(body.worker_id)
    lost = [
        held.job_id
        for held in body.jobs
        if not await platform.queue.extend_lease(held.job_id, held.lease_token, body.worker_id)
    ]
    return wire.HeartbeatAnswer(
        cancel=await platform.workers.take_cancels(body.worker_id),
        lease_lost=lost,
        drain=await platform.workers.is_draining(body.worker_id),
    )


@router.get("/jobs/{job_id}/inputs")
async def get_input(
    job_id: str,
    query: InputQuery,
    token: LeaseToken,
    worker_id: WorkerId,
    _: WorkerName,
    platform: PlatformDep,
) -> FileResponse:
    await platform.queue.lease_holder(job_id, token, worker_id)
    job = await platform.queue.get(job_id)
    wanted = (query.filename, query.subfolder)
    if not any((i.filename, i.subfolder) == wanted for i in job.inputs):
        raise NotFound(f"{query.filename!r} is not one of this job's input files")
    path = platform.files.resolve(job.user, query.type, query.subfolder, query.filename)
    if not path.is_file():
        raise NotFound(f"the input file {query.filename!r} is gone from the user's folder")
    return FileResponse(path)


@router.post("/jobs/{job_id}/events", status_code=204)
async def post_events(
    job_id: str,
    body: wire.Events,
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
        for e in (event.model_dump() for event in body.events)
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
    meta: Annotated[str | None, Header(alias=wire.PREVIEW_META_HEADER)] = None,
) -> Response:
    user, client_id = await platform.queue.lease_holder(job_id, token, worker_id)
    image = await request.body()
    if len(image) > MAX_PREVIEW_BYTES:
        raise TooLarge("preview image too large")
    content_type = request.headers.get("content-type", "image/jpeg")
    if content_type not in wire.PREVIEW_TYPES:
        raise BadRequest(f"a preview must be one of {', '.join(wire.PREVIEW_TYPES)}")
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
    query: OutputQuery,
    platform: PlatformDep,
) -> wire.StoredOutput:
    user, _client = await platform.queue.lease_holder(job_id, token, worker_id)
    stored, folder = await platform.files.write_stream(
        user,
        query.type,
        query.subfolder,
        query.filename,
        request.stream(),
        max_bytes=platform.settings.max_output_bytes,
    )
    logger.info("job %s: output %.200s/%s stored for %s", job_id, folder, stored, user)
    return wire.StoredOutput(filename=stored, subfolder=folder, type=query.type)


@router.post("/jobs/{job_id}/complete", status_code=204)
async def complete(
    job_id: str,
    body: wire.Completion,
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
    body: wire.Failure,
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
