from __future__ import annotations

from typing import Any

import pytest

from comfy_multi.queue.jobs import JobQueue
from comfy_multi.queue.views import QueueViews
from comfy_multi.queue.workers import Registration, WorkerRegistry
from comfy_multi.settings import Settings

PROMPT = {
    "1": {"class_type": "EmptyImage", "inputs": {}},
    "2": {"class_type": "SaveImage", "inputs": {}},
}


@pytest.fixture
def queue(aredis: Any, settings: Settings) -> JobQueue:
    return JobQueue(aredis, settings)


@pytest.fixture
def views(queue: JobQueue) -> QueueViews:
    return QueueViews(queue)


@pytest.fixture
def registry(aredis: Any, settings: Settings) -> WorkerRegistry:
    return WorkerRegistry(aredis, settings)


async def add_worker(
    registry: WorkerRegistry, worker_id: str, nodes: tuple[str, ...] = ("EmptyImage", "SaveImage")
) -> str:
    await registry.register(
        Registration(worker_id=worker_id, object_info_digest="ab" * 8, nodes=list(nodes)), "gpu"
    )
    return worker_id


async def submit(queue: JobQueue, user: str, cls: int = 5, **kw: Any) -> str:
    job = await queue.submit(user, PROMPT, cls=cls, needs=["EmptyImage", "SaveImage"], **kw)
    return job.id


async def drain(queue: JobQueue, worker_id: str) -> list[str]:
    """Claim and complete everything, returning the users in dispatch order."""
    users = []
    while (job := await queue.claim(worker_id)) is not None:
        users.append(job.user)
        await queue.complete(job.job_id, job.lease_token, worker_id, {}, {})
    return users
