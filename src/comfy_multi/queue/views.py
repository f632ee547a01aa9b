"""Read-side views of the queue: depth, dispatch order, places, histories."""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Callable
from dataclasses import dataclass

from redis.asyncio import Redis

from comfy_multi.queue.jobs import JobQueue
from comfy_multi.queue.models import Job, QueueMode
from comfy_multi.store import keys

# the same constants as store/lua/_common.lua
FRONT_BASE = -(2**51)
NEVER_BASE = -(2**50)
RUN_TIME_EWMA = 0.2  # weight of the newest run in the average
DEFAULT_RUN_MS = 20_000.0  # assumed run time before any job finished


@dataclass
class Place:
    position: int  # 0 = next to be dispatched
    eta_seconds: float


class QueueViews:
    def __init__(self, queue: JobQueue) -> None:
        self.queue = queue
        self.redis: Redis = queue.redis
        self._cached: tuple[float, list[tuple[str, str]]] | None = None
        self._computing: asyncio.Future[list[tuple[str, str]]] | None = None

    async def depth(self) -> dict[int, int]:
        """Pending jobs per priority class (classes with none left out)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for cls in keys.CLASSES:
                pipe.zcard(keys.pending_all(cls))
            counts = await pipe.execute()
        return {cls: int(n) for cls, n in zip(keys.CLASSES, counts, strict=True) if n}

    async def running_ids(self) -> list[str]:
        return [str(x) for x in await self.redis.zrange(keys.RUNNING, 0, -1)]

    async def running(self) -> list[Job]:
        return await self.queue.get_many(await self.running_ids())

    async def dispatch_order(self) -> list[str]:
        """Pending job ids in the order the scheduler will hand them out (ignoring
        capability routing), simulating the claim script's fair round-robin."""
        return [job_id for job_id, _ in await self._order()]

    async def _order(self, max_age: float = 0.0) -> list[tuple[str, str]]:
        """(job id, user) in dispatch order; at most `max_age` seconds old."""
        now = time.monotonic()
        if not max_age:
            return await self._compute_order(now)
        if self._cached and now - self._cached[0] <= max_age:
            return self._cached[1]
        if self._computing is None:  # one computation serves every reader waiting for it
            self._computing = asyncio.ensure_future(self._compute_order(now))
            self._computing.add_done_callback(self._computed)
        return await asyncio.shield(self._computing)

    def _computed(self, _: asyncio.Future[list[tuple[str, str]]]) -> None:
        self._computing = None

    async def _compute_order(self, now: float) -> list[tuple[str, str]]:
        config = await self.queue.config()
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.LAST_SERVED)
            pipe.get(keys.SERVED_TICK)
            for cls in keys.CLASSES:
                pipe.zrange(keys.pending_users(cls), 0, -1)
            last_raw, tick_raw, *users_per_class = await pipe.execute()
        wanted = [
            (c, str(u))
            for c, users in zip(keys.CLASSES, users_per_class, strict=True)
            for u in users
        ]
        async with self.redis.pipeline(transaction=False) as pipe:
            for cls, u in wanted:
                pipe.zrange(keys.pending_user(cls, u), 0, -1, withscores=True)
            rows = await pipe.execute()
        per_class: dict[int, dict[str, list[tuple[str, float]]]] = {}
        for (cls, u), jobs in zip(wanted, rows, strict=True):
            per_class.setdefault(cls, {})[u] = [(str(j), float(seq)) for j, seq in jobs]
        last_served = {str(u): float(t) for u, t in last_raw.items()}
        tick = float(tick_raw or 0)
        order: list[tuple[str, str]] = []
        for cls in sorted(per_class):
            users = per_class[cls]
            if config.mode == QueueMode.FIFO:
                merged = sorted((seq, job, u) for u, jobs in users.items() for job, seq in jobs)
                order.extend((job, u) for _, job, u in merged)
            else:
                tick = _round_robin(users, last_served, tick, order)
        self._cached = (now, order)
        return order

    async def places(
        self, user: str | None = None, *, workers: int = 1, max_age: float = 0.0
    ) -> dict[str, Place]:
        """Each pending job's place in the dispatch order and an estimated wait
        with `workers` GPUs online: one user's jobs (one script call, cheap at
        any queue length), or with no user everyone's, from the simulated
        order (`max_age` allows a recent cached one)."""
        if user is not None:
            return dict((await self.places_of([user], workers=workers)).get(user, []))
        order = await self._order(max_age)
        eta = await self._eta(workers)
        return {
            job_id: Place(position, eta(position)) for position, (job_id, _) in enumerate(order)
        }

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

    async def record_run_time(self, run_ms: float) -> None:
        old = await self.redis.hget(keys.STATS, "run_ms_avg")
        new = run_ms if old is None else (1 - RUN_TIME_EWMA) * float(old) + RUN_TIME_EWMA * run_ms
        await self.redis.hset(keys.STATS, "run_ms_avg", f"{new:.1f}")

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


def _fair_score(seq: float, user: str, last_served: dict[str, float]) -> float:
    if seq < 0:
        return FRONT_BASE + seq
    if user in last_served:
        return last_served[user]
    return NEVER_BASE + seq


def _round_robin(
    users: dict[str, list[tuple[str, float]]],
    last_served: dict[str, float],
    tick: float,
    order: list[tuple[str, str]],
) -> float:
    """Append the class's jobs in fair order; return the advanced served clock."""
    heap = [(_fair_score(jobs[0][1], u, last_served), u, 0) for u, jobs in users.items() if jobs]
    heapq.heapify(heap)
    while heap:
        _, u, i = heapq.heappop(heap)
        order.append((users[u][i][0], u))
        tick += 1
        last_served[u] = tick
        if i + 1 < len(users[u]):
            heapq.heappush(heap, (_fair_score(users[u][i + 1][1], u, last_served), u, i + 1))
    return tick
