"""One place that turns errors into JSON answers a person can read."""

from __future__ import annotations

import errno
import logging
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from redis.exceptions import OutOfMemoryError, RedisError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from comfy_multi.errors import RequestError, StoreFull
from comfy_multi.services.pages import page
from comfy_multi.wording import sentence

logger = logging.getLogger(__name__)


def _where(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "the request"


def _validation_message(exc: RequestValidationError) -> str:
    problems = []
    for err in exc.errors()[:5]:
        if err.get("type") == "json_invalid":
            return "The request body is not valid JSON"
        problems.append(f"{_where(tuple(err.get('loc', ())))}: {err.get('msg', 'invalid')}")
    return "; ".join(problems) or "The request is not valid"


async def request_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestError)
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers or None)


async def validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    message = _validation_message(exc)
    status = 400 if message.startswith("The request body is not valid JSON") else 422
    # starts with the field's name as the request spells it, so no capital here
    return JSONResponse({"error": "invalid_request", "message": message}, status_code=status)


def _wants_page(request: Request) -> bool:
    """A person's browser navigating here, not a script or the frontend's fetch."""
    accept = request.headers.get("accept", "")
    return request.method == "GET" and accept.startswith("text/html")


NOTHING_HERE = page(
    "Nothing here",
    "<h1>Nothing here</h1><p>There is no page at this address.</p>"
    '<a class="button" href="/">Go to your workspace</a>',
)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404 and _wants_page(request):
        return HTMLResponse(NOTHING_HERE, status_code=404)
    messages = {
        404: "there is nothing at this address",
        405: "this address does not take that method",
    }
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail else None
    message = (
        messages.get(exc.status_code)
        if detail in (None, "Not Found", "Method Not Allowed")
        else detail
    )
    return JSONResponse(
        {"error": "http_error", "message": sentence(message or str(detail))},
        status_code=exc.status_code,
        headers=getattr(exc, "headers", None),
    )


async def store_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, OutOfMemoryError):
        # noeviction: Redis refuses writes rather than silently dropping data
        logger.error("Redis is full on %s %s", request.method, request.url.path)
        return await request_error(request, StoreFull())
    logger.error("Redis error on %s %s: %s", request.method, request.url.path, exc)
    return JSONResponse(
        {"error": "store_unavailable", "message": "The queue store is not answering; try again"},
        status_code=503,
    )


DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


async def disk_error(request: Request, exc: Exception) -> Response:
    """A full disk (or quota) under the data dir is the room's state, not a
    bug: 507 and a sentence for the participant; anything else stays a 500."""
    if not isinstance(exc, OSError) or exc.errno not in DISK_FULL:
        raise exc
    logger.error("disk full on %s %s: %s", request.method, request.url.path, exc.strerror)
    return JSONResponse(
        {
            "error": "disk_full",
            "message": "The server has no space left to store this file; "
            "tell the instructor (earlier files are safe)",
        },
        status_code=507,
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestError, request_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RedisError, store_error)
    app.add_exception_handler(OSError, disk_error)
