"""Relay of one job's events and previews to the gateway.

Events keep ComfyUI's order; whatever is buffered when a send starts goes in
one POST, and a failed send is retried together with what arrived meanwhile.
Previews travel on their own path: one slot, the newest image overwrites an
unsent one, at most one PUT in flight and one per ``preview_interval``, so a
slow link drops stale previews instead of delaying the job.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from comfy_multi.errors import LeaseLost
from comfy_multi.wire import ClaimedJob, Event
from comfy_multi.worker.channel import Channel
from comfy_multi.worker.errors import GatewayRejected, GatewayUnavailable
from comfy_multi.worker.socket import Preview

logger = logging.getLogger(__name__)

PREVIEW_INTERVAL = 0.1
MAX_BATCH = 500


def readdress(data: dict[str, Any], job_id: str) -> dict[str, Any]:
    """A copy of an event's data with ComfyUI's prompt_id replaced by the job id."""
    out = dict(data)
    if "prompt_id" in out:
        out["prompt_id"] = job_id
    nodes = out.get("nodes")
    if isinstance(nodes, dict):  # progress_state
        out["nodes"] = {
            key: {**value, "prompt_id": job_id}
            if isinstance(value, dict) and "prompt_id" in value
            else value
            for key, value in nodes.items()
        }
    return out


class Relay:
    def __init__(
        self,
        channel: Channel,
        job: ClaimedJob,
        *,
        on_lease_lost: Callable[[str], None],
        preview_interval: float = PREVIEW_INTERVAL,
    ) -> None:
        self._channel = channel
        self._job = job
        self._on_lease_lost = on_lease_lost
        self._preview_interval = preview_interval
        self._pending: list[Event] = []
        self._queued = 0  # events pushed
        self._sent = 0  # events acknowledged by the gateway
        self._wake_events = asyncio.Event()
        self._progress = asyncio.Event()
        self._preview: Preview | None = None
        self._wake_preview = asyncio.Event()
        self._closed = False
        self.lost = False
        self.previews_sent = 0
        self.previews_dropped = 0

    def push(self, event_type: str, data: dict[str, Any]) -> None:
        """Queue one ComfyUI event, re-addressed to the job id."""
        if self._closed or self.lost:
            return
        self._pending.append(Event(type=event_type, data=readdress(data, self._job.job_id)))
        self._queued += 1
        self._wake_events.set()

    def offer_preview(self, preview: Preview) -> None:
        if self._closed or self.lost:
            return
        if self._preview is not None:
            self.previews_dropped += 1
        if preview.meta is not None and "prompt_id" in preview.meta:
            preview = Preview(
                preview.image, preview.content_type, readdress(preview.meta, self._job.job_id)
            )
        self._preview = preview
        self._wake_preview.set()

    async def flush(self) -> None:
        """Wait until every event pushed so far was delivered (or the lease was lost)."""
        target = self._queued
        while self._sent < target and not self.lost:
            self._progress.clear()
            await self._progress.wait()

    def close(self) -> None:
        """Stop taking events; ``run`` returns once the buffer is empty.

        An unsent preview is dropped: after the job's end it shows nothing new.
        """
        self._closed = True
        self._preview = None
        self._wake_events.set()
        self._wake_preview.set()

    def discard(self) -> None:
        """Drop whatever is unsent and stop (the job ended without a report)."""
        self._pending.clear()
        self._sent = self._queued
        self._progress.set()
        self.close()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._send_events())
            tg.create_task(self._send_previews())

    def _lose(self, exc: LeaseLost) -> None:
        if not self.lost:
            self.lost = True
            self._pending.clear()
            self._progress.set()
            self._wake_preview.set()
            self._on_lease_lost(exc.message)

    async def _send_events(self) -> None:
        job_id = self._job.job_id
        attempt = 0
        batch: list[Event] = []
        while not self.lost:
            if not batch and not self._pending:
                if self._closed:
                    return
                self._wake_events.clear()
                await self._wake_events.wait()
                continue
            room = MAX_BATCH - len(batch)
            batch.extend(self._pending[:room])
            del self._pending[:room]
            try:
                await self._channel.post_events(self._job, batch)
            except LeaseLost as exc:
                self._lose(exc)
                return
            except (GatewayUnavailable, GatewayRejected) as exc:
                if isinstance(exc, GatewayRejected):
                    logger.error("job %s: gateway refused %d events: %s", job_id, len(batch), exc)
                    self._acknowledge(len(batch))
                    batch = []
                    continue
                delay = self._channel.backoff.delay(attempt)
                attempt += 1
                log = logger.warning if attempt == 1 else logger.debug
                log("job %s: relaying events failed (%s); retry in %.1f s", job_id, exc, delay)
                await asyncio.sleep(delay)
                continue
            attempt = 0
            self._acknowledge(len(batch))
            batch = []

    def _acknowledge(self, count: int) -> None:
        self._sent += count
        self._progress.set()

    async def _send_previews(self) -> None:
        job_id = self._job.job_id
        loop = asyncio.get_running_loop()
        while not self.lost:
            if self._preview is None:
                if self._closed:
                    return
                self._wake_preview.clear()
                await self._wake_preview.wait()
                continue
            preview, self._preview = self._preview, None
            started = loop.time()
            try:
                await self._channel.put_preview(
                    self._job, preview.image, preview.content_type, preview.meta
                )
                self.previews_sent += 1
            except LeaseLost as exc:
                self._lose(exc)
                return
            except (GatewayUnavailable, GatewayRejected) as exc:
                logger.debug("job %s: preview dropped: %s", job_id, exc)
            rest = self._preview_interval - (loop.time() - started)
            if rest > 0 and not self._closed:
                await asyncio.sleep(rest)
