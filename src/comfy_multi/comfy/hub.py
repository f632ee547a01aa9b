"""Per-process fan-out from the event bus to participants' websockets.

One bus subscription per process; each event is routed by user (and, for a
run's own messages, by the socket whose sid is the job's client_id, as
ComfyUI does), so an event wakes only the sockets it is for. Each socket has
its own bounded outbox: a slow browser loses previews, never the gateway.

At a job's end the hub adds what ComfyUI would have sent itself: an
`execution_error` for a job the platform failed (worker lost, timeout) or an
`execution_interrupted` for a cancelled running job when the worker could not
report one, then `status` and `executing {node: null}`.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from dataclasses import dataclass, field
from typing import Any

import orjson
from redis.exceptions import RedisError

from comfy_multi.comfy import jobview, userjobs
from comfy_multi.comfy.place import PlaceTracker
from comfy_multi.queue.events import Event, now_ms
from comfy_multi.services.platform import Platform

logger = logging.getLogger(__name__)

OUTBOX_FRAMES = 2000  # text frames queued for one socket before it starts losing them
PREVIEW_BACKLOG_BYTES = 4 * 1024 * 1024  # previews queued for one socket before new ones drop
MAX_TRACKED_RUNS = 10_000
JOB_EVENTS = frozenset({"queued", "started", "requeued", "updated", "finished"})
ENDINGS = frozenset({"execution_success", "execution_error", "execution_interrupted"})
OWN_PREFIX = "comfy_multi."  # the platform's own messages beside ComfyUI's
PREVIEW_FORMATS = {"image/jpeg": 1, "image/png": 2}  # ComfyUI's type-1 frame formats

Frame = str | bytes


def message(kind: str, data: Any) -> str:
    return orjson.dumps({"type": kind, "data": data}).decode()


@dataclass(eq=False)
class Connection:
    """One participant's browser socket, as the hub sees it."""

    user: str
    sid: str
    outbox: asyncio.Queue[Frame] = field(default_factory=lambda: asyncio.Queue(OUTBOX_FRAMES))
    preview_metadata: bool = False  # announced supports_preview_metadata: type-4 previews
    extras: bool = False  # the page extension asked for place-in-queue and broadcasts
    queued_bytes: int = 0
    dropped: int = 0

    def send(self, frame: Frame) -> None:
        if isinstance(frame, bytes):
            if self.queued_bytes + len(frame) > PREVIEW_BACKLOG_BYTES:
                self.dropped += 1
                return
            self.queued_bytes += len(frame)
        try:
            self.outbox.put_nowait(frame)
        except asyncio.QueueFull:
            self.dropped += 1
            if isinstance(frame, bytes):
                self.queued_bytes -= len(frame)

    def sent(self, frame: Frame) -> None:
        if isinstance(frame, bytes):
            self.queued_bytes -= len(frame)


@dataclass
class Run:
    """What the hub remembers of a running job: for a reconnecting page and
    for deciding whether ComfyUI's own ending already went out."""

    user: str
    client_id: str | None
    executing: dict[str, Any] | None = None
    ended: bool = False


class Hub:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.users: dict[str, dict[str, Connection]] = {}
        self.runs: dict[str, Run] = {}
        self.places = PlaceTracker(platform, self.place_listeners)
        platform.open_pages = self.page_counts
        self._job_events: asyncio.Queue[Event] = asyncio.Queue()

    def start(self) -> asyncio.Task[None]:
        return asyncio.create_task(self._main(), name="comfy-websocket-hub")

    async def _main(self) -> None:
        await asyncio.gather(self._listen(), self._lifecycle(), self.places.run())

    # connections ----------------------------------------------------------------

    def add(self, conn: Connection) -> None:
        # a reused sid takes over, as in ComfyUI; the old socket just goes quiet
        self.users.setdefault(conn.user, {})[conn.sid] = conn

    def remove(self, conn: Connection) -> None:
        conns = self.users.get(conn.user)
        if conns is not None and conns.get(conn.sid) is conn:
            del conns[conn.sid]
            if not conns:
                del self.users[conn.user]

    def page_counts(self) -> dict[str, int]:
        """Open participant sockets per user on this process (the admin's room view)."""
        return {user: len(conns) for user, conns in self.users.items() if conns}

    def place_listeners(self) -> dict[str, list[Connection]]:
        """Each user's sockets whose page asked for its place in the queue."""
        out: dict[str, list[Connection]] = {}
        for user, conns in self.users.items():
            wanting = [c for c in conns.values() if c.extras]
            if wanting:
                out[user] = wanting
        return out

    def connections(self, user: str) -> list[Connection]:
        return list(self.users.get(user, {}).values())

    def targets(self, user: str, client_id: str | None) -> list[Connection]:
        """Sockets for a run's own messages: the one whose sid is the job's
        client_id; every socket of the user when the job has none (scripts)."""
        conns = self.users.get(user)
        if not conns:
            return []
        if client_id is None:
            return list(conns.values())
        conn = conns.get(client_id)
        return [conn] if conn is not None else []

    def resume(self, conn: Connection) -> None:
        """A reconnecting page whose job is running gets `executing` again."""
        for job_id, run in self.runs.items():
            if (
                run.user == conn.user
                and run.client_id == conn.sid
                and run.executing
                and not run.ended
            ):
                conn.send(message("executing", {**run.executing, "prompt_id": job_id}))

    # events ---------------------------------------------------------------------

    async def _listen(self) -> None:
        async with self.platform.bus.subscribe() as sub:
            while True:
                self.dispatch(await sub.get())

    def dispatch(self, event: Event) -> None:
        """Route one event; never waits, so a run's messages go out at once."""
        kind = event.kind
        if kind == "comfy":
            self._relay(event.data)
        elif kind == "preview" and event.payload is not None:
            self._preview(event.data, event.payload)
        elif kind in JOB_EVENTS:
            self._job_events.put_nowait(event)
        elif kind == "feedback" and "open" in event.data:
            self._to_every_page(message("comfy_multi.feedback", {"open": bool(event.data["open"])}))
        elif kind == "broadcast":
            text = message("comfy_multi.broadcast", {"message": str(event.data.get("message", ""))})
            self._to_every_page(text)
        if kind in JOB_EVENTS or kind in ("config", "worker"):
            self.places.poke()

    def _to_every_page(self, text: str) -> None:
        """To every page whose extension asked for the platform's own messages."""
        for conns in self.users.values():
            for conn in conns.values():
                if conn.extras:
                    conn.send(text)

    async def _lifecycle(self) -> None:
        """Queue changes need a Redis read (the user's queue_remaining): they are
        handled here, in order, so a slow read never holds back relayed events.
        Each event reached this loop after the run messages published before it,
        which therefore went out first, as in ComfyUI."""
        while True:
            event = await self._job_events.get()
            try:
                await self._job_event(event.kind, event.data.get("job") or {})
            except RedisError as exc:
                logger.warning("status for a %s event failed: %s", event.kind, exc)

    def _run(self, job_id: str, user: str, client_id: str | None) -> Run:
        run = self.runs.get(job_id)
        if run is None:
            if len(self.runs) >= MAX_TRACKED_RUNS:  # a finish this process never saw
                self.runs.pop(next(iter(self.runs)))
            run = self.runs[job_id] = Run(user, client_id)
        return run

    def _relay(self, data: dict[str, Any]) -> None:
        user, job_id = str(data.get("user", "")), str(data.get("job_id", ""))
        client_id = data.get("client_id") or None
        run = self._run(job_id, user, client_id)
        frames: list[Frame] = []
        ours: list[Frame] = []
        for msg in data.get("messages") or []:
            kind, body = msg.get("type"), msg.get("data")
            if not isinstance(kind, str) or not isinstance(body, dict) or kind == "status":
                continue  # the gateway sends each user's own status
            if kind.startswith(OWN_PREFIX):
                ours.append(message(kind, body))  # only for pages that know our messages
                continue
            if kind == "executing":
                if body.get("node") is None:
                    continue  # sent by the gateway once the job is recorded
                run.executing = body
            if kind in ENDINGS:
                run.ended = True
            frames.append(text_frame(body) if kind == "progress_text" else message(kind, body))
        if frames or ours:
            for conn in self.targets(user, client_id):
                for frame in frames + ours if conn.extras else frames:
                    conn.send(frame)

    def _preview(self, data: dict[str, Any], image: bytes) -> None:
        user, job_id = str(data.get("user", "")), str(data.get("job_id", ""))
        conns = self.targets(user, data.get("client_id") or None)
        if not conns:
            return
        content_type = str(data.get("content_type") or "image/jpeg")
        with_meta = without_meta = None
        for conn in conns:
            if conn.preview_metadata:
                with_meta = with_meta or self._frame_with_meta(
                    job_id, content_type, data.get("meta"), image
                )
                conn.send(with_meta)
            elif content_type in PREVIEW_FORMATS:
                without_meta = (
                    without_meta or struct.pack(">II", 1, PREVIEW_FORMATS[content_type]) + image
                )
                conn.send(without_meta)

    def _frame_with_meta(self, job_id: str, content_type: str, meta: Any, image: bytes) -> bytes:
        """ComfyUI's type-4 frame; the metadata is made up from the running
        node when the worker sent none."""
        run = self.runs.get(job_id)
        node = str((run.executing or {}).get("node", "")) if run else ""
        base = {
            "node_id": node,
            "prompt_id": job_id,
            "display_node_id": node,
            "parent_node_id": None,
            "real_node_id": node,
        }
        if isinstance(meta, dict):
            base.update(meta)
        base.update({"prompt_id": job_id, "image_type": content_type})
        body = orjson.dumps(base)
        return struct.pack(">II", 4, len(body)) + body + image

    async def _job_event(self, kind: str, job: dict[str, Any]) -> None:
        user, job_id = str(job.get("user", "")), str(job.get("id", ""))
        run = self.runs.pop(job_id, None) if kind in ("finished", "requeued") else None
        conns = self.connections(user)
        if not conns:
            return
        if kind == "requeued" and run is not None and run.executing and not run.ended:
            # its GPU was lost: clear the canvas's running outline until it starts again
            # (the frontend's outline follows progress_state, so no node is running)
            done = message("executing", {"node": None, "display_node": None, "prompt_id": job_id})
            idle = message("progress_state", {"prompt_id": job_id, "nodes": {}})
            for conn in self.targets(user, run.client_id):
                conn.send(done)
                conn.send(idle)
        status = message(
            "status",
            {
                "status": {
                    "exec_info": {"queue_remaining": await userjobs.remaining(self.platform, user)}
                }
            },
        )
        if kind != "finished":
            for conn in conns:
                conn.send(status)
            return
        targets = self.targets(user, job.get("client_id") or None)
        started = bool(job.get("started_ms"))
        ending = None if run is not None and run.ended else _ending(job, run)
        for conn in targets:
            if ending is not None:
                conn.send(ending)
        for conn in conns:
            conn.send(status)
        if started:
            done = message("executing", {"node": None, "display_node": None, "prompt_id": job_id})
            for conn in targets:
                conn.send(done)


def text_frame(body: dict[str, Any]) -> bytes:
    """ComfyUI's binary type-3 frame: a node's progress text (the server does not
    announce supports_progress_text_metadata, so no prompt_id block)."""
    node = str(body.get("node", "")).encode()
    text = str(body.get("text", "")).encode()
    return struct.pack(">II", 3, len(node)) + node + text


def _ending(job: dict[str, Any], run: Run | None) -> str | None:
    """The message ComfyUI would have sent for an end the worker could not report."""
    job_id, state = str(job.get("id", "")), job.get("state")
    stamp = int(float(job.get("finished_ms") or now_ms()))
    if state == "failed":
        try:
            error = orjson.loads(job.get("error") or "{}")
        except orjson.JSONDecodeError:
            error = {"type": "error", "message": str(job.get("error"))}
        return message(
            "execution_error",
            jobview.error_payload(job_id, error if isinstance(error, dict) else {}, stamp),
        )
    if state == "cancelled" and job.get("started_ms"):
        node = (run.executing or {}) if run else {}
        data: dict[str, Any] = {
            "prompt_id": job_id,
            "node_id": node.get("node"),
            "node_type": node.get("node_type"),
            "executed": [],
            "timestamp": stamp,
        }
        return message("execution_interrupted", data)
    return None
