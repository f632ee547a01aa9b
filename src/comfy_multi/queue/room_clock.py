"""How long the room has served: `up` marks its start and stop; the report reads it.

`served_ms` adds up earlier runs that stopped cleanly; a run that crashed counts
only until its last start, since nobody saw it stop.
"""

from __future__ import annotations

from redis.asyncio import Redis

from comfy_multi.store import keys


async def mark_started(redis: Redis, now_ms: int) -> None:
    h = keys.text_map(await redis.hgetall(keys.ROOM_CLOCK))
    started, stopped = int(h.get("started_ms") or 0), int(h.get("stopped_ms") or 0)
    served = int(h.get("served_ms") or 0)
    if started and stopped >= started:
        served += stopped - started
    await redis.hset(
        keys.ROOM_CLOCK, mapping={"started_ms": now_ms, "stopped_ms": 0, "served_ms": served}
    )


async def mark_stopped(redis: Redis, now_ms: int) -> None:
    await redis.hset(keys.ROOM_CLOCK, "stopped_ms", now_ms)


async def uptime_seconds(redis: Redis, now_ms: int, *, running: bool) -> float | None:
    """All clean runs plus the current (or last) one; None before any `up`."""
    h = keys.text_map(await redis.hgetall(keys.ROOM_CLOCK))
    started = int(h.get("started_ms") or 0)
    if not started:
        return None
    stopped = int(h.get("stopped_ms") or 0)
    last_end = stopped if stopped >= started else started  # crashed: its end is unknown
    end = now_ms if running else last_end
    return (int(h.get("served_ms") or 0) + end - started) / 1000
