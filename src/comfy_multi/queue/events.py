"""Platform events over Redis pub/sub, fanned out in-process.

Each process holds one subscription (both channels) and hands every event to
the local subscribers' queues, so a participant's socket can sit on any
gateway replica. Lifecycle events are published by the Lua scripts
themselves (atomic with the change); other events are published here.

Event shapes (JSON objects, `event` says which):
- queued / started / requeued / updated / finished: `{event, ts, job: {summary}}`
- comfy: `{event, user, job_id, client_id, messages: [{type, data}]}` relayed ComfyUI messages
- config: `{event, config: {mode, paused, default_cap}}`
- worker: `{event, worker: {...}}` registered, online, offline, drain changes
- broadcast: `{event, message, ts}` the instructor's message to every page
- preview (binary channel): `{event, user, job_id, client_id, content_type, meta}` + image bytes
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from comfy_multi.store import keys

logger = logging.getLogger(__name__)

QUEUE_EVENTS = frozenset({"queued", "requeued", "updated", "config", "finished", "worker"})
SUBSCRIBER_BACKLOG = 2000  # a socket slower than this loses events, not the gateway
STREAM_MAXLEN = 10_000
RECONNECT_DELAY_S = 0.5
STOP_GRACE_S = 3.0


@dataclass
class Event:
    data: dict[str, Any]
    payload: bytes | None = None  # image bytes of a preview

    @property
    def kind(self) -> str:
        return str(self.data.get("event", ""))

    @property
    def user(self) -> str | None:
        if "user" in self.data:
            return str(self.data["user"])
        job = self.data.get("job")
        return str(job["user"]) if isinstance(job, dict) and "user" in job else None


@dataclass(eq=False)
class Subscription:
    queue: asyncio.Queue[Event] = field(
        default_factory=lambda: asyncio.Queue(maxsize=SUBSCRIBER_BACKLOG)
    )
    dropped: int = 0

    def offer(self, event: Event) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1

    async def get(self) -> Event:
        return await self.queue.get()


def now_ms() -> int:
    return int(time.time() * 1000)


def encode_preview(header: dict[str, Any], image: bytes) -> bytes:
    return orjson.dumps(header) + b"\n" + image


def decode_preview(raw: bytes) -> Event:
    head, _, image = raw.partition(b"\n")
    return Event(orjson.loads(head), image)


class EventBus:
    def __init__(self, redis: Redis, raw_redis: Redis) -> None:
        self._redis = redis
        self._raw = raw_redis
        self._subs: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._queue_changed = asyncio.Event()

    # publishing -------------------------------------------------------------

    async def publish(self, data: dict[str, Any], *, stream: bool = True) -> None:
        data.setdefault("ts", now_ms())
        body = orjson.dumps(data)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.publish(keys.EVENTS_CHANNEL, body)
            if stream:
                pipe.xadd(keys.EVENTS_STREAM, {"e": body}, maxlen=STREAM_MAXLEN, approximate=True)
            await pipe.execute()

    async def publish_preview(self, header: dict[str, Any], image: bytes) -> None:
        header = {"event": "preview", **header}
        await self._redis.publish(keys.PREVIEW_CHANNEL, encode_preview(header, image))

    async def recent(self, since: str = "-", count: int = 500) -> list[tuple[str, dict[str, Any]]]:
        """Events kept in the stream after `since` (an id from an earlier call)."""
        start = f"({since}" if since not in ("-", "") else "-"
        rows = await self._redis.xrange(keys.EVENTS_STREAM, min=start, count=count)
        return [(str(eid), orjson.loads(fields["e"])) for eid, fields in rows or [] if fields]

    # subscribing ------------------------------------------------------------

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="event-bus")
        await asyncio.wait_for(self._ready.wait(), timeout=10)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            # bounded: a cancel can be lost inside a Redis read
            await asyncio.wait([self._task], timeout=STOP_GRACE_S)

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[Subscription]:
        sub = Subscription()
        self._subs.add(sub)
        try:
            yield sub
        finally:
            self._subs.discard(sub)

    @property
    def subscriber_count(self) -> int:
        return len(self._subs)

    def queue_generation(self) -> asyncio.Event:
        """The event that is set at the next queue change (for long-poll claims)."""
        return self._queue_changed

    def _dispatch(self, event: Event) -> None:
        if event.kind in QUEUE_EVENTS:
            changed, self._queue_changed = self._queue_changed, asyncio.Event()
            changed.set()
        for sub in self._subs:
            sub.offer(event)

    async def _listen(self) -> None:
        while True:
            pubsub = self._raw.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(keys.EVENTS_CHANNEL, keys.PREVIEW_CHANNEL)
                self._ready.set()
                # wake every long-poll after a reconnect: events may have been missed
                self._dispatch(Event({"event": "config", "reconnected": True}))
                async for message in pubsub.listen():
                    if message["type"] != "message":
                        continue
                    try:
                        if message["channel"] == keys.PREVIEW_CHANNEL.encode():
                            self._dispatch(decode_preview(message["data"]))
                        else:
                            self._dispatch(Event(orjson.loads(message["data"])))
                    except (orjson.JSONDecodeError, KeyError, TypeError):
                        logger.exception("dropping a malformed event")
            except (RedisConnectionError, OSError) as exc:
                logger.warning("event subscription lost (%s); reconnecting", exc)
                await asyncio.sleep(RECONNECT_DELAY_S)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
