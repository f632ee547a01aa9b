"""Dispatch order: classes, fair round-robin, fifo, front, pause, caps, capabilities."""

from __future__ import annotations

import pytest

from comfy_multi.errors import BadRequest, Conflict, QueueFull
from comfy_multi.queue.jobs import JobQueue
from comfy_multi.queue.models import JobState, QueueMode
from comfy_multi.queue.views import QueueViews
from comfy_multi.queue.workers import WorkerRegistry

from .conftest import add_worker, drain, submit


async def test_fair_round_robin_matches_design(queue: JobQueue, registry: WorkerRegistry) -> None:
    # DESIGN.md: A queues ten first, then B and C two each: A B C A B C A A ...
    w = await add_worker(registry, "w1")
    for _ in range(10):
        await submit(queue, "a")
    for user in ("b", "c"):
        for _ in range(2):
            await submit(queue, user)
    assert await drain(queue, w) == list("abcabc") + ["a"] * 8


async def test_dispatch_order_view_predicts_the_claims(
    queue: JobQueue, views: QueueViews, registry: WorkerRegistry
) -> None:
    w = await add_worker(registry, "w1")
    for user in ("a", "a", "a", "b", "c", "b", "a", "c"):
        await submit(queue, user)
    first = await queue.claim(w)  # someone has been served: the view must account for it
    assert first is not None
    predicted = await views.dispatch_order()
    claimed = []
    while (job := await queue.claim(w)) is not None:
        claimed.append(job.job_id)
    assert claimed == predicted


async def test_fifo_takes_oldest_first(queue: JobQueue, registry: WorkerRegistry) -> None:
    w = await add_worker(registry, "w1")
    await queue.update_config(mode=QueueMode.FIFO)
    for user in ("a", "a", "a", "b", "c"):
        await submit(queue, user)
    assert await drain(queue, w) == ["a", "a", "a", "b", "c"]


async def test_mode_switch_applies_to_waiting_jobs(
    queue: JobQueue, registry: WorkerRegistry
) -> None:
    w = await add_worker(registry, "w1")
    await queue.update_config(mode=QueueMode.FIFO)
    for user in ("a", "a", "b"):
        await submit(queue, user)
    await queue.update_config(mode=QueueMode.FAIR)
    assert await drain(queue, w) == ["a", "b", "a"]


async def test_priority_class_beats_mode(queue: JobQueue, registry: WorkerRegistry) -> None:
    w = await add_worker(registry, "w1")
    await submit(queue, "a")
    await submit(queue, "b")
    await submit(queue, "teacher", cls=1)
    await queue.update_config(mode=QueueMode.FIFO)
    await submit(queue, "c", cls=0)
    assert await drain(queue, w) == ["c", "teacher", "a", "b"]


async def test_move_to_front_and_change_class(queue: JobQueue, registry: WorkerRegistry) -> None:
    w = await add_worker(registry, "w1")
    ids = [await submit(queue, u) for u in ("a", "b", "c", "d")]
    await queue.reprioritize(ids[3], front=True)
    await queue.reprioritize(ids[2], cls=7)
    assert await drain(queue, w) == ["d", "a", "b", "c"]


async def test_move_to_front_works_in_fifo_too(queue: JobQueue, registry: WorkerRegistry) -> None:
    w = await add_worker(registry, "w1")
    await queue.update_config(mode=QueueMode.FIFO)
    ids = [await submit(queue, u) for u in ("a", "b", "c")]
    await queue.reprioritize(ids[2], front=True)
    await queue.reprioritize(ids[1], front=True)  # the latest move goes first
    assert await drain(queue, w) == ["b", "c", "a"]


async def test_only_waiting_jobs_can_move(queue: JobQueue, registry: WorkerRegistry) -> None:
    w = await add_worker(registry, "w1")
    job_id = await submit(queue, "a")
    await queue.claim(w)
    with pytest.raises(Conflict, match="running"):
        await queue.reprioritize(job_id, front=True)
    with pytest.raises(BadRequest, match="from 0"):
        await queue.reprioritize(job_id, cls=12)


async def test_pause_stops_dispatch_until_resume(queue: JobQueue, registry: WorkerRegistry) -> None:
    w = await add_worker(registry, "w1")
    await submit(queue, "a")
    await queue.update_config(paused=True)
    assert await queue.claim(w) is None
    await queue.update_config(paused=False)
    assert await queue.claim(w) is not None


async def test_per_user_cap_refuses_with_a_reason(queue: JobQueue) -> None:
    await queue.update_config(cap=2)
    await submit(queue, "a")
    await submit(queue, "a")
    with pytest.raises(QueueFull, match="2 jobs waiting"):
        await submit(queue, "a")
    await submit(queue, "b")  # others are not affected
    await queue.set_user_cap("a", 3)
    await submit(queue, "a")


async def test_capability_routing(queue: JobQueue, registry: WorkerRegistry) -> None:
    plain = await add_worker(registry, "plain", ("EmptyImage", "SaveImage"))
    video = await add_worker(registry, "video", ("EmptyImage", "SaveImage", "SaveVideo"))
    needs_video = await queue.submit(
        "a", {"1": {"class_type": "SaveVideo"}}, cls=5, needs=["SaveVideo"]
    )
    ordinary = await submit(queue, "b")
    got = await queue.claim(plain)
    assert got is not None
    assert got.job_id == ordinary  # skipped the job it cannot run
    assert await queue.claim(plain) is None
    got = await queue.claim(video)
    assert got is not None
    assert got.job_id == needs_video.id


async def test_cancel_pending_and_running(queue: JobQueue, registry: WorkerRegistry) -> None:
    w = await add_worker(registry, "w1")
    running_id = await submit(queue, "a")
    pending_id = await submit(queue, "a")
    job = await queue.claim(w)
    assert job is not None
    assert await queue.cancel(pending_id, owner="a")
    assert await queue.cancel(running_id)
    assert (await queue.get(running_id)).state == JobState.CANCELLED
    assert await registry.take_cancels(w) == [running_id]
    assert not await queue.cancel(running_id)  # already final
    assert await queue.claim(w) is None
    with pytest.raises(Conflict):
        await queue.complete(job.job_id, job.lease_token, w, {}, {})


@pytest.mark.parametrize("mode", [QueueMode.FAIR, QueueMode.FIFO])
async def test_each_users_places_match_the_full_dispatch_order(
    queue: JobQueue, views: QueueViews, registry: WorkerRegistry, mode: QueueMode
) -> None:
    """The cheap per-user places agree with the simulated order, across
    classes, served users and front moves."""
    w = await add_worker(registry, "w1")
    await queue.update_config(mode=mode, cap=0)
    users = ("a", "b", "c", "d")
    ids = [await submit(queue, u) for u in ("a", "a", "a", "b", "c", "c", "a", "d", "b", "a")]
    await submit(queue, "c", cls=2)
    await submit(queue, "d", cls=7)
    assert await queue.claim(w) is not None  # someone is served already
    await queue.reprioritize(ids[8], front=True)
    order = await views.dispatch_order()
    everyone = await views.places_of(list(users))
    for user in users:
        mine = everyone.get(user, [])
        assert [p.position for _, p in mine] == [order.index(job_id) for job_id, _ in mine]
        assert {j for j, _ in mine} == set((await views.user_job_ids(user))[0])
        assert dict(mine) == await views.places(user)
