"""ComfyUI's websocket: the handshake, text events and binary preview frames."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from comfy_multi.worker.errors import ComfyUIUnavailable

logger = logging.getLogger(__name__)

OPEN_TIMEOUT = 10.0
MAX_FRAME_BYTES = 64 * 1024 * 1024  # a full-size image sent by SaveImageWebsocket
FEATURE_FLAGS = {"supports_preview_metadata": True}

PREVIEW_IMAGE = 1
TEXT = 3
PREVIEW_IMAGE_WITH_METADATA = 4
MAX_TEXT_BYTES = 64 * 1024  # a progress text longer than this is cut, as a log line would be
_IMAGE_FORMATS = {1: "image/jpeg", 2: "image/png"}


@dataclass(frozen=True, slots=True)
class Event:
    type: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Preview:
    image: bytes
    content_type: str
    meta: dict[str, Any] | None  # type-4 frames only


class SocketClosed(Exception):
    """The websocket to ComfyUI closed."""


def parse_text(frame: bytes) -> Event | None:
    """A type-3 frame (a node's progress text, e.g. an LLM's output) as a
    `progress_text` event; ComfyUI adds no prompt_id unless the client asks."""
    length = int.from_bytes(frame[4:8], "big")
    if 8 + length > len(frame):
        return None
    node = frame[8 : 8 + length].decode("utf-8", "replace")
    text = frame[8 + length : 8 + length + MAX_TEXT_BYTES].decode("utf-8", "replace")
    return Event("progress_text", {"node": node, "text": text})


def parse_binary(frame: bytes) -> Preview | Event | None:
    """A preview image or a progress text from a binary frame; None for others."""
    if len(frame) < 8:
        return None
    kind = int.from_bytes(frame[:4], "big")
    word = int.from_bytes(frame[4:8], "big")
    if kind == TEXT:
        return parse_text(frame)
    if kind == PREVIEW_IMAGE:
        return Preview(frame[8:], _IMAGE_FORMATS.get(word, "image/jpeg"), None)
    if kind == PREVIEW_IMAGE_WITH_METADATA:
        try:
            meta = json.loads(frame[8 : 8 + word])
        except ValueError:
            return None
        if not isinstance(meta, dict):
            return None
        content_type = str(meta.get("image_type") or "image/png")
        return Preview(frame[8 + word :], content_type, meta)
    return None


class ComfySocket:
    """One websocket connection to ComfyUI under a client id of our choosing."""

    def __init__(self, connection: ClientConnection, client_id: str) -> None:
        self._connection = connection
        self.client_id = client_id
        self._early: list[Event] = []

    @classmethod
    async def open(cls, url: str, client_id: str) -> ComfySocket:
        """Connect, read the greeting and announce our feature flags."""
        try:
            connection = await connect(
                url,
                open_timeout=OPEN_TIMEOUT,
                max_size=MAX_FRAME_BYTES,
                max_queue=None,
                compression=None,
                proxy=None,
            )
        except (OSError, TimeoutError, WebSocketException) as exc:
            raise ComfyUIUnavailable(url, f"websocket: {exc}") from exc
        sock = cls(connection, client_id)
        try:
            # ComfyUI greets with `status` once the socket is registered under our id;
            # a prompt posted before that could miss its first events
            greeting = await asyncio.wait_for(connection.recv(), OPEN_TIMEOUT)
            await connection.send(json.dumps({"type": "feature_flags", "data": FEATURE_FLAGS}))
        except (ConnectionClosed, TimeoutError) as exc:
            await connection.close()
            raise ComfyUIUnavailable(url, f"websocket greeting: {exc!r}") from exc
        first = sock._parse(greeting)
        if isinstance(first, Event) and first.type != "status":
            sock._early.append(first)
        return sock

    async def receive(self) -> Event | Preview | None:
        """The next event or preview; None for frames we do not use.

        Raises ``SocketClosed`` when the connection ends.
        """
        if self._early:
            return self._early.pop(0)
        try:
            frame = await self._connection.recv()
        except ConnectionClosed as exc:
            raise SocketClosed(str(exc)) from exc
        return self._parse(frame)

    def _parse(self, frame: str | bytes) -> Event | Preview | None:
        if isinstance(frame, bytes):
            return parse_binary(frame)
        try:
            message = json.loads(frame)
        except ValueError:
            logger.debug("ComfyUI sent a text frame that is not JSON: %.200s", frame)
            return None
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            return None
        data = message.get("data")
        return Event(message["type"], data if isinstance(data, dict) else {})

    async def close(self) -> None:
        await self._connection.close()
