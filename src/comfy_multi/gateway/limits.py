"""Refuse bodies larger than a route may take, before they are read whole."""

from __future__ import annotations

from collections.abc import Callable

import orjson
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DRAIN_LIMIT = 64 * 1024 * 1024  # read and drop up to this much so the client sees the 413


def _message(limit: int) -> str:
    return f"the request body is larger than the {limit:,} bytes allowed"


class BodyLimit:
    """`limit_for(path)` gives the byte limit; Content-Length is checked up
    front and chunked bodies are counted as they arrive (a 413 HTTPException
    raised inside the app, answered by the app's own error handler)."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            if int(length) <= DRAIN_LIMIT:
                await _drain(receive)
            await _refuse(send, limit)
            return
        seen = 0

        async def counted_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    if message.get("more_body", False):
                        await _drain(receive)
                    raise HTTPException(status_code=413, detail=_message(limit))
            return message

        await self.app(scope, counted_receive, send)


async def _drain(receive: Receive) -> None:
    dropped = 0
    while dropped <= DRAIN_LIMIT:
        message = await receive()
        if message["type"] != "http.request":
            return
        dropped += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


async def _refuse(send: Send, limit: int) -> None:
    body = orjson.dumps({"error": "too_large", "message": _message(limit)})
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": body})
