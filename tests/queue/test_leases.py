"""Leases: a lost worker's job goes back to its place; attempts are bounded;
a stale holder is fenced off; concurrent claims never share a job."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from comfy_multi.errors import LeaseLost
from comfy_multi.queue.jobs import JobQueue
from comfy_multi.queue.models import JobState
from comfy_multi.queue.views import QueueViews
from comfy_multi.queue.workers import WorkerRegistry
from comfy_multi.settings import Settings
from comfy_multi.store import keys
from comfy_multi.store.connection import connect

from ..conftest import wait_for
from .conftest import add_worker, submit


async def expire_now(aredis: Any, job_id: str) -> None:
    """Make the lease run out without waiting for it."""
    await aredis.zadd("cm:running", {job_id: 0})


async def test_lost_job_returns_to_its_old_place(
    queue: JobQueue, registry: WorkerRegistry, aredis: Any
) -> None:
    w1 = await add_worker(registry, "w1")
    w2 = await add_worker(registry, "w2")
    first = await submit(queue, "a")
    later = [await submit(queue, "a") for _ in range(2)]
    claimed = await queue.claim(w1)
    assert claimed is not None
    assert claimed.job_id == first
    await expire_now(aredis, first)
    assert await queue.sweep() == 1
    job = await queue.get(first)
    assert job.state == JobState.PENDING
    again = await queue.claim(w2)
    assert again is not None
    assert again.job_id == first  # ahead of the jobs queued after it
    assert again.attempt == 2
    assert again.lease_token != claimed.lease_token
    # the first worker is fenced off
    with pytest.raises(LeaseLost, match="does not match"):
        await queue.complete(first, claimed.lease_token, w1, {}, {})
    assert not await queue.extend_lease(first, claimed.lease_token, w1)
    await queue.complete(first, again.lease_token, w2, {"9": {"images": []}}, {})
    assert (await queue.get(first)).state == JobState.DONE
    assert [j.job_id for j in [await queue.claim(w2), await queue.claim(w2)] if j] == later


async def test_attempts_are_bounded(queue: JobQueue, registry: WorkerRegistry, aredis: Any) -> None:
    w = await add_worker(registry, "w1")
    job_id = await submit(queue, "a")
    for _ in range(queue.settings.max_attempts):
        assert await queue.claim(w) is not None
        await expire_now(aredis, job_id)
        await queue.sweep()
    job = await queue.get(job_id)
    assert job.state == JobState.FAILED
    assert job.error == {"type": "worker_lost", "message": "worker lost 3 times"}
    assert await queue.claim(w) is None


async def test_sweeper_requeues_without_any_traffic(gateway: Any, aredis: Any) -> None:
    """The gateway's own sweep finds an expired lease within a few seconds."""
    settings: Settings = gateway.settings
    queue = JobQueue(aredis, settings)
    registry = WorkerRegistry(aredis, settings)
    w = await add_worker(registry, "w1")
    job_id = await submit(queue, "a")
    assert await queue.claim(w) is not None  # then the worker goes silent

    async def back_in_queue() -> bool:
        return (await queue.get(job_id)).state == JobState.PENDING

    await wait_for(back_in_queue, timeout=settings.lease_seconds + 5)


async def test_heartbeat_keeps_a_long_job(
    queue: JobQueue, registry: WorkerRegistry, aredis: Any
) -> None:
    w = await add_worker(registry, "w1")
    job_id = await submit(queue, "a")
    job = await queue.claim(w)
    assert job is not None
    before = await aredis.zscore("cm:running", job_id)
    assert await queue.extend_lease(job_id, job.lease_token, w)
    assert await aredis.zscore("cm:running", job_id) >= before
    assert await queue.sweep() == 0


async def test_failure_with_requeue_and_release(queue: JobQueue, registry: WorkerRegistry) -> None:
    w = await add_worker(registry, "w1")
    job_id = await submit(queue, "a")
    job = await queue.claim(w)
    assert job is not None
    assert (
        await queue.fail(job_id, job.lease_token, w, {"type": "comfyui_lost"}, mode="retry")
        == "requeued"
    )
    job = await queue.claim(w)
    assert job is not None
    assert (
        await queue.fail(job_id, job.lease_token, w, {"type": "released"}, mode="release")
        == "requeued"
    )
    job = await queue.claim(w)
    assert job is not None
    assert job.attempt == 2  # the release did not count
    error = {"type": "execution_error", "exception_message": "boom"}
    assert await queue.fail(job_id, job.lease_token, w, error, mode="fail") == "failed"
    assert (await queue.get(job_id)).error == error


@hsettings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(jobs=st.integers(min_value=1, max_value=40), seed=st.integers(0, 2**16))
async def test_concurrent_claims_never_share_a_job(
    redis_url: str, settings: Settings, jobs: int, seed: int
) -> None:
    """Ten workers claim, complete and lose leases at random, concurrently.
    Every job ends done exactly once, and no job is held by two workers."""
    rng = random.Random(seed)
    client = connect(redis_url)
    try:
        await client.flushall()
        queue = JobQueue(client, settings.model_copy(update={"default_user_cap": 0}))
        registry = WorkerRegistry(client, settings)
        workers = [await add_worker(registry, f"w{i}") for i in range(10)]
        ids = {await submit(queue, rng.choice("abc")) for _ in range(jobs)}
        completed: list[str] = []
        holding: dict[str, str] = {}

        async def work(worker_id: str) -> None:
            idle = 0
            while idle < 3:
                job = await queue.claim(worker_id)
                if job is None:
                    idle += 1
                    await queue.sweep()
                    await asyncio.sleep(0)
                    continue
                assert job.job_id not in holding, "a job was handed to two workers"
                holding[job.job_id] = worker_id
                await asyncio.sleep(0)
                if rng.random() < 0.2:  # this worker "dies": its lease runs out
                    del holding[job.job_id]
                    await client.zadd("cm:running", {job.job_id: 0})
                    continue
                del holding[job.job_id]
                await queue.complete(job.job_id, job.lease_token, worker_id, {}, {})
                completed.append(job.job_id)

        await asyncio.gather(*(work(w) for w in workers))
        await queue.sweep()
        # jobs that ran out of attempts failed; all others completed exactly once
        states = {j.id: j.state for j in await queue.get_many(sorted(ids))}
        assert len(completed) == len(set(completed))
        assert {i for i, s in states.items() if s == JobState.DONE} == set(completed)
        assert all(s in (JobState.DONE, JobState.FAILED, JobState.PENDING) for s in states.values())
        # anything still pending (lost on its last sweep window) is claimable, not lost
        leftover = [i for i, s in states.items() if s == JobState.PENDING]
        for _ in leftover:
            job = await queue.claim(workers[0])
            assert job is not None
            assert job.job_id in leftover
    finally:
        await client.aclose()


async def test_completion_records_the_run_time_average_by_redis_clock(
    queue: JobQueue, registry: WorkerRegistry, aredis: Any
) -> None:
    """One script finishes the job and moves the room's average run time and
    the worker's busy time, measured from the start Redis recorded."""
    views = QueueViews(queue)
    w = await add_worker(registry, "w1")
    for run_s, expected_avg in ((5, 5000.0), (10, 6000.0)):  # newest run weighs 0.2
        job_id = await submit(queue, "a")
        job = await queue.claim(w)
        assert job is not None
        seconds, micros = await aredis.time()
        now_ms = seconds * 1000 + micros // 1000
        await aredis.hset(keys.job(job_id), "started_ms", now_ms - run_s * 1000)
        await queue.complete(job_id, job.lease_token, w, {}, {})
        assert abs(await views.average_run_ms() - expected_avg) < 50
    busy_ms = int(await aredis.hget(keys.worker(w), "busy_ms"))
    assert 15_000 <= busy_ms < 15_100
