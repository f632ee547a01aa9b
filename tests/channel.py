"""A GPU worker played by a test: the real worker channel client, registered.

Tests that act as a worker go through ``comfy_multi.worker.channel.Channel``,
the same client the real worker uses; only tests that send malformed or hostile
bodies on purpose build requests by hand.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson

from comfy_multi.wire import Registered, Registration
from comfy_multi.worker.channel import Channel
from comfy_multi.worker.retry import Backoff

FAST = Backoff(first=0.05, cap=0.5)


async def register(
    channel: Channel,
    object_info: dict[str, Any],
    *,
    models: dict[str, list[str]] | None = None,
    comfyui_version: str = "test",
) -> Registered:
    """Register as the real worker does, uploading object_info when asked."""
    raw = orjson.dumps(object_info)
    digest = hashlib.sha256(raw).hexdigest()
    answer = await channel.register(
        Registration(
            worker_id=channel.worker_id,
            comfyui_url="http://127.0.0.1:1",
            comfyui_version=comfyui_version,
            object_info_digest=digest,
            nodes=list(object_info),
            models=models or {},
        )
    )
    if answer.need_object_info:
        await channel.put_object_info(digest, raw)
    return answer


@asynccontextmanager
async def worker_channel(
    url: str,
    token: str,
    worker_id: str,
    object_info: dict[str, Any] | None = None,
    *,
    models: dict[str, list[str]] | None = None,
) -> AsyncIterator[Channel]:
    """A channel to the gateway at ``url``, registered when ``object_info`` is given."""
    channel = Channel(url, token, worker_id, backoff=FAST)
    try:
        if object_info is not None:
            await register(channel, object_info, models=models)
        yield channel
    finally:
        await channel.aclose()
