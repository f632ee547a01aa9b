"""JSON request bodies parsed with bounds a person can be told about.

orjson parses up to 1,024 levels deep, but much of what follows does not
survive that: `str()` of a value recurses in C and raises RecursionError
near 1,000 levels, and orjson writes at most 254 levels when a job is stored.
Nothing ComfyUI sends comes close (a workflow with subgraphs nests about a
dozen levels), so bodies deeper than MAX_DEPTH are refused with a 400 at the
door.

Parsed JSON takes far more memory than its text: 8 MiB of `[[],[],...]` or of
tiny nodes is 100-150 MB of Python objects. Before parsing, the values a body
can hold (commas, brackets and braces, counted in C) are held to MAX_ITEMS
(about 40 MB parsed); a real workflow of a thousand nodes, with its layout,
has about 60,000.
Large bodies are parsed in a worker thread.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request

from comfy_multi.errors import BadRequest
from comfy_multi.services import offload

MAX_DEPTH = 64
MAX_ITEMS = 400_000
OFFLOAD_BYTES = 256 * 1024  # parse bodies larger than this off the event loop


class NotJson(BadRequest):
    code = "invalid_json"


class TooDeep(NotJson):
    """Well-formed, but too large in shape to handle: a 400 even where ComfyUI
    would quietly take a body it cannot parse as `{}`."""


class TooMany(TooDeep):
    pass


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether lists and objects nest more than `limit` levels (iteratively)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        for child in children:
            if isinstance(child, dict | list):
                if depth >= limit:
                    return True
                stack.append((child, depth + 1))
    return False


def loads(body: bytes | str) -> Any:
    """The parsed body; NotJson (400) for bad JSON, nesting past MAX_DEPTH or
    more than MAX_ITEMS values."""
    raw = body.encode() if isinstance(body, str) else body
    items = raw.count(b",") + raw.count(b"[") + raw.count(b"{")
    if items > MAX_ITEMS:
        raise TooMany(f"the JSON holds more than {MAX_ITEMS:,} values ({items:,})")
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise NotJson(f"the body is not valid JSON: {str(exc)[:200]}") from None
    if isinstance(value, dict | list) and too_deep(value):
        raise TooDeep(f"the JSON nests more than {MAX_DEPTH} levels deep")
    return value


async def read(request: Request) -> Any:
    """The request's body parsed by `loads`, large ones off the event loop."""
    body = await request.body()
    if len(body) > OFFLOAD_BYTES:
        return await offload.run("cpu", loads, body)
    return loads(body)
