"""The /ws endpoint and the fan-out of events to sockets, in the order they were sent."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import struct
import uuid
from collections.abc import Callable
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

logger = logging.getLogger(__name__)

#: protocol.py BinaryEventTypes
PREVIEW_IMAGE = 1
TEXT = 3
PREVIEW_IMAGE_WITH_METADATA = 4


class Connection:
    """One socket: an ordered outbox drained by a writer task."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self.feature_flags: dict[str, Any] = {}
        self.outbox: asyncio.Queue[str | bytes] = asyncio.Queue()

    async def drain(self) -> None:
        while True:
            message = await self.outbox.get()
            try:
                if isinstance(message, bytes):
                    await self.websocket.send_bytes(message)
                else:
                    await self.websocket.send_text(message)
            except (WebSocketDisconnect, RuntimeError, OSError):
                logger.debug("socket closed while sending")
                return


class Hub:
    """Sockets by client id; `sid=None` means every socket, as in ComfyUI's send()."""

    def __init__(self, server_features: dict[str, Any]) -> None:
        self.sockets: dict[str, Connection] = {}
        self.server_features = server_features

    def _targets(self, sid: str | None) -> list[Connection]:
        if sid is None:
            return list(self.sockets.values())
        conn = self.sockets.get(sid)
        return [conn] if conn else []

    def send(self, event: str, data: Any, sid: str | None = None) -> None:
        text = json.dumps({"type": event, "data": data})
        for conn in self._targets(sid):
            conn.outbox.put_nowait(text)

    def send_bytes(self, event: int, payload: bytes, sid: str | None = None) -> None:
        message = struct.pack(">I", event) + payload
        for conn in self._targets(sid):
            conn.outbox.put_nowait(message)

    def supports(self, sid: str | None, flag: str) -> bool:
        conn = self.sockets.get(sid) if sid is not None else None
        return conn is not None and conn.feature_flags.get(flag, False) is True

    def send_preview(
        self, fmt: str, image: bytes, sid: str | None, metadata: dict[str, Any] | None
    ) -> None:
        """Type 4 (with metadata) when given metadata, else type 1 (format + bytes)."""
        if metadata is not None:
            meta = json.dumps(
                {**metadata, "image_type": "image/png" if fmt == "PNG" else "image/jpeg"}
            ).encode()
            payload = struct.pack(">I", len(meta)) + meta + image
            self.send_bytes(PREVIEW_IMAGE_WITH_METADATA, payload, sid)
        else:
            payload = struct.pack(">I", 2 if fmt == "PNG" else 1) + image
            self.send_bytes(PREVIEW_IMAGE, payload, sid)


async def websocket_endpoint(
    websocket: WebSocket, hub: Hub, on_connect: Callable[[str], list[tuple[str, Any]]]
) -> None:
    """ComfyUI's /ws: status+sid, then the client's first feature_flags message is answered.

    `on_connect(sid)` gives the messages a new socket gets first (status, and
    `executing` when a reconnecting client's prompt is running).
    """
    await websocket.accept()
    sid = websocket.query_params.get("clientId", "") or uuid.uuid4().hex
    conn = Connection(websocket)
    hub.sockets[sid] = conn
    for event, data in on_connect(sid):
        hub.send(event, data, sid)
    writer = asyncio.create_task(conn.drain())
    try:
        first = True
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            text = message.get("text")
            if text is None:
                continue
            try:
                data = json.loads(text)
            except json.JSONDecodeError:
                logger.warning("invalid JSON from client %s", sid)
                continue
            if first and isinstance(data, dict) and data.get("type") == "feature_flags":
                flags = data.get("data")
                conn.feature_flags = flags if isinstance(flags, dict) else {}
                hub.send("feature_flags", hub.server_features, sid)
            first = False
    finally:
        if hub.sockets.get(sid) is conn:
            del hub.sockets[sid]
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer
