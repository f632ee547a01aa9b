"""ComfyUI's websocket, kept open for the worker's whole life.

One connection under one client id serves every job, so starting a job costs
no websocket handshake. The running job subscribes before it posts its prompt
and gets every event from then on (it keeps those of its own prompt_id); a
``None`` in its inbox means the connection dropped, after which the stream
reconnects by itself under the same client id.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from comfy_multi.worker.comfyui import ComfyUI
from comfy_multi.worker.errors import ComfyUIUnavailable
from comfy_multi.worker.retry import Backoff
from comfy_multi.worker.socket import ComfySocket, Event, Preview, SocketClosed

logger = logging.getLogger(__name__)

RECONNECT_CAP = 2.0  # seconds between attempts while ComfyUI is away


class Subscription:
    def __init__(self, on_preview: Callable[[Preview], None]) -> None:
        self.inbox: asyncio.Queue[Event | None] = asyncio.Queue()
        self.on_preview = on_preview


class EventStream:
    def __init__(self, comfy: ComfyUI, *, backoff: Backoff | None = None) -> None:
        self.comfy = comfy
        self.client_id = uuid.uuid4().hex
        self._backoff = backoff or Backoff(cap=RECONNECT_CAP)
        self._connected = asyncio.Event()
        self._retry_now = asyncio.Event()
        self._subscriber: Subscription | None = None

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def wait_connected(self, seconds: float) -> None:
        """Until the websocket is open; ``ComfyUIUnavailable`` after ``seconds``."""
        if self._connected.is_set():
            return
        self._retry_now.set()
        try:
            async with asyncio.timeout(seconds):
                await self._connected.wait()
        except TimeoutError:
            raise ComfyUIUnavailable(self.comfy.url, "its websocket does not open") from None

    @contextmanager
    def subscribe(self, on_preview: Callable[[Preview], None]) -> Iterator[Subscription]:
        """Events from now until the block ends go to this subscription."""
        subscription = Subscription(on_preview)
        self._subscriber = subscription
        try:
            yield subscription
        finally:
            if self._subscriber is subscription:
                self._subscriber = None

    async def run(self) -> None:
        """Keep the websocket open; runs until cancelled."""
        attempt = 0
        while True:
            try:
                sock = await ComfySocket.open(self.comfy.ws_url(self.client_id), self.client_id)
            except ComfyUIUnavailable as exc:
                if attempt == 0:
                    logger.info("websocket to ComfyUI not open: %s", exc)
                await self._pause(self._backoff.delay(attempt))
                attempt += 1
                continue
            attempt = 0
            self._connected.set()
            try:
                await self._pump(sock)
            finally:
                self._connected.clear()
                if self._subscriber is not None:
                    self._subscriber.inbox.put_nowait(None)
                await sock.close()
            logger.info("websocket to ComfyUI closed; reopening")

    async def _pause(self, seconds: float) -> None:
        self._retry_now.clear()
        try:
            async with asyncio.timeout(seconds):
                await self._retry_now.wait()
        except TimeoutError:
            pass

    async def _pump(self, sock: ComfySocket) -> None:
        """Read frames as they come, so previews never wait behind an output upload."""
        while True:
            try:
                item = await sock.receive()
            except SocketClosed:
                return
            subscriber = self._subscriber
            if subscriber is None or item is None:
                continue
            if isinstance(item, Preview):
                subscriber.on_preview(item)
            else:
                subscriber.inbox.put_nowait(item)
