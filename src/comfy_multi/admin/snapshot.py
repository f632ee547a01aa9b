"""What the dashboard shows, read from Redis: job rows, workers, the room, the config.

Job rows carry only the summary fields the dashboard needs; a job's prompt can
be large and is never read here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import Any

import orjson
from redis.asyncio import Redis
from starlette.requests import HTTPConnection

from comfy_multi.queue import records
from comfy_multi.queue import room as room_reads
from comfy_multi.queue.feedback import FeedbackBox
from comfy_multi.services.platform import Platform, get_platform

RECENT_FINISHED = 50  # finished jobs the dashboard lists
ACTIVE_WINDOW_S = 600  # a user counts as "active now" after a job event this recent
ERROR_CHARS = 300

ROW_FIELDS = (
    "id",
    "user",
    "state",
    "cls",
    "worker",
    "attempts",
    "queued_ms",
    "started_ms",
    "finished_ms",
    "error",
    "progress",
)

JobRow = dict[str, Any]
PageCounts = Callable[[], dict[str, int]]


def open_pages(conn: HTTPConnection) -> PageCounts:
    """Participants' open ComfyUI pages (websockets) per user, as this gateway
    process's fan-out hub holds them; other replicas' pages are not seen."""

    platform = get_platform(conn)
    return lambda: platform.open_pages()  # installed once the first page connects


def now_ms() -> int:
    return int(time.time() * 1000)


def _int(value: Any) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def _json(value: Any) -> Any:
    if not isinstance(value, str) or not value:
        return value or None
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return value


def error_text(error: Any) -> str | None:
    """One line for a person: ComfyUI's exception message, or our own reason."""
    error = _json(error)
    if not error:
        return None
    if isinstance(error, dict):
        nested = error.get("error")
        inner: dict[str, Any] = nested if isinstance(nested, dict) else error
        for field in ("exception_message", "message", "type"):
            if inner.get(field):
                node = inner.get("node_type")
                text = f"{node}: {inner[field]}" if node else str(inner[field])
                return text.strip()[:ERROR_CHARS]
    return str(error)[:ERROR_CHARS]


def job_row(raw: Mapping[str, Any]) -> JobRow | None:
    """A dashboard row from a job hash or an event's job summary."""
    if not raw.get("id") or not raw.get("state"):
        return None
    progress = _json(raw.get("progress"))
    row: JobRow = {
        "id": str(raw["id"]),
        "user": str(raw.get("user", "")),
        "state": str(raw["state"]),
        "cls": _int(raw.get("cls")),
        "worker": raw.get("worker") or None,
        "attempts": _int(raw.get("attempts")) or 0,
        "queued_ms": _int(raw.get("queued_ms")),
        "started_ms": _int(raw.get("started_ms")),
        "finished_ms": _int(raw.get("finished_ms")),
        "error": error_text(raw.get("error")),
    }
    if isinstance(progress, dict) and raw["state"] == "running":
        row["progress"] = progress_of(progress)
    return row


def progress_of(data: Mapping[str, Any]) -> dict[str, Any]:
    """ComfyUI's `progress` data, or a worker's step, reduced to what a bar needs:
    `{value, max}` and, from a step, the node's `label` and its `number` `of`."""
    out: dict[str, Any] = {
        "value": _int(data.get("value")) or 0,
        "max": _int(data.get("max")) or 0,
    }
    if isinstance(data.get("label"), str):
        out.update(
            label=str(data["label"])[:80],
            number=_int(data.get("number")) or 0,
            of=_int(data.get("of")) or 0,
        )
    return out


async def job_rows(redis: Redis, job_ids: list[str]) -> dict[str, JobRow]:
    if not job_ids:
        return {}
    results = await records.job_fields(redis, job_ids, ROW_FIELDS)
    rows: dict[str, JobRow] = {}
    for values in results:
        row = job_row(dict(zip(ROW_FIELDS, values, strict=True)))
        if row:
            rows[row["id"]] = row
    return rows


async def finished_ids(redis: Redis) -> list[str]:
    return await records.finished_ids(redis, RECENT_FINISHED)


async def config(platform: Platform) -> dict[str, Any]:
    cfg = await platform.queue.config()
    broadcast = await room_reads.broadcast(platform.redis)
    s = platform.settings
    return {
        **cfg.model_dump(mode="json"),
        "broadcast": broadcast or "",
        # for telling a silent worker from a slow one, and attempts left
        "heartbeat_seconds": s.heartbeat_seconds,
        "lease_seconds": s.lease_seconds,
        "max_attempts": s.max_attempts,
        "feedback": asdict(await FeedbackBox(platform.redis).summary()),
    }


async def workers(platform: Platform) -> list[dict[str, Any]]:
    """By id, so rows keep their place as heartbeats come and go."""
    found = sorted(await platform.workers.list(), key=lambda w: w.worker_id)
    return [w.model_dump(mode="json") for w in found]


async def room(platform: Platform, pages: PageCounts) -> dict[str, Any]:
    """Every user with their job counts, cap, open pages and last job activity.

    Open pages are this process's only; with several gateway replicas a person
    may be online elsewhere, which job activity within ACTIVE_WINDOW_S shows.
    """
    users = await platform.users.list()
    open_now = pages()
    caps = await platform.queue.user_caps()
    out = []
    for u, seen in zip(
        users, await room_reads.activity(platform.redis, [u.name for u in users]), strict=True
    ):
        out.append(
            {
                "name": u.name,
                "admin": u.admin,
                "cap": caps.get(u.name),
                "pending": seen.pending,
                "running": seen.running,
                "finished": seen.finished,
                "pages": open_now.get(u.name, 0),
                "last_active_ms": seen.last_active_ms,
            }
        )
    return {"users": out, "active_window_s": ACTIVE_WINDOW_S}
