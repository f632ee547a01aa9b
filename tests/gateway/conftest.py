from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from comfy_multi.worker.channel import Channel

from ..channel import worker_channel
from ..conftest import Gateway

OBJECT_INFO = {
    "EmptyImage": {
        "input": {"required": {"width": ["INT", {"default": 512, "min": 1, "max": 16384}]}},
        "output": ["IMAGE"],
        "output_node": False,
        "name": "EmptyImage",
    },
    "SaveImage": {
        "input": {"required": {"images": ["IMAGE"]}},
        "output": [],
        "output_node": True,
        "name": "SaveImage",
    },
}
PROMPT = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 64}},
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}},
}


@pytest.fixture
async def channel(gateway: Gateway, worker_token: str) -> AsyncIterator[Channel]:
    """A worker registered with OBJECT_INFO, through the real worker channel client."""
    async with worker_channel(gateway.url, worker_token, "fake-1", OBJECT_INFO) as registered:
        yield registered
