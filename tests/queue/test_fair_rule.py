"""One fair rule: the order the dashboard and the API show, and everyone's
place, come from the claim rule itself. Random workloads against the real
Redis: claims happen in exactly the predicted order, and every place is the
job's position in it."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from comfy_multi.errors import QueueFull
from comfy_multi.queue.jobs import JobQueue
from comfy_multi.queue.models import QueueMode
from comfy_multi.queue.views import QueueViews
from comfy_multi.queue.workers import WorkerRegistry
from comfy_multi.settings import Settings
from comfy_multi.store.connection import connect

from .conftest import add_worker

PLAIN = ("EmptyImage", "SaveImage")
VIDEO = (*PLAIN, "SaveVideo")
USERS = "abcdef"
CLASSES = (0, 1, 5, 9)

ops = st.one_of(
    st.tuples(
        st.just("submit"),
        st.sampled_from(USERS),
        st.sampled_from(CLASSES),
        st.booleans(),  # needs SaveVideo
        st.booleans(),  # straight to the front
    ),
    st.tuples(
        st.just("burst"), st.sampled_from(USERS), st.integers(2, 8), st.sampled_from(CLASSES)
    ),
    st.tuples(st.just("claim"), st.sampled_from(("plain", "video", "any")), st.integers(0, 3)),
    st.tuples(st.just("front"), st.integers(0, 50)),
    st.tuples(st.just("class"), st.integers(0, 50), st.sampled_from(CLASSES)),
    st.tuples(st.just("cancel"), st.integers(0, 50)),
    st.tuples(st.just("finish"), st.integers(0, 50), st.sampled_from(("done", "retry", "release"))),
    st.tuples(st.just("cap"), st.sampled_from(USERS), st.sampled_from((None, 0, 1, 3, 8))),
    st.tuples(st.just("mode"), st.sampled_from((QueueMode.FAIR, QueueMode.FIFO))),
    st.tuples(st.just("pause"), st.booleans()),
)


class Room:
    def __init__(self, queue: JobQueue, views: QueueViews) -> None:
        self.queue = queue
        self.views = views
        self.pending: list[str] = []
        self.running: dict[str, tuple[str, str]] = {}  # job -> (worker, token)
        self.paused = False

    async def apply(self, op: tuple[Any, ...]) -> None:
        kind, *args = op
        if kind in ("submit", "burst"):
            await self.submit(kind, *args)
        elif kind == "claim":
            await self.claim(*args)
        elif kind in ("front", "class", "cancel") and self.pending:
            await self.move(kind, *args)
        elif kind == "finish" and self.running:
            await self.finish(*args)
        elif kind == "cap":
            await self.queue.set_user_cap(args[0], args[1])
        elif kind == "mode":
            await self.queue.update_config(mode=args[0])
        elif kind == "pause":
            self.paused = args[0]
            await self.queue.update_config(paused=self.paused)

    async def submit(self, kind: str, user: str, *args: Any) -> None:
        if kind == "burst":
            count, cls = args
            for _ in range(count):
                await self.submit("submit", user, cls, False, False)
            return
        cls, video, front = args
        needs = list(VIDEO if video else PLAIN)
        prompt = {"1": {"class_type": needs[-1], "inputs": {}}}
        try:
            job = await self.queue.submit(user, prompt, cls=cls, needs=needs, front=front)
        except QueueFull:
            return
        self.pending.append(job.id)

    async def move(self, kind: str, index: int, cls: int | None = None) -> None:
        job_id = self.pending[index % len(self.pending)]
        if kind == "cancel":
            await self.queue.cancel(job_id)
            self.pending.remove(job_id)
        else:
            await self.queue.reprioritize(job_id, cls=cls, front=kind == "front")

    async def finish(self, index: int, how: str) -> None:
        job_id = sorted(self.running)[index % len(self.running)]
        worker, token = self.running.pop(job_id)
        if how == "done":
            await self.queue.complete(job_id, token, worker, {}, {})
        else:
            outcome = await self.queue.fail(job_id, token, worker, {"type": "x"}, mode=how)
            if outcome == "requeued":  # not once the attempts are used up
                self.pending.append(job_id)

    async def claim(self, worker: str, times: int = 1) -> list[str]:
        """Claim `times` times, each checked against the order predicted just before."""
        claimed = []
        for _ in range(times):
            predicted = await self.views.dispatch_order(worker_id=worker, limit=1)
            job = await self.queue.claim(worker)
            if self.paused:
                assert job is None
                return claimed
            assert (job and job.job_id) == (predicted[0] if predicted else None)
            if job is None:
                return claimed
            self.pending.remove(job.job_id)
            self.running[job.job_id] = (worker, job.lease_token)
            claimed.append(job.job_id)
        return claimed

    async def check_places(self) -> None:
        order = await self.views.dispatch_order()
        assert sorted(order) == sorted(self.pending)
        everyone = await self.views.places_of(list(USERS))
        placed = {job_id: p.position for mine in everyone.values() for job_id, p in mine}
        assert placed == {job_id: i for i, job_id in enumerate(order)}

    async def check_whole_order(self, worker: str) -> None:
        """A worker claiming alone takes exactly the predicted order, to the end."""
        await self.queue.update_config(paused=False)
        self.paused = False
        predicted = await self.views.dispatch_order(worker_id=worker, limit=len(self.pending) + 1)
        assert await self.claim(worker, len(self.pending) + 1) == predicted


@hsettings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    steps=st.lists(ops, min_size=1, max_size=40),
    last=st.sampled_from(("plain", "video", "any")),
)
async def test_claims_follow_the_predicted_order_and_places_match_it(
    redis_url: str, settings: Settings, steps: list[tuple[Any, ...]], last: str
) -> None:
    client = connect(redis_url)
    try:
        await client.flushall()
        queue = JobQueue(client, settings.model_copy(update={"default_user_cap": 6}))
        registry = WorkerRegistry(client, settings)
        await add_worker(registry, "plain", PLAIN)
        await add_worker(registry, "video", VIDEO)
        await add_worker(registry, "any", ())  # published no node list: runs everything
        room = Room(queue, QueueViews(queue))
        for op in steps:
            await room.apply(op)
            await room.check_places()
        await room.check_whole_order(last)
    finally:
        await client.aclose()


async def test_places_walk_the_same_rule_as_a_long_order(
    queue: JobQueue, registry: WorkerRegistry
) -> None:
    """Places of a long queue, past the point where everyone has been served
    once and turns are laid out at once, equal the claim-by-claim order."""
    await queue.update_config(cap=0)
    room = Room(queue, QueueViews(queue))
    for i in range(300):
        user = USERS[(i * 7) % len(USERS)] if i % 3 else "a"
        await room.apply(("submit", user, 5 if i % 11 else 1, False, i % 37 == 0))
    await room.apply(("front", 5))
    await add_worker(registry, "any", ())
    await room.apply(("claim", "any", 3))
    await room.check_places()
    await room.check_whole_order("any")


async def test_turns_in_one_class_set_the_order_in_the_next(
    queue: JobQueue, registry: WorkerRegistry
) -> None:
    """Who was served last in an urgent class waits longest in the next one."""
    await queue.update_config(cap=0)
    await add_worker(registry, "any", ())
    room = Room(queue, QueueViews(queue))
    for user in "abcdef":
        await room.apply(("burst", user, 3, 5))
    for user, count in zip("fedcb", (1, 2, 1, 3, 1), strict=True):
        await room.apply(("burst", user, count, 1))
    await room.check_places()
    order = await room.views.dispatch_order()
    users = [(await queue.get(job_id)).user for job_id in order]
    assert "".join(users) == "fedcbec" + "c" + "afdbec" * 3
    await room.check_whole_order("any")
