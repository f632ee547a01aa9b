"""/u/<name>/ws: ComfyUI's websocket for one participant (server.py `websocket_handler`).

Handshake as ComfyUI: accept, reuse `?clientId=` or mint a sid, send
`status` with the sid, answer the client's `feature_flags`; a page whose job
is running gets `executing` again. After that the hub feeds the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from typing import Any

import orjson
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from redis.exceptions import RedisError

from comfy_multi.comfy import userjobs
from comfy_multi.comfy.hub import Connection, Hub, message
from comfy_multi.comfy.state import comfy_state
from comfy_multi.comfy.system import feature_flags
from comfy_multi.services.auth import same_origin, signed_in

logger = logging.getLogger(__name__)

router = APIRouter()

CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
POLICY_VIOLATION = 1008


@router.websocket("/u/{name}/ws")
async def websocket(ws: WebSocket, name: str) -> None:
    state = comfy_state(ws)
    user = await signed_in(ws)
    if user is None or user.name != name or not same_origin(ws):
        await ws.close(code=POLICY_VIOLATION)  # before accept: the handshake gets 403
        return
    asked = ws.query_params.get("clientId") or ""
    sid = asked if CLIENT_ID.match(asked) else uuid.uuid4().hex
    hub = await state.get_hub()
    await ws.accept()
    conn = Connection(user.name, sid)
    hub.add(conn)
    try:
        remaining = await userjobs.remaining(state.platform, user.name)
        await ws.send_text(
            message("status", {"status": {"exec_info": {"queue_remaining": remaining}}, "sid": sid})
        )
        hub.resume(conn)
        await _pump(ws, conn, hub)
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass  # the page went away mid-handshake
    finally:
        hub.remove(conn)


async def _pump(ws: WebSocket, conn: Connection, hub: Hub) -> None:
    reader = asyncio.create_task(_read(ws, conn, hub), name=f"ws-read-{conn.user}")
    writer = asyncio.create_task(_write(ws, conn), name=f"ws-write-{conn.user}")
    try:
        await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (reader, writer):
            task.cancel()
        for task in (reader, writer):
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _write(ws: WebSocket, conn: Connection) -> None:
    while True:
        frame = await conn.outbox.get()
        try:
            if isinstance(frame, bytes):
                await ws.send_bytes(frame)
            else:
                await ws.send_text(frame)
        except (WebSocketDisconnect, RuntimeError, OSError):
            return  # closed under us; the reader sees the disconnect too
        conn.sent(frame)


async def _read(ws: WebSocket, conn: Connection, hub: Hub) -> None:
    while True:
        received = await ws.receive()
        if received["type"] == "websocket.disconnect":
            return
        text = received.get("text")
        if not text:
            continue
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError:
            continue  # ComfyUI ignores what it cannot parse
        if isinstance(data, dict):
            await _on_message(conn, hub, data)


async def _on_message(conn: Connection, hub: Hub, data: dict[str, Any]) -> None:
    kind, body = data.get("type"), data.get("data")
    if kind == "feature_flags":
        flags = body if isinstance(body, dict) else {}
        conn.preview_metadata = bool(flags.get("supports_preview_metadata"))
        conn.send(message("feature_flags", feature_flags(hub.platform.settings)))
    elif kind == "comfy_multi.hello":
        conn.extras = True
        try:
            await hub.places.greet(conn)
        except RedisError as exc:
            logger.warning("could not send %s their place in the queue: %s", conn.user, exc)
