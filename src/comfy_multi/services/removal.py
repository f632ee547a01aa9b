"""Removing a person: their account, every credential, their jobs and their files.

A new person given the same name later starts empty: no files, no workflows,
no waiting job, no history, no sign-in that still works. Files are deleted,
or moved under `<data dir>/archive/` when the instructor asks to keep them.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import anyio.to_thread
from pydantic import BaseModel
from redis.asyncio import Redis

from comfy_multi.errors import JobNotFound
from comfy_multi.queue import records
from comfy_multi.queue.jobs import JobQueue
from comfy_multi.queue.views import QueueViews
from comfy_multi.services.users import UserStore
from comfy_multi.settings import Settings

logger = logging.getLogger(__name__)

ARCHIVE_DIR = "archive"


class Removed(BaseModel):
    name: str
    sessions: int = 0
    api_tokens: int = 0
    jobs_cancelled: int = 0
    jobs_deleted: int = 0
    files: str = "none"  # "deleted", "archived" or "none"
    archived_to: str | None = None

    def summary(self) -> str:
        parts = [
            f"{self.sessions} session(s) and {self.api_tokens} API token(s) ended",
            f"{self.jobs_cancelled} waiting or running job(s) cancelled",
            f"{self.jobs_deleted} job record(s) deleted",
        ]
        if self.files == "archived":
            parts.append(f"files archived to {self.archived_to}")
        elif self.files == "deleted":
            parts.append("files deleted")
        else:
            parts.append("no files")
        return f"removed {self.name}: " + ", ".join(parts)


async def remove_person(
    redis: Redis, settings: Settings, name: str, *, archive: bool = False
) -> Removed:
    """Credentials end first, so the person can do nothing while the rest goes."""
    ended = await UserStore(redis).remove(name)
    out = Removed(name=name, sessions=ended["sessions"], api_tokens=ended["api_tokens"])
    out.jobs_cancelled, out.jobs_deleted = await _forget_jobs(redis, settings, name)
    out.files, out.archived_to = await anyio.to_thread.run_sync(
        _clear_files, settings.users_dir / name, settings.data_dir, archive
    )
    logger.info("%s", out.summary())
    return out


async def _forget_jobs(redis: Redis, settings: Settings, name: str) -> tuple[int, int]:
    queue = JobQueue(redis, settings)
    views = QueueViews(queue)
    pending, running, _ = await views.user_job_ids(name)
    cancelled = 0
    for job_id in running + pending:
        try:
            cancelled += await queue.cancel(job_id)
        except JobNotFound:
            continue
    _, _, finished = await views.user_job_ids(name)
    ids = sorted(set(pending + running + finished))
    await records.forget_person(redis, name, ids)
    return cancelled, len(ids)


def _clear_files(folder: Path, data_dir: Path, archive: bool) -> tuple[str, str | None]:
    if not folder.exists():
        return "none", None
    if archive:
        target = data_dir / ARCHIVE_DIR / f"{folder.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        shutil.move(str(folder), str(target))
        return "archived", str(target.relative_to(data_dir))
    shutil.rmtree(folder)
    return "deleted", None
