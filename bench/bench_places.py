"""What the read side of the fair rule costs Redis: the places and the
dispatch order, both walked by the claim rule in Lua (store/lua/places.lua,
order.lua), timed inside Redis (INFO commandstats), so the figure is the time
Redis is busy with one call, whatever else runs on the machine.

    .venv/bin/python bench/bench_places.py [--people 200] [--jobs 20] [--calls 30]

A full room by default: 200 people with 20 waiting jobs each (4,000 waiting).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from comfy_multi.queue.jobs import JobQueue
from comfy_multi.queue.views import QueueViews
from comfy_multi.settings import Settings
from comfy_multi.store.connection import connect
from comfy_multi.store.embedded import EmbeddedRedis

PROMPT = {"1": {"class_type": "EmptyImage", "inputs": {}}}


async def redis_us(redis: Any, call: Callable[[], Awaitable[Any]], calls: int) -> float:
    """Mean time Redis spends in one script call (µs)."""
    await call()
    await redis.config_resetstat()
    for _ in range(calls):
        await call()
    stats = await redis.info("commandstats")
    return float(stats["cmdstat_evalsha"]["usec_per_call"])


async def measure(redis: Any, people: int, jobs: int, calls: int) -> list[tuple[str, float]]:
    queue = JobQueue(redis, Settings(default_user_cap=0))
    views = QueueViews(queue)
    names = [f"user{i:03d}" for i in range(people)]
    for _ in range(jobs):  # everyone's first job, then everyone's second, ...
        for start in range(0, people, 20):
            await asyncio.gather(*(queue.submit(u, PROMPT, cls=5) for u in names[start:][:20]))
    rows = []

    async def row(label: str) -> None:
        rows.append(
            (
                f"{label}: places of one person",
                await redis_us(redis, lambda: views.places_of([names[-1]]), calls),
            )
        )
        rows.append(
            (
                f"{label}: places of everyone",
                await redis_us(redis, lambda: views.places_of(names), max(3, calls // 10)),
            )
        )
        rows.append(
            (
                f"{label}: whole dispatch order",
                await redis_us(redis, views.dispatch_order, max(3, calls // 10)),
            )
        )

    await row("nobody served yet")
    for _ in range(people // 2):
        await queue.claim("bench")
    await row(f"{people // 2} claims later")
    pending = (await views.user_job_ids(names[-1]))[0]
    for job_id in pending[: jobs // 2]:
        await queue.reprioritize(job_id, front=True)
    await row(f"{jobs // 2} jobs moved to the front")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--calls", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        server = EmbeddedRedis(Settings(data_dir=Path(scratch)).redis_dir)
        server.start()
        try:

            async def run() -> list[tuple[str, float]]:
                redis = connect(server.url)
                try:
                    return await measure(redis, args.people, args.jobs, args.calls)
                finally:
                    await redis.aclose()

            rows = asyncio.run(run())
        finally:
            server.stop()
    print(f"{args.people} people x {args.jobs} waiting jobs; Redis time per call")
    for label, us in rows:
        print(f"  {label:<55} {us / 1000:8.2f} ms")


if __name__ == "__main__":
    main()
