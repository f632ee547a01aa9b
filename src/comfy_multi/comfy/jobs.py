"""Queue, history and jobs routes (ComfyUI server.py and comfy_execution/jobs.py),
each answering for the signed-in participant's own jobs only."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from comfy_multi.comfy import jobview, userjobs
from comfy_multi.comfy.access import Participant
from comfy_multi.queue.models import JobState
from comfy_multi.services import jsonbody
from comfy_multi.services.auth import PlatformDep
from comfy_multi.services.node_checks import short

router = APIRouter()


async def json_body(request: Request) -> dict[str, Any]:
    """The body as a JSON object; ComfyUI treats an empty or odd body as `{}`.
    Nesting too deep to handle safely is a 400 (jsonbody.TooDeep)."""
    try:
        data = await jsonbody.read(request) if await request.body() else {}
    except jsonbody.TooDeep:
        raise
    except jsonbody.NotJson:
        return {}
    return data if isinstance(data, dict) else {}


def _bad(message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=400)


def _parse_int(value: str | None, name: str) -> int | JSONResponse | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return _bad(f"{name} must be an integer")


@router.get("/jobs")
async def list_jobs(request: Request, user: Participant, platform: PlatformDep) -> Response:
    q = request.query_params
    statuses = None
    if q.get("status"):
        statuses = [s.strip() for s in q["status"].split(",") if s.strip()]
        invalid = [s for s in statuses if s not in jobview.ALL_STATUSES]
        if invalid:
            return _bad(
                f"Invalid status value(s): {', '.join(invalid)}. "
                f"Valid values: {', '.join(jobview.ALL_STATUSES)}"
            )
    sort_by = q.get("sort_by", "created_at")
    if sort_by not in ("created_at", "execution_duration"):
        return _bad("sort_by must be 'created_at' or 'execution_duration'")
    sort_order = q.get("sort_order", "desc")
    if sort_order not in ("asc", "desc"):
        return _bad("sort_order must be 'asc' or 'desc'")
    limit = _parse_int(q.get("limit"), "limit")
    offset = _parse_int(q.get("offset"), "offset")
    if isinstance(limit, JSONResponse):
        return limit
    if isinstance(offset, JSONResponse):
        return offset
    if limit is not None and limit <= 0:
        return _bad("limit must be a positive integer")
    offset = max(offset or 0, 0)
    rows = await userjobs.listing(
        platform,
        user.name,
        statuses,
        sort_by=sort_by,
        descending=sort_order == "desc",
        workflow=q.get("workflow_id"),
    )
    total = len(rows)
    page = rows[offset : offset + limit] if limit is not None else rows[offset:]
    jobs = {j.id: j for j in await platform.queue.get_many([r.id for r in page])}
    items = [jobview.job_item(jobs[r.id]) for r in page if r.id in jobs]
    return JSONResponse(
        {
            "jobs": items,
            "pagination": {
                "offset": offset,
                "limit": limit if limit is not None else total,
                "total": total,
                "has_more": offset + len(page) < total,
            },
        }
    )


@router.post("/jobs/cancel")
async def cancel_jobs(request: Request, user: Participant, platform: PlatformDep) -> Response:
    body = await json_body(request)
    job_ids = body.get("job_ids")
    if not isinstance(job_ids, list) or not job_ids:
        return _bad("job_ids must be a non-empty list of job ids")
    for job_id in job_ids:
        try:
            uuid.UUID(str(job_id))
        except ValueError:
            return _bad(f"{short(job_id)!r} is not a job id (a UUID)")
    cancelled = [str(j) for j in job_ids if await userjobs.cancel(platform, user.name, str(j))]
    return JSONResponse({"cancelled": cancelled})


@router.get("/jobs/{job_id}")
async def get_job(job_id: str, user: Participant, platform: PlatformDep) -> Response:
    job = await userjobs.owned(platform, user.name, job_id)
    if job is None:
        return JSONResponse({"error": "Job not found"}, status_code=404)
    return JSONResponse(jobview.job_detail(job))


@router.post("/jobs/{job_id}/cancel")
async def cancel_job(job_id: str, user: Participant, platform: PlatformDep) -> dict[str, bool]:
    return {"cancelled": await userjobs.cancel(platform, user.name, job_id)}


@router.get("/queue")
async def get_queue(user: Participant, platform: PlatformDep) -> dict[str, Any]:
    pending, running, _ = await userjobs.ids(platform, user.name)
    object_info = await platform.workers.merged_object_info()
    jobs = {j.id: j for j in await platform.queue.get_many(running + pending)}

    def items(job_ids: list[str], state: JobState) -> list[list[Any]]:
        return [
            jobview.queue_item(jobs[i], object_info)
            for i in job_ids
            if i in jobs and jobs[i].state == state
        ]

    return {
        "queue_running": items(running, JobState.RUNNING),
        "queue_pending": items(pending, JobState.PENDING),
    }


@router.post("/queue")
async def post_queue(request: Request, user: Participant, platform: PlatformDep) -> Response:
    """`{"delete": [ids]}` / `{"clear": true}`: remove waiting jobs (running ones continue)."""
    body = await json_body(request)
    if body.get("clear"):
        pending, _, _ = await userjobs.ids(platform, user.name)
        for job_id in pending:
            await userjobs.cancel(platform, user.name, job_id, only=JobState.PENDING)
    delete = body.get("delete")
    if isinstance(delete, list):
        for job_id in delete:
            await userjobs.cancel(platform, user.name, str(job_id), only=JobState.PENDING)
    return Response(status_code=200)


@router.post("/interrupt")
async def interrupt(request: Request, user: Participant, platform: PlatformDep) -> Response:
    """Stop the participant's running job (only `prompt_id`, when given)."""
    wanted = (await json_body(request)).get("prompt_id")
    _, running, _ = await userjobs.ids(platform, user.name)
    for job_id in running:
        if wanted is None or job_id == str(wanted):
            await userjobs.cancel(platform, user.name, job_id, only=JobState.RUNNING)
    return Response(status_code=200)


@router.get("/history")
async def get_history(request: Request, user: Participant, platform: PlatformDep) -> Response:
    max_items = _parse_int(request.query_params.get("max_items"), "max_items")
    offset = _parse_int(request.query_params.get("offset"), "offset")
    if isinstance(max_items, JSONResponse):
        return max_items
    if isinstance(offset, JSONResponse):
        return offset
    jobs = await userjobs.finished_jobs(platform, user.name)
    # ComfyUI: without an offset, max_items means the most recent ones
    start = offset if offset is not None and offset >= 0 else None
    if start is None:
        start = max(len(jobs) - max_items, 0) if max_items is not None else 0
    chosen = jobs[start : start + max_items] if max_items is not None else jobs[start:]
    object_info = await platform.workers.merged_object_info()
    return JSONResponse({j.id: jobview.history_entry(j, object_info) for j in chosen})


@router.get("/history/{job_id}")
async def get_history_item(job_id: str, user: Participant, platform: PlatformDep) -> Response:
    job = await userjobs.owned(platform, user.name, job_id)
    if job is None or not job.state.final:
        return JSONResponse({})
    object_info = await platform.workers.merged_object_info()
    return JSONResponse({job.id: jobview.history_entry(job, object_info)})


@router.post("/history")
async def post_history(request: Request, user: Participant, platform: PlatformDep) -> Response:
    body = await json_body(request)
    if body.get("clear"):
        await userjobs.forget(platform, user.name, None)
    delete = body.get("delete")
    if isinstance(delete, list):
        await userjobs.forget(platform, user.name, [str(i) for i in delete])
    return Response(status_code=200)
