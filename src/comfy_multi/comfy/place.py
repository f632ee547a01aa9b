"""Each participant's place in the shared queue and an estimated wait.

Sent as the platform's own websocket message `comfy_multi.queue` to pages
whose extension asked for it (`{"type": "comfy_multi.hello"}`), so a page
without the extension never sees a message type it does not know:

    {"position": 3,          # 1 = next to run; of the participant's first waiting job
     "eta_seconds": 40.0,    # estimated wait for that job; null while no GPU is online
     "jobs": [{"id", "position", "eta_seconds", "attempts"}],  # attempts: runs begun
     "pending": 2, "running": 1,        # the participant's own jobs
     "running_jobs": [{"id", "started_ms", "attempt", "step", "silent_since_ms"}],
     "max_attempts": 3,                 # runs before a job whose GPU keeps dying fails
     "queue_length": 17,                # everyone's waiting jobs
     "workers_online": 2, "workers_known": true, "paused": false,
     "server_ms": ...}                  # the gateway's clock, for elapsed times

`step` is where the job is (`{label, number, of, value, max}`, see
worker/steps.py; live updates come as `comfy_multi.step`); `silent_since_ms`
is the last heartbeat of a worker that stopped sending them, so the page can
say the GPU was lost before its lease runs out.

One script call gives every listening participant's places at once; bursts
of queue changes are coalesced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import orjson
from redis.exceptions import RedisError

from comfy_multi.queue import liveness, room
from comfy_multi.queue.events import now_ms
from comfy_multi.queue.feedback import FeedbackBox
from comfy_multi.services.platform import Platform

logger = logging.getLogger(__name__)

COALESCE_S = 1.0  # at most this often per process: every change moves everyone's place
REFRESH_S = 2.0  # also without events: a worker that dies sends none
MESSAGE = "comfy_multi.queue"


async def snapshot(platform: Platform, wanted: set[str]) -> dict[str, dict[str, Any]]:
    """The place message of each wanted user (without `server_ms`)."""
    workers = await platform.workers.online_count()
    places = await platform.views.places_of(sorted(wanted), workers=workers)
    depth = await platform.views.depth()
    running = await liveness.running_jobs(
        platform.redis, platform.settings, await platform.views.running_ids(), now_ms()
    )
    firsts = [jobs[0][0] for jobs in places.values() if jobs]
    attempts = await liveness.attempts_of(platform.redis, firsts)
    known = await platform.workers.any_registered()
    paused = (await platform.queue.config()).paused
    mine: dict[str, list[dict[str, Any]]] = {
        u: [
            {
                "id": job_id,
                "position": place.position + 1,
                # no estimate while no GPU is online: it would be a guess
                "eta_seconds": place.eta_seconds if workers else None,
                "attempts": attempts.get(job_id, 0),
            }
            for job_id, place in places.get(u, [])
        ]
        for u in wanted
    }
    runs: dict[str, list[dict[str, Any]]] = {}
    for job in running:
        runs.setdefault(job.user, []).append(
            {
                "id": job.id,
                "started_ms": job.started_ms,
                "attempt": job.attempts,
                "step": job.step,
                "silent_since_ms": job.silent_since_ms,
            }
        )
    return {
        user: {
            "position": jobs[0]["position"] if jobs else None,
            "eta_seconds": jobs[0]["eta_seconds"] if jobs else None,
            "jobs": jobs,
            "pending": len(jobs),
            "running": len(runs.get(user, [])),
            "running_jobs": runs.get(user, []),
            "max_attempts": platform.settings.max_attempts,
            "queue_length": sum(depth.values()),
            "workers_online": workers,
            "workers_known": known,
            "paused": paused,
        }
        for user, jobs in mine.items()
    }


class Listener(Protocol):
    """A page socket that asked for its place (the hub's connection)."""

    @property
    def user(self) -> str: ...

    def send(self, frame: str) -> None: ...


Listeners = Callable[[], Mapping[str, Sequence[Listener]]]


def _message(data: dict[str, Any]) -> str:
    return orjson.dumps({"type": MESSAGE, "data": {**data, "server_ms": now_ms()}}).decode()


class PlaceTracker:
    def __init__(self, platform: Platform, listeners: Listeners) -> None:
        self.platform = platform
        self._listeners = listeners
        self._dirty = asyncio.Event()
        self._last: dict[str, str] = {}

    def poke(self) -> None:
        self._dirty.set()

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):  # refresh anyway
                await asyncio.wait_for(self._dirty.wait(), REFRESH_S)
            self._dirty.clear()
            try:
                await self._publish()
            except RedisError as exc:
                logger.warning("could not work out places in the queue: %s", exc)
            await asyncio.sleep(COALESCE_S)

    async def _publish(self) -> None:
        listeners = self._listeners()
        for user in list(self._last):
            if user not in listeners:
                del self._last[user]
        if not listeners:
            return
        for user, data in (await snapshot(self.platform, set(listeners))).items():
            seen = orjson.dumps(data).decode()  # without the clock, which always moves
            if self._last.get(user) != seen:
                self._last[user] = seen
                text = _message(data)
                for conn in listeners[user]:
                    conn.send(text)

    async def greet(self, conn: Listener) -> None:
        """A page that just asked gets its place and the standing broadcast at once."""
        data = (await snapshot(self.platform, {conn.user}))[conn.user]
        conn.send(_message(data))
        box = FeedbackBox(self.platform.redis)
        if await box.is_open():
            asked = {"open": True, "answered": await box.answered(conn.user)}
            conn.send(orjson.dumps({"type": "comfy_multi.feedback", "data": asked}).decode())
        standing = await room.broadcast(self.platform.redis)
        if standing:
            conn.send(
                orjson.dumps(
                    {"type": "comfy_multi.broadcast", "data": {"message": standing}}
                ).decode()
            )
