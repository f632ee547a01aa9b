"""How much of people's prompts the store keeps, and for how long.

A prompt (and its extra_data, which carries the whole workflow) can be
megabytes. While a job waits or runs it is needed; once it ended it is kept
`prompt_keep_minutes` (for "run again" and the history's view of it), then
dropped: the record, its outputs and figures stay. Every user has a budget
of stored prompt bytes (waiting + running + recently ended); a submit that
would go over it is refused with a clear 413, so one person cannot fill the
store for the room.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from redis.asyncio import Redis

from comfy_multi.errors import TooLarge
from comfy_multi.settings import Settings
from comfy_multi.store import keys

logger = logging.getLogger(__name__)

DROP_BATCH = 500
MIB = 1024 * 1024


class OverBudget(TooLarge):
    code = "prompt_budget"


async def reserve(redis: Redis, settings: Settings, user: str, nbytes: int) -> None:
    """Count `nbytes` against the user's budget, or refuse without counting."""
    budget = settings.prompt_budget_bytes
    total = int(await redis.incrby(keys.user_prompt_bytes(user), nbytes))
    if budget and total > budget:
        await redis.decrby(keys.user_prompt_bytes(user), nbytes)
        held = max(0, total - nbytes)
        raise OverBudget(
            f"your stored prompts take {held / MIB:.1f} MiB and this one {nbytes / MIB:.1f} MiB, "
            f"over your budget of {budget / MIB:.1f} MiB; ended jobs free theirs "
            f"{settings.prompt_keep_minutes:g} minutes after they end"
        )


async def release(redis: Redis, user: str, nbytes: int) -> None:
    await redis.decrby(keys.user_prompt_bytes(user), nbytes)


async def drop_ended_prompts(redis: Redis, settings: Settings, now_ms: int | None = None) -> int:
    """Drop prompt and extra_data of jobs that ended more than the keep time
    ago; a mark remembers how far earlier passes got. How many were dropped."""
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    cutoff = now_ms - int(settings.prompt_keep_minutes * 60_000)
    mark = await redis.get(keys.PROMPT_DROP_MARK)
    low = str(mark) if mark else "-inf"  # inclusive: jobs ending in the same ms as the mark
    rows: list[Any] = await redis.zrangebyscore(
        keys.FINISHED, low, cutoff, start=0, num=DROP_BATCH, withscores=True
    )
    ended = [(str(job_id), float(score)) for job_id, score in rows]
    if not ended:
        return 0
    async with redis.pipeline(transaction=False) as pipe:
        for job_id, _ in ended:
            pipe.hmget(keys.job(job_id), ["user", "prompt_bytes"])
            pipe.hdel(keys.job(job_id), "prompt", "extra_data")
        rows = await pipe.execute()
    async with redis.pipeline(transaction=False) as pipe:
        dropped = 0
        for (user, nbytes), removed in zip(rows[::2], rows[1::2], strict=True):
            if removed and user and nbytes:
                pipe.decrby(keys.user_prompt_bytes(str(user)), int(nbytes))
                dropped += 1
        pipe.set(keys.PROMPT_DROP_MARK, repr(ended[-1][1]))
        await pipe.execute()
    return dropped
