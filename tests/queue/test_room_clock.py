"""The room's uptime for the report: clean runs add up, a crash's end is not guessed."""

from __future__ import annotations

from typing import Any

from comfy_multi.queue.room_clock import mark_started, mark_stopped, uptime_seconds


async def test_uptime_adds_up_runs(aredis: Any) -> None:
    assert await uptime_seconds(aredis, 0, running=False) is None
    await mark_started(aredis, 1_000)
    assert await uptime_seconds(aredis, 61_000, running=True) == 60
    await mark_stopped(aredis, 3_601_000)
    await mark_started(aredis, 10_000_000)  # the morning's run counts: 3,600 s
    assert await uptime_seconds(aredis, 10_060_000, running=True) == 3_660
    # this run crashes: nothing saw it stop, so it adds nothing once the room is down
    assert await uptime_seconds(aredis, 99_000_000, running=False) == 3_600
