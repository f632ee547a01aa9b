"""Read-side views of the queue: depth, dispatch order, places, histories.

The order and the places come from the claim rule itself, walked without
claiming in Lua (store/lua/order.lua, places.lua); nothing here repeats it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from redis.asyncio import Redis

from comfy_multi.queue.jobs import CLAIM_LOOKAHEAD, JobQueue
from comfy_multi.queue.models import Job
from comfy_multi.queue.room import CLASSES
from comfy_multi.store import keys

DEFAULT_RUN_MS = 20_000.0  # assumed run time before any job finished
ORDER_LIMIT = 10_000  # jobs the order walks; any beyond follow by class and arrival


@dataclass
class Place:
    position: int  # 0 = next to be dispatched
    eta_seconds: float


class QueueViews:
    def __init__(self, queue: JobQueue) -> None:
        self.queue = queue
        self.redis: Redis = queue.redis
        self._cached: tuple[float, list[str]] | None = None
        self._computing: asyncio.Future[list[str]] | None = None

    async def depth(self) -> dict[int, int]:
        """Pending jobs per priority class (classes with none left out)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for cls in CLASSES:
                pipe.zcard(keys.pending_all(cls))
            counts = await pipe.execute()
        return {cls: int(n) for cls, n in zip(CLASSES, counts, strict=True) if n}

    async def running_ids(self) -> list[str]:
        return [str(x) for x in await self.redis.zrange(keys.RUNNING, 0, -1)]

    async def running(self) -> list[Job]:
        return await self.queue.get_many(await self.running_ids())

    async def dispatch_order(self, *, worker_id: str = "", limit: int = ORDER_LIMIT) -> list[str]:
        """Pending job ids in the order claims would hand them out to this worker
        ("" for one that runs everything): the first `limit`, from the claim rule
        itself; with no worker given, every other waiting job follows."""
        order = await self.queue.scripts.order(worker_id, limit, CLAIM_LOOKAHEAD)
        if worker_id or len(order) < limit:
            return order
        return order + await self._beyond(set(order))

    async def _beyond(self, placed: set[str]) -> list[str]:
        """Waiting jobs past the walked part of the order, by class and arrival."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for cls in CLASSES:
                pipe.zrange(keys.pending_all(cls), 0, -1)
            per_class = await pipe.execute()
        return [str(j) for ids in per_class for j in ids if str(j) not in placed]

    async def _order(self, max_age: float = 0.0) -> list[str]:
        """The dispatch order, at most `max_age` seconds old."""
        now = time.monotonic()
        if not max_age:
            return await self._compute_order(now)
        if self._cached and now - self._cached[0] <= max_age:
            return self._cached[1]
        if self._computing is None:  # one computation serves every reader waiting for it
            self._computing = asyncio.ensure_future(self._compute_order(now))
            self._computing.add_done_callback(self._computed)
        return await asyncio.shield(self._computing)

    def _computed(self, _: asyncio.Future[list[str]]) -> None:
        self._computing = None

    async def _compute_order(self, now: float) -> list[str]:
        order = await self.dispatch_order()
        self._cached = (now, order)
        return order

    async def places(
        self, user: str | None = None, *, workers: int = 1, max_age: float = 0.0
    ) -> dict[str, Place]:
        """Each pending job's place in the dispatch order and an estimated wait
        with `workers` GPUs online: one user's jobs (one script call, cheap at
        any queue length), or with no user everyone's, from the whole order
        (`max_age` allows a recent cached one)."""
        if user is not None:
            return dict((await self.places_of([user], workers=workers)).get(user, []))
        order = await self._order(max_age)
        eta = await self._eta(workers)
        return {job_id: Place(position, eta(position)) for position, job_id in enumerate(order)}

    async def places_of(
        self, users: list[str], *, workers: int = 1
    ) -> dict[str, list[tuple[str, Place]]]:
        """Each listed user's pending jobs with their places, soonest first."""
        eta = await self._eta(workers)
        out: dict[str, list[tuple[str, Place]]] = {}
        for user, job_id, position in await self.queue.scripts.places(users):
            out.setdefault(user, []).append((job_id, Place(position, eta(position))))
        for jobs in out.values():
            jobs.sort(key=lambda item: item[1].position)
        return out

    async def _eta(self, workers: int) -> Callable[[int], float]:
        avg_s = await self.average_run_ms() / 1000
        per_round = max(1, workers)
        return lambda position: round((position // per_round + 1) * avg_s, 1)

    async def average_run_ms(self) -> float:
        value = await self.redis.hget(keys.STATS, "run_ms_avg")
        return float(value) if value else DEFAULT_RUN_MS

    async def user_job_ids(self, user: str) -> tuple[list[str], list[str], list[str]]:
        """(pending by seq, running, finished newest first) ids of one user."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zrange(keys.user_pending(user), 0, -1)
            pipe.zrange(keys.user_running(user), 0, -1)
            pipe.zrevrange(keys.user_history(user), 0, -1)
            pending, running, finished = await pipe.execute()
        return list(pending), list(running), list(finished)

    async def recent_finished(self, limit: int = 50) -> list[Job]:
        ids = await self.redis.zrevrange(keys.FINISHED, 0, limit - 1)
        return await self.queue.get_many([str(x) for x in ids])
