"""Every key of the platform copied out of Redis at one instant, and put back.

The copy is one script call, so it is consistent: nothing changes between the
first key read and the last (a room's state is a few MB; the call takes ms).
Payloads are Redis DUMP format, restored with RESTORE, so types and TTLs come
back exactly; a backup is portable between Redis and Valkey of one major version.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from importlib.resources import files

from redis.asyncio import Redis

from comfy_multi.store import keys

RESTORE_BATCH = 500


@dataclass(frozen=True)
class KeyCopy:
    key: str
    pttl_ms: int  # -1: no expiry
    payload: bytes


def _lua() -> str:
    return files("comfy_multi.store.lua").joinpath("snapshot.lua").read_text()


async def copy_all(raw: Redis) -> list[KeyCopy]:
    """`raw` must not decode responses: DUMP payloads are binary."""
    flat = await raw.register_script(_lua())(args=[keys.PREFIX])
    return [
        KeyCopy(key=flat[i].decode(), pttl_ms=int(flat[i + 1]), payload=bytes(flat[i + 2]))
        for i in range(0, len(flat), 3)
    ]


async def platform_key_count(redis: Redis) -> int:
    count = 0
    async for _ in redis.scan_iter(match=f"{keys.PREFIX}*", count=1000):
        count += 1
    return count


async def delete_all(redis: Redis) -> None:
    batch: list[str] = []
    async for key in redis.scan_iter(match=f"{keys.PREFIX}*", count=1000):
        batch.append(key if isinstance(key, str) else key.decode())
        if len(batch) >= RESTORE_BATCH:
            await redis.unlink(*batch)
            batch.clear()
    if batch:
        await redis.unlink(*batch)


async def restore_all(raw: Redis, copies: Iterable[KeyCopy]) -> int:
    """RESTORE each key (replacing any of the same name); the count restored."""
    done = 0
    pipe = raw.pipeline(transaction=False)
    for copy in copies:
        if not copy.key.startswith(keys.PREFIX):
            raise ValueError(f"backup holds a key outside the platform: {copy.key!r}")
        pipe.restore(copy.key, max(copy.pttl_ms, 0), copy.payload, replace=True)
        done += 1
        if done % RESTORE_BATCH == 0:
            await pipe.execute()
    await pipe.execute()
    return done
