"""`comfy-multi status`: one snapshot of the room, rendered as tables."""

from __future__ import annotations

import time
from dataclasses import dataclass

from redis.asyncio import Redis
from rich.console import Console
from rich.table import Table

from comfy_multi.queue.jobs import JobQueue
from comfy_multi.queue.models import Job, QueueConfig
from comfy_multi.queue.views import QueueViews
from comfy_multi.queue.workers import WorkerInfo, WorkerRegistry
from comfy_multi.services.users import User, UserStore
from comfy_multi.settings import Settings


@dataclass
class Snapshot:
    config: QueueConfig
    depth: dict[int, int]
    running: list[Job]
    workers: list[WorkerInfo]
    users: list[tuple[User, int, int]]  # user, pending, running


async def gather_status(redis: Redis, settings: Settings) -> Snapshot:
    queue = JobQueue(redis, settings)
    views = QueueViews(queue)
    users = []
    for u in await UserStore(redis).list():
        pending, running, _ = await views.user_job_ids(u.name)
        users.append((u, len(pending), len(running)))
    return Snapshot(
        config=await queue.config(),
        depth=await views.depth(),
        running=await views.running(),
        workers=await WorkerRegistry(redis, settings).list(),
        users=users,
    )


def _ago(ms: int | None) -> str:
    if not ms:
        return "-"
    seconds = max(0, time.time() - ms / 1000)
    return f"{seconds:.0f}s" if seconds < 120 else f"{seconds / 60:.0f}m"


def render_status(console: Console, s: Snapshot) -> None:
    state = "[red]paused[/]" if s.config.paused else "[green]dispatching[/]"
    cap = s.config.default_cap or "none"
    console.print(f"queue: {state}, mode [bold]{s.config.mode}[/], per-user cap {cap}")

    depth = Table("class", "pending", title="waiting")
    for cls, n in sorted(s.depth.items()):
        depth.add_row(str(cls), str(n))
    depth.add_row("all", str(sum(s.depth.values())), style="bold")
    console.print(depth)

    running = Table("job", "user", "worker", "running for", "attempt", title="running")
    for job in s.running:
        running.add_row(
            job.id[:8], job.user, job.worker or "-", _ago(job.started_ms), str(job.attempts)
        )
    console.print(running)

    workers = Table(
        "worker", "token", "state", "job", "last seen", "done", "failures", title="workers"
    )
    for w in s.workers:
        workers.add_row(
            w.worker_id,
            w.name,
            w.state,
            (w.current_job or "-")[:8],
            _ago(w.last_seen_ms),
            str(w.jobs_done),
            str(w.failures),
        )
    console.print(workers)

    users = Table("user", "role", "pending", "running", title="users")
    for u, pending, run in s.users:
        users.add_row(u.name, "admin" if u.admin else "participant", str(pending), str(run))
    console.print(users)
