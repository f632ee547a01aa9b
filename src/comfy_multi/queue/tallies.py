"""Counts of finished jobs and their wait and run times, kept in Redis for /metrics.

Jobs finish inside Lua scripts, so the tallies are brought up to date when
/metrics is scraped: every job that finished since the last scrape (any
replica's) is folded in once. The fold is one optimistic transaction on the
tallies hash; a replica scraping at the same moment retries instead of counting
twice.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.exceptions import WatchError

from comfy_multi.store import keys

logger = logging.getLogger(__name__)

WAIT_BUCKETS = (1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0)
RUN_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
FINAL_STATES = ("done", "failed", "cancelled")
FOLD_BATCH = 2000
FOLD_RETRIES = 5
CURSOR = "cursor"  # finish time (ms) of the last job folded in


@dataclass
class Histogram:
    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)  # per bucket, the last is +Inf
    total: float = 0.0

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        index = next((i for i, b in enumerate(self.bounds) if value <= b), len(self.bounds))
        self.counts[index] += 1
        self.total += value

    def cumulative(self) -> list[tuple[float, int]]:
        """Prometheus buckets: (upper bound, observations at or below it)."""
        out, running = [], 0
        for bound, count in zip((*self.bounds, math.inf), self.counts, strict=True):
            running += count
            out.append((bound, running))
        return out

    @property
    def count(self) -> int:
        return sum(self.counts)


@dataclass
class Tallies:
    wait: Histogram = field(default_factory=lambda: Histogram(WAIT_BUCKETS))
    run: Histogram = field(default_factory=lambda: Histogram(RUN_BUCKETS))
    finished: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FINAL_STATES, 0))

    def add_job(
        self, state: str, queued: int | None, started: int | None, done: int | None
    ) -> None:
        """One finished job: its wait counts if it ever started, its run if it ran to an end."""
        if state in self.finished:
            self.finished[state] += 1
        if queued and started:
            self.wait.observe(max(0, started - queued) / 1000)
        if started and done and state in ("done", "failed"):
            self.run.observe(max(0, done - started) / 1000)

    def increments(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, hist in (("wait", self.wait), ("run", self.run)):
            for i, count in enumerate(hist.counts):
                if count:
                    out[f"{name}:{i}"] = count
            if hist.count:
                out[f"{name}:sum"] = hist.total
        for state, n in self.finished.items():
            if n:
                out[f"finished:{state}"] = n
        return out

    @classmethod
    def from_hash(cls, h: dict[str, str]) -> Tallies:
        t = cls()
        for name, hist in (("wait", t.wait), ("run", t.run)):
            hist.counts = [int(float(h.get(f"{name}:{i}", 0))) for i in range(len(hist.counts))]
            hist.total = float(h.get(f"{name}:sum", 0))
        t.finished = {s: int(float(h.get(f"finished:{s}", 0))) for s in FINAL_STATES}
        return t


async def _job_times(redis: Redis, job_ids: list[str]) -> list[list[str | None]]:
    async with redis.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.hmget(keys.job(job_id), ["state", "queued_ms", "started_ms", "finished_ms"])
        rows: list[list[str | None]] = await pipe.execute()
    return rows


def _ms(value: str | None) -> int | None:
    return int(float(value)) if value else None


def _batch(rows: list[tuple[str, float]]) -> tuple[list[str], float]:
    """The ids to fold and the new cursor. A full batch stops before its last
    finish time, so jobs sharing that millisecond are all folded next time."""
    if len(rows) == FOLD_BATCH and rows[0][1] != rows[-1][1]:
        last = rows[-1][1]
        rows = [r for r in rows if r[1] != last]
    return [str(r[0]) for r in rows], rows[-1][1]


async def _fold_once(redis: Redis) -> bool:
    """Fold one batch; True when there may be more."""
    async with redis.pipeline(transaction=True) as pipe:
        await pipe.watch(keys.METRICS)
        cursor = float(await pipe.hget(keys.METRICS, CURSOR) or 0)
        seconds, micros = await pipe.time()
        # a job finishing later is stamped later than now: stop just short of it
        upto = int(seconds) * 1000 + int(micros) // 1000 - 1
        rows = await pipe.zrangebyscore(
            keys.FINISHED, f"({cursor}", upto, start=0, num=FOLD_BATCH, withscores=True
        )
        if not rows:
            return False
        scored = [(str(row[0]), float(row[1])) for row in rows]  # withscores: (member, score)
        job_ids, new_cursor = _batch(scored)
        tallies = Tallies()
        for state, queued, started, finished in await _job_times(redis, job_ids):
            if state:
                tallies.add_job(state, _ms(queued), _ms(started), _ms(finished))
        pipe.multi()  # type: ignore[no-untyped-call]
        for name, amount in tallies.increments().items():
            pipe.hincrbyfloat(keys.METRICS, name, amount)
        pipe.hset(keys.METRICS, CURSOR, repr(new_cursor))
        await pipe.execute()
        return len(rows) == FOLD_BATCH


async def fold(redis: Redis) -> None:
    """Bring the tallies up to date with every job finished so far."""
    retries = 0
    more = True
    while more:
        try:
            more = await _fold_once(redis)
        except WatchError:
            retries += 1
            if retries > FOLD_RETRIES:
                logger.warning("metrics fold kept colliding with another replica; next scrape")
                return


async def read(redis: Redis) -> Tallies:
    raw = await redis.hgetall(keys.METRICS)
    return Tallies.from_hash({str(k): str(v) for k, v in raw.items()})
