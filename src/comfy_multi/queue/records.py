"""Job records read by id, and the id lists that name them, for the views
and reports outside the claim path. Reads only, batched in pipelines."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from redis.asyncio import Redis

from comfy_multi.queue.room import CLASSES
from comfy_multi.store import keys

OWNER_SLICE = 64


async def job_fields(
    redis: Redis, job_ids: Sequence[str], fields: Sequence[str]
) -> list[list[str | None]]:
    """The named fields of each job, in order (None where a record or field is missing)."""
    if not job_ids:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.hmget(keys.job(job_id), list(fields))
        found: list[list[str | None]] = await pipe.execute()
    return found


async def job_owners(redis: Redis, job_ids: list[str]) -> list[str | None]:
    """The user of each job, read in slices so that a long queue never holds
    the event loop (and the events it relays) for long."""
    owners: list[str | None] = []
    for start in range(0, len(job_ids), OWNER_SLICE):
        async with redis.pipeline(transaction=False) as pipe:
            for job_id in job_ids[start : start + OWNER_SLICE]:
                pipe.hget(keys.job(job_id), "user")
            owners.extend(await pipe.execute())
        await asyncio.sleep(0)
    return owners


async def finished_ids(redis: Redis, count: int | None = None) -> list[str]:
    """The room's finished jobs, newest first (the newest `count` when given)."""
    stop = -1 if count is None else count - 1
    return [str(x) for x in await redis.zrevrange(keys.FINISHED, 0, stop)]


async def all_job_ids(redis: Redis) -> set[str]:
    """Every job still on record: finished (room-wide and per person), running, waiting."""
    names = sorted(str(n) for n in await redis.smembers(keys.USERS))
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zrange(keys.FINISHED, 0, -1)
        pipe.zrange(keys.RUNNING, 0, -1)
        for cls in CLASSES:
            pipe.zrange(keys.pending_all(cls), 0, -1)
        for name in names:
            pipe.zrange(keys.user_history(name), 0, -1)
        lists = await pipe.execute()
    return {str(job_id) for ids in lists for job_id in ids}


async def forget_history(redis: Redis, user: str, job_ids: list[str] | None) -> int:
    """Take finished jobs out of one person's history (all when None); the
    records stay until they expire."""
    key = keys.user_history(user)
    if job_ids is None:
        return int(await redis.delete(key))
    if not job_ids:
        return 0
    return int(await redis.zrem(key, *job_ids))


async def forget_person(redis: Redis, user: str, job_ids: Sequence[str]) -> None:
    """Delete a removed person's job records and every per-person list, so a
    new person given the same name starts with none of it."""
    async with redis.pipeline(transaction=True) as pipe:
        for job_id in job_ids:
            pipe.delete(keys.job(job_id))
        if job_ids:
            pipe.zrem(keys.FINISHED, *job_ids)
        pipe.delete(
            keys.user_history(user),
            keys.user_pending(user),
            keys.user_running(user),
            keys.user_prompt_bytes(user),
        )
        pipe.hdel(keys.USER_CAPS, user)
        pipe.hdel(keys.LAST_SERVED, user)
        await pipe.execute()
