"""Counts of the room as a whole and per person, the standing broadcast, and
what each worker published: the small reads the faces show."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from comfy_multi.settings import PRIORITY_CLASSES
from comfy_multi.store import keys

CLASSES = range(PRIORITY_CLASSES)  # the priority classes, 0 first


@dataclass(frozen=True)
class Activity:
    """One person's job counts and the time of their last job activity."""

    pending: int
    running: int
    finished: int
    last_active_ms: int | None


def _int(value: Any) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


async def activity(redis: Redis, names: Sequence[str]) -> list[Activity]:
    """For each person: waiting, running and finished counts, and the newest of
    their newest waiting job's queue time, running job's start, finished job's end."""
    async with redis.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.zcard(keys.user_pending(name))
            pipe.zrevrange(keys.user_pending(name), 0, 0)
            pipe.zrevrange(keys.user_running(name), 0, 0, withscores=True)
            pipe.zcard(keys.user_running(name))
            pipe.zrevrange(keys.user_history(name), 0, 0, withscores=True)
            pipe.zcard(keys.user_history(name))
        flat = await pipe.execute()
    per_user = [flat[i : i + 6] for i in range(0, len(flat), 6)]
    async with redis.pipeline(transaction=False) as pipe:
        for row in per_user:
            # echo keeps one answer per user when they have nothing pending
            if row[1]:
                pipe.hget(keys.job(row[1][0]), "queued_ms")
            else:
                pipe.echo("")
        queued = await pipe.execute()
    out = []
    for row, newest_queued in zip(per_user, queued, strict=True):
        pending, _, running_top, running, history_top, finished = row
        times = [_int(newest_queued)]
        times += [int(score) for _, score in running_top]
        times += [int(score) for _, score in history_top]
        last = max((t for t in times if t), default=None)
        out.append(Activity(int(pending), int(running), int(finished), last))
    return out


async def remaining(redis: Redis, user: str) -> int:
    """One person's jobs waiting plus running."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zcard(keys.user_pending(user))
        pipe.zcard(keys.user_running(user))
        pending, running = await pipe.execute()
    return int(pending) + int(running)


async def running_count(redis: Redis) -> int:
    return int(await redis.zcard(keys.RUNNING))


async def user_count(redis: Redis) -> int:
    return int(await redis.scard(keys.USERS))


async def broadcast(redis: Redis) -> str | None:
    """The instructor's standing message to every page, None when there is none."""
    message = await redis.hget(keys.CONFIG, "broadcast")
    return None if message is None else str(message)


async def set_broadcast(redis: Redis, message: str) -> None:
    await redis.hset(keys.CONFIG, "broadcast", message)


async def worker_models(redis: Redis, worker_id: str) -> str | None:
    """The model files a worker published (JSON: folder -> names), as stored."""
    raw = await redis.hget(keys.worker(worker_id), "models")
    return None if raw is None else str(raw)
