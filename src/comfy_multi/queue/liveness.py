"""Running jobs as people watch them: who, since when, which attempt, where
the job is, and whether its worker has gone silent.

A killed worker sends nothing; its job keeps its lease until the lease runs
out. Between the two, the only sign is that heartbeats stopped, so both the
participant's bar and the dashboard read the worker's last heartbeat here.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import orjson
from redis.asyncio import Redis

from comfy_multi.settings import Settings
from comfy_multi.store import keys

SLICE = 64  # jobs read per round trip, so a long list never holds the loop long
SILENT_AFTER_HEARTBEATS = 2  # missed heartbeats before a worker counts as silent
SILENT_SLACK_MS = 1000  # ... plus this for a slow network


@dataclass
class RunningJob:
    id: str
    user: str
    worker: str | None
    started_ms: int | None
    attempts: int
    step: dict[str, Any] | None  # the latest progress or step the worker relayed
    silent_since_ms: int | None = None  # the worker's last heartbeat, once it is overdue


def silent_after_ms(settings: Settings) -> int:
    return int(settings.heartbeat_seconds * SILENT_AFTER_HEARTBEATS * 1000) + SILENT_SLACK_MS


def _int(value: Any) -> int | None:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def _step(raw: Any) -> dict[str, Any] | None:
    if not raw:
        return None
    try:
        found = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return found if isinstance(found, dict) else None


async def running_jobs(
    redis: Redis, settings: Settings, job_ids: list[str], now_ms: int
) -> list[RunningJob]:
    """The running jobs named, with `silent_since_ms` set where the worker is overdue."""
    fields = ["user", "worker", "started_ms", "attempts", "progress", "state"]
    out: list[RunningJob] = []
    for start in range(0, len(job_ids), SLICE):
        chunk = job_ids[start : start + SLICE]
        async with redis.pipeline(transaction=False) as pipe:
            for job_id in chunk:
                pipe.hmget(keys.job(job_id), fields)
            rows = await pipe.execute()
        for job_id, (user, worker, started, attempts, progress, state) in zip(
            chunk, rows, strict=True
        ):
            if state != "running" or not user:
                continue
            out.append(
                RunningJob(
                    id=job_id,
                    user=str(user),
                    worker=str(worker) if worker else None,
                    started_ms=_int(started),
                    attempts=_int(attempts) or 1,
                    step=_step(progress),
                )
            )
        await asyncio.sleep(0)
    workers = sorted({j.worker for j in out if j.worker})
    if workers:
        seen = dict(zip(workers, await redis.zmscore(keys.WORKERS, workers), strict=True))
        overdue = now_ms - silent_after_ms(settings)
        for job in out:
            last = seen.get(job.worker or "")
            if last is not None and last < overdue:
                job.silent_since_ms = int(last)
    return out


async def attempts_of(redis: Redis, job_ids: list[str]) -> dict[str, int]:
    """How many times each job has started (0: never)."""
    if not job_ids:
        return {}
    async with redis.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.hget(keys.job(job_id), "attempts")
        values = await pipe.execute()
    return {job_id: _int(v) or 0 for job_id, v in zip(job_ids, values, strict=True)}
