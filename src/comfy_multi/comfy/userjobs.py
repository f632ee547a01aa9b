"""One participant's jobs as ComfyUI's routes need them: listed, filtered,
sorted and paged without loading every prompt, and hidden from history."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from comfy_multi.comfy.jobview import STATUS, visible, workflow_id
from comfy_multi.queue import records, room
from comfy_multi.queue.models import Job, JobState
from comfy_multi.services.platform import Platform

_STATE = {v: k for k, v in STATUS.items()}


@dataclass
class Row:
    """The few fields a listing filters and sorts on."""

    id: str
    status: str
    create_time: int
    started: int | None
    finished: int | None

    @property
    def duration(self) -> int:
        return self.finished - self.started if self.finished and self.started else 0


def _int(value: str | None) -> int | None:
    return int(float(value)) if value else None


async def rows(platform: Platform, job_ids: list[str]) -> list[Row]:
    fields = ["state", "queued_ms", "started_ms", "finished_ms"]
    found = await records.job_fields(platform.redis, job_ids, fields)
    out = []
    for job_id, (state, queued, started, finished) in zip(job_ids, found, strict=True):
        if state is None or state not in _STATE.values():
            continue  # expired or half-written
        job_state = JobState(state)
        if job_state == JobState.CANCELLED and not started:
            continue  # removed before it ran: gone, as in ComfyUI
        out.append(Row(job_id, STATUS[job_state], _int(queued) or 0, _int(started), _int(finished)))
    return out


async def ids(platform: Platform, user: str) -> tuple[list[str], list[str], list[str]]:
    """(pending in queue order, running, finished newest first)."""
    pending, running, finished = await platform.views.user_job_ids(user)
    return [str(x) for x in pending], [str(x) for x in running], [str(x) for x in finished]


async def remaining(platform: Platform, user: str) -> int:
    """ComfyUI's queue_remaining for one participant: waiting plus running."""
    return await room.remaining(platform.redis, user)


async def listing(
    platform: Platform,
    user: str,
    statuses: Iterable[str] | None,
    *,
    sort_by: str,
    descending: bool,
    workflow: str | None,
) -> list[Row]:
    pending, running, finished = await ids(platform, user)
    wanted = set(statuses) if statuses is not None else None
    found = [
        r
        for r in await rows(platform, running + pending + finished)
        if wanted is None or r.status in wanted
    ]
    if workflow is not None:
        jobs = {j.id: j for j in await platform.queue.get_many([r.id for r in found])}
        found = [r for r in found if r.id in jobs and workflow_id(jobs[r.id]) == workflow]
    if sort_by == "execution_duration":
        found.sort(key=lambda r: r.duration, reverse=descending)
    else:
        found.sort(key=lambda r: r.create_time, reverse=descending)
    return found


async def finished_jobs(platform: Platform, user: str) -> list[Job]:
    """The participant's history, oldest first (ComfyUI's /history order)."""
    _, _, finished = await ids(platform, user)
    jobs = await platform.queue.get_many(list(reversed(finished)))
    return [j for j in jobs if j.state.final and visible(j)]


async def owned(platform: Platform, user: str, job_id: str) -> Job | None:
    """The job if it is this participant's and visible to them, else None:
    another user's job is indistinguishable from one that never existed."""
    if not job_id or len(job_id) > 200:
        return None
    found = await platform.queue.get_many([job_id])
    if not found or found[0].user != user or not visible(found[0]):
        return None
    return found[0]


async def forget(platform: Platform, user: str, job_ids: list[str] | None) -> int:
    """Take finished jobs out of the participant's history (all when None).
    The records stay for the instructor's report until they expire."""
    return await records.forget_history(platform.redis, user, job_ids)


async def cancel(
    platform: Platform, user: str, job_id: str, *, only: JobState | None = None
) -> bool:
    """Cancel the participant's own waiting or running job; False for anything
    else (finished, unknown, someone else's)."""
    job = await owned(platform, user, job_id)
    if job is None or job.state.final or (only is not None and job.state != only):
        return False
    return await platform.queue.cancel(job.id, owner=user)
