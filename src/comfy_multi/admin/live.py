"""The dashboard's websocket: one snapshot, then coalesced updates.

Protocol (JSON text frames):

- server → page `{"t": "snapshot", "now", "me", "config", "jobs", "pending",
  "running", "finished", "workers", "room"}`: `jobs` maps id → row for every id
  in the three lists; `pending` is the dispatch order.
- server → page `{"t": "update", "now", ...}` with only the keys that changed;
  `jobs` then holds new or changed rows and `progress` maps a running job to
  `{value, max}`. The page keeps only rows still named by one of the lists.
- page → server `{"t": "refresh", "sections": [...]}` after an action that
  publishes no event (users, caps).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect

from comfy_multi.admin import snapshot
from comfy_multi.admin.changes import Changes, Section
from comfy_multi.queue.events import Subscription
from comfy_multi.services.platform import Platform
from comfy_multi.services.users import User

logger = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 0.25  # at most four updates a second, however busy the queue
LIVENESS_S = 1.0  # heartbeats are not events: re-read workers this often (silence shows)
ROOM_EVERY_S = 1.0  # the room table costs a round trip per user; refresh it at most this often
ROOM_PERIOD_S = 5.0  # pages opening and closing are not events: re-read the room this often


@dataclass
class Dashboards:
    """Dashboards open on this gateway process (for /metrics)."""

    open: int = 0


def dashboards(app: Any) -> Dashboards:
    state = app.state
    if not hasattr(state, "admin_dashboards"):
        state.admin_dashboards = Dashboards()
    found: Dashboards = state.admin_dashboards
    return found


@dataclass
class LiveView:
    """One dashboard connection's view: what the page holds, so updates send only news."""

    platform: Platform
    me: User
    pages: snapshot.PageCounts
    pending: list[str] = field(default_factory=list)
    running: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)
    known: set[str] = field(default_factory=set)
    room_read_at: float = 0.0

    async def snapshot(self) -> dict[str, Any]:
        views, redis = self.platform.views, self.platform.redis
        self.pending = await views.dispatch_order()
        self.running = await views.running_ids()
        self.finished = await snapshot.finished_ids(redis)
        jobs = await snapshot.job_rows(redis, self.pending + self.running + self.finished)
        self.known = set(jobs)
        self.room_read_at = time.monotonic()
        return {
            "t": "snapshot",
            "now": snapshot.now_ms(),
            "me": {"name": self.me.name, "admin": self.me.admin},
            "config": await snapshot.config(self.platform),
            "jobs": jobs,
            "pending": self.pending,
            "running": self.running,
            "finished": self.finished,
            "workers": await snapshot.workers(self.platform),
            "room": await snapshot.room(self.platform, self.pages),
        }

    async def update(self, changes: Changes) -> dict[str, Any] | None:
        """The message for these changes, or None when the page already shows them."""
        if changes.resync:
            return await self.snapshot()
        out: dict[str, Any] = {}
        await self._lists(changes.sections, out)
        listed = set(self.pending) | set(self.running) | set(self.finished)
        jobs = {i: row for i, row in changes.jobs.items() if i in listed}
        missing = list(listed - self.known - set(jobs))
        jobs.update(await snapshot.job_rows(self.platform.redis, missing))
        self.known = (self.known | set(jobs)) & listed
        if jobs:
            out["jobs"] = jobs
        progress = {i: p for i, p in changes.progress.items() if i in self.running}
        if progress:
            out["progress"] = progress
        if Section.WORKERS in changes.sections:
            out["workers"] = await snapshot.workers(self.platform)
        if Section.CONFIG in changes.sections:
            out["config"] = await snapshot.config(self.platform)
        if Section.ROOM in changes.sections:
            out["room"] = await snapshot.room(self.platform, self.pages)
            self.room_read_at = time.monotonic()
        if not out:
            return None
        return {"t": "update", "now": snapshot.now_ms(), **out}

    async def _lists(self, sections: set[Section], out: dict[str, Any]) -> None:
        views, redis = self.platform.views, self.platform.redis
        if Section.PENDING in sections:
            order = await views.dispatch_order()
            if order != self.pending:
                self.pending = out["pending"] = order
        if Section.RUNNING in sections:
            running = await views.running_ids()
            if running != self.running:
                self.running = out["running"] = running
        if Section.FINISHED in sections:
            finished = await snapshot.finished_ids(redis)
            if finished != self.finished:
                self.finished = out["finished"] = finished


async def _send(ws: WebSocket, message: dict[str, Any]) -> None:
    await ws.send_text(orjson.dumps(message).decode())


async def _from_bus(sub: Subscription, changes: Changes, wake: asyncio.Event) -> None:
    dropped = 0
    while True:
        changes.note(await sub.get())
        if sub.dropped != dropped:  # the page missed events: start it over
            dropped, changes.resync = sub.dropped, True
        wake.set()


async def _from_page(ws: WebSocket, changes: Changes, wake: asyncio.Event) -> None:
    while True:
        frame = await ws.receive()
        if frame["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(frame.get("code", 1000))
        try:
            message = orjson.loads(frame.get("text") or "")
        except orjson.JSONDecodeError:
            continue
        if isinstance(message, dict) and message.get("t") == "refresh":
            changes.request(message.get("sections"))
            wake.set()


async def _flush(ws: WebSocket, view: LiveView, changes: Changes, wake: asyncio.Event) -> None:
    last_flush = 0.0
    last_liveness = time.monotonic()
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=LIVENESS_S)
        wake.clear()
        now = time.monotonic()
        if now - last_liveness >= LIVENESS_S:
            changes.sections.add(Section.WORKERS)
            last_liveness = now
        if now - view.room_read_at >= ROOM_PERIOD_S:
            changes.sections.add(Section.ROOM)
        # wait out the rest of the interval so a burst becomes one update
        await asyncio.sleep(max(0.0, last_flush + FLUSH_INTERVAL_S - now))
        last_flush = time.monotonic()
        taken = changes.take()
        if Section.ROOM in taken.sections and last_flush - view.room_read_at < ROOM_EVERY_S:
            taken.sections.discard(Section.ROOM)  # not yet: keep it for a later round
            changes.sections.add(Section.ROOM)
            wake.set()
        message = await view.update(taken)
        if message is not None:
            await _send(ws, message)


async def serve(ws: WebSocket, platform: Platform, me: User) -> None:
    """Run one accepted dashboard socket until the page goes away."""
    view = LiveView(platform, me, snapshot.open_pages(ws))
    changes = Changes()
    wake = asyncio.Event()
    count = dashboards(ws.app)
    count.open += 1
    try:
        async with platform.bus.subscribe() as sub:
            await _send(ws, await view.snapshot())
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(_from_bus(sub, changes, wake))
                tasks.create_task(_from_page(ws, changes, wake))
                tasks.create_task(_flush(ws, view, changes, wake))
    except* WebSocketDisconnect:
        logger.debug("dashboard of %s closed", me.name)
    finally:
        count.open -= 1
