"""The platform API, `/api/v1`: jobs, the queue, users and workers as JSON.

Routes are thin: authenticate, parse, call one service. Participants see and
cancel only their own jobs; everything that steers the room needs the admin
role.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from comfy_multi.errors import Forbidden
from comfy_multi.queue import records, room
from comfy_multi.queue.jobs import check_class
from comfy_multi.queue.models import Job, JobState, QueueMode
from comfy_multi.queue.workers import WorkerInfo
from comfy_multi.services.auth import AdminUser, CurrentUser, PlatformDep
from comfy_multi.services.removal import remove_person
from comfy_multi.services.submit import submit_checked
from comfy_multi.services.users import ApiToken, User

router = APIRouter(prefix="/api/v1", tags=["platform"])

MAX_LIST = 1000
PLACES_MAX_AGE_S = 0.5  # a participant's place may be this old; the admin's is exact


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SubmitRequest(Strict):
    prompt: dict[str, Any] = Field(description="ComfyUI API-format graph")
    extra_data: dict[str, Any] = Field(default_factory=dict)
    client_id: str | None = Field(default=None, max_length=200)
    priority_class: int | None = Field(
        default=None,
        description="0 (most urgent) to 9; participants may only choose their own or later",
    )
    front: bool = Field(default=False, description="admin only: put it first in its class")


class JobList(BaseModel):
    jobs: list[dict[str, Any]]
    total: int


class ClassChange(Strict):
    priority_class: int


class ModeChange(Strict):
    mode: QueueMode


MAX_CAP = 100_000  # far above any room; bounds what Redis and the event bus must carry


class CapChange(Strict):
    cap: int | None = Field(
        le=MAX_CAP, description="pending jobs allowed; 0 = no cap; null = room default"
    )


class NewUser(Strict):
    name: str
    password: str | None = None
    admin: bool = False


class PasswordChange(Strict):
    password: str | None = None


class DrainChange(Strict):
    drain: bool = True


class Broadcast(Strict):
    message: str = Field(max_length=500, description="empty clears the banner")


class QueueState(BaseModel):
    mode: QueueMode
    paused: bool
    default_cap: int
    depth: dict[int, int]
    pending_total: int
    running: list[dict[str, Any]]
    pending: list[dict[str, Any]]
    workers_online: int


@router.get("/me")
async def me(user: CurrentUser) -> dict[str, Any]:
    return {"name": user.name, "admin": user.admin}


class NewToken(Strict):
    label: str = Field(default="", max_length=100, description="what the token is for")
    expires_days: float | None = Field(default=None, description="none: until revoked")


def _token_owner(user: User, owner: str | None) -> str:
    """Your own tokens; an admin may name anyone's."""
    if owner is None or owner == user.name:
        return user.name
    if not user.admin:
        raise Forbidden("only the instructor can see or revoke someone else's tokens")
    return owner


TokenOwner = Annotated[str | None, Query(alias="user", description="admin only")]


@router.post("/tokens", status_code=201)
async def create_token(
    user: CurrentUser, platform: PlatformDep, body: NewToken | None = None
) -> dict[str, Any]:
    """A personal API token for scripts (`Authorization: Bearer ...`), shown once.
    It ends when revoked, at its expiry, or when the password changes."""
    body = body or NewToken()
    token, info = await platform.users.create_api_token(
        user.name, label=body.label, expires_days=body.expires_days
    )
    return {"token": token, **info.model_dump()}


@router.get("/tokens")
async def list_tokens(
    user: CurrentUser, platform: PlatformDep, owner: TokenOwner = None
) -> list[ApiToken]:
    """Live API tokens (never the tokens themselves: only their ids)."""
    name = _token_owner(user, owner)
    await platform.users.get(name)
    return await platform.users.api_tokens(name)


@router.delete("/tokens/{token_id}")
async def revoke_token(
    token_id: str, user: CurrentUser, platform: PlatformDep, owner: TokenOwner = None
) -> ApiToken:
    """Revoke one token by its id; refused on every gateway from the next request."""
    return await platform.users.revoke_api_token(_token_owner(user, owner), token_id)


# jobs -----------------------------------------------------------------------


@router.post("/jobs", status_code=201, response_model=None)
async def submit(body: SubmitRequest, user: CurrentUser, platform: PlatformDep) -> Response:
    """Queue a prompt. Answers the job without its prompt (201)."""
    job, _partial_errors = await submit_checked(
        platform,
        user,
        body.prompt,
        extra_data=body.extra_data,
        client_id=body.client_id,
        cls=body.priority_class,
        front=body.front,
    )
    return Response(
        orjson.dumps(job.public(with_prompt=False)), status_code=201, media_type="application/json"
    )


async def _ids(platform: PlatformDep, user: str | None, state: JobState | None) -> list[str]:
    if user is not None:
        pending, running, finished = await platform.views.user_job_ids(user)
    else:
        pending = await platform.views.dispatch_order()
        running = await platform.views.running_ids()
        finished = await records.finished_ids(platform.redis)
    if state is None:
        return running + pending + finished
    if state == JobState.PENDING:
        return pending
    if state == JobState.RUNNING:
        return running
    return finished


@router.get("/jobs")
async def list_jobs(
    user: CurrentUser,
    platform: PlatformDep,
    state: JobState | None = None,
    owner: Annotated[str | None, Query(alias="user", description="admin only")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> JobList:
    """Your jobs (an admin: everyone's, or one user's): running, then pending in
    dispatch order, then finished, newest first."""
    if not user.admin:
        owner = user.name
    ids = await _ids(platform, owner, state)
    jobs: list[Job] = []
    if state is not None and state.final:
        # finished ids are mixed; filter by state while paging
        all_jobs = [j for j in await platform.queue.get_many(ids) if j.state == state]
        total, jobs = len(all_jobs), all_jobs[offset : offset + limit]
    else:
        total = len(ids)
        jobs = await platform.queue.get_many(ids[offset : offset + limit])
    return JobList(jobs=[j.public(with_prompt=False) for j in jobs], total=total)


@router.get("/jobs/{job_id}", response_model=None)
async def get_job(job_id: str, user: CurrentUser, platform: PlatformDep) -> Response:
    """One job, with its place in the queue (0 = next) and estimated wait while
    it waits. The most frequent read: answered with no re-validation."""
    job = await platform.queue.get_owned(job_id, user.name, admin=user.admin)
    out = job.public()
    if job.state == JobState.PENDING:
        places = await platform.views.places(
            job.user, workers=await platform.workers.online_count(), max_age=PLACES_MAX_AGE_S
        )
        if job.id in places:
            out["position"] = places[job.id].position
            out["eta_seconds"] = places[job.id].eta_seconds
    return Response(orjson.dumps(out), media_type="application/json")


@router.post("/jobs/{job_id}/cancel")
async def cancel_job(job_id: str, user: CurrentUser, platform: PlatformDep) -> dict[str, Any]:
    """Cancel a waiting or running job. Cancelling a finished job changes nothing."""
    await platform.queue.get_owned(job_id, user.name, admin=user.admin)
    cancelled = await platform.queue.cancel(job_id, owner=None if user.admin else user.name)
    return {
        "cancelled": cancelled,
        "job": (await platform.queue.get(job_id)).public(with_prompt=False),
    }


@router.post("/jobs/{job_id}/class")
async def change_class(
    job_id: str, body: ClassChange, _: AdminUser, platform: PlatformDep
) -> dict[str, Any]:
    job = await platform.queue.reprioritize(job_id, cls=check_class(body.priority_class))
    return job.public(with_prompt=False)


@router.post("/jobs/{job_id}/front")
async def move_to_front(job_id: str, _: AdminUser, platform: PlatformDep) -> dict[str, Any]:
    job = await platform.queue.reprioritize(job_id, front=True)
    return job.public(with_prompt=False)


# the queue ------------------------------------------------------------------


@router.get("/queue")
async def queue_state(user: CurrentUser, platform: PlatformDep) -> QueueState:
    """The room's queue. Participants see counts and only their own jobs."""
    config = await platform.queue.config()
    depth = await platform.views.depth()
    online = await platform.workers.online_count()
    places = await platform.views.places(
        None if user.admin else user.name,
        workers=online,
        max_age=0.0 if user.admin else PLACES_MAX_AGE_S,
    )
    pending = await platform.queue.get_many(list(places))
    running = await platform.views.running()
    if not user.admin:
        running = [j for j in running if j.user == user.name]
    pending_out = []
    for job in pending:
        row = job.public(with_prompt=False)
        row["position"] = places[job.id].position
        row["eta_seconds"] = places[job.id].eta_seconds
        pending_out.append(row)
    return QueueState(
        mode=config.mode,
        paused=config.paused,
        default_cap=config.default_cap,
        depth=depth,
        pending_total=sum(depth.values()),
        running=[j.public(with_prompt=False) for j in running],
        pending=pending_out,
        workers_online=online,
    )


async def _config_changed(platform: PlatformDep) -> dict[str, Any]:
    config = (await platform.queue.config()).model_dump(mode="json")
    await platform.bus.publish({"event": "config", "config": config})
    return config


@router.post("/queue/pause")
async def pause(_: AdminUser, platform: PlatformDep) -> dict[str, Any]:
    """Stop handing out jobs; running jobs finish."""
    await platform.queue.update_config(paused=True)
    return await _config_changed(platform)


@router.post("/queue/resume")
async def resume(_: AdminUser, platform: PlatformDep) -> dict[str, Any]:
    await platform.queue.update_config(paused=False)
    return await _config_changed(platform)


@router.put("/queue/mode")
async def set_mode(body: ModeChange, _: AdminUser, platform: PlatformDep) -> dict[str, Any]:
    await platform.queue.update_config(mode=body.mode)
    return await _config_changed(platform)


@router.put("/queue/cap")
async def set_default_cap(body: CapChange, _: AdminUser, platform: PlatformDep) -> dict[str, Any]:
    await platform.queue.update_config(
        cap=body.cap if body.cap is not None else platform.settings.default_user_cap
    )
    return await _config_changed(platform)


@router.post("/broadcast", status_code=204)
async def broadcast(body: Broadcast, _: AdminUser, platform: PlatformDep) -> Response:
    """A message shown on every participant's page (empty clears it)."""
    await room.set_broadcast(platform.redis, body.message)
    await platform.bus.publish({"event": "broadcast", "message": body.message})
    return Response(status_code=204)


# users ----------------------------------------------------------------------


@router.get("/users")
async def list_users(_: AdminUser, platform: PlatformDep) -> list[dict[str, Any]]:
    caps = await platform.queue.user_caps()
    out = []
    for u in await platform.users.list():
        pending, running, finished = await platform.views.user_job_ids(u.name)
        out.append(
            {
                "name": u.name,
                "admin": u.admin,
                "cap": caps.get(u.name),
                "pending": len(pending),
                "running": len(running),
                "finished": len(finished),
            }
        )
    return out


@router.post("/users", status_code=201)
async def add_user(body: NewUser, _: AdminUser, platform: PlatformDep) -> dict[str, Any]:
    password = await platform.users.add(body.name, body.password, admin=body.admin)
    return {"name": body.name, "admin": body.admin, "password": password}


@router.delete("/users/{name}")
async def remove_user(
    name: str,
    admin: AdminUser,
    platform: PlatformDep,
    archive: Annotated[bool, Query(description="keep the files under <data dir>/archive")] = False,
) -> dict[str, Any]:
    """Remove a person: sign-ins, jobs and history go; files are deleted or
    archived. Answers what was removed."""
    removed = await remove_person(platform.redis, platform.settings, name, archive=archive)
    return {**removed.model_dump(), "summary": removed.summary()}


@router.post("/users/{name}/password")
async def reset_password(
    name: str, body: PasswordChange, _: AdminUser, platform: PlatformDep
) -> dict[str, str]:
    return {"name": name, "password": await platform.users.set_password(name, body.password)}


@router.put("/users/{name}/cap")
async def set_user_cap(
    name: str, body: CapChange, _: AdminUser, platform: PlatformDep
) -> dict[str, Any]:
    await platform.users.get(name)
    await platform.queue.set_user_cap(name, body.cap)
    return {"name": name, "cap": body.cap}


@router.post("/users/{name}/cancel-pending")
async def cancel_user_pending(name: str, _: AdminUser, platform: PlatformDep) -> dict[str, int]:
    """Cancel every waiting job of one user (running ones continue)."""
    pending, _running, _finished = await platform.views.user_job_ids(name)
    cancelled = 0
    for job_id in pending:
        cancelled += await platform.queue.cancel(job_id)
    return {"cancelled": cancelled}


# workers --------------------------------------------------------------------


@router.get("/workers")
async def list_workers(_: AdminUser, platform: PlatformDep) -> list[WorkerInfo]:
    return await platform.workers.list()


@router.delete("/workers/{name}")
async def forget_worker(name: str, _: AdminUser, platform: PlatformDep) -> dict[str, Any]:
    """Forget an offline worker (by id, or every offline one of a token name).
    Its past jobs stay in the report; a worker that comes back registers anew."""
    forgotten = await platform.workers.forget_offline(name)
    await platform.bus.publish({"event": "worker", "worker": {"worker_id": forgotten[0]}})
    return {"forgotten": forgotten}


@router.post("/workers/{worker_id}/drain")
async def drain_worker(
    worker_id: str, body: DrainChange, _: AdminUser, platform: PlatformDep
) -> dict[str, Any]:
    """Let the worker finish its current job and take no more (or take jobs again)."""
    await platform.workers.set_draining(worker_id, body.drain)
    await platform.bus.publish({"event": "worker", "worker": {"worker_id": worker_id}})
    return {"worker_id": worker_id, "draining": body.drain}
