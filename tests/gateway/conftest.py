from __future__ import annotations

import hashlib
from typing import Any

import httpx
import orjson
import pytest

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


class FakeWorker:
    """Drives the real worker channel from the test, as a GPU worker would."""

    def __init__(self, client: httpx.AsyncClient, worker_id: str) -> None:
        self.client = client
        self.worker_id = worker_id

    async def register(self, object_info: dict[str, Any] = OBJECT_INFO) -> dict[str, Any]:
        body = orjson.dumps(object_info)
        digest = hashlib.sha256(body).hexdigest()
        r = await self.client.post(
            "/worker/v1/register",
            json={
                "worker_id": self.worker_id,
                "object_info_digest": digest,
                "nodes": list(object_info),
            },
        )
        r.raise_for_status()
        if r.json()["need_object_info"]:
            put = await self.client.put(f"/worker/v1/object_info?digest={digest}", content=body)
            assert put.status_code == 204, put.text
        return dict(r.json())

    async def claim(self, wait: float = 0) -> dict[str, Any] | None:
        r = await self.client.post(
            "/worker/v1/claim", json={"worker_id": self.worker_id, "wait_seconds": wait}
        )
        if r.status_code == 204:
            return None
        r.raise_for_status()
        return dict(r.json())

    def lease(self, job: dict[str, Any]) -> dict[str, str]:
        return {"X-Lease-Token": job["lease_token"], "X-Worker-Id": self.worker_id}

    async def complete(
        self, job: dict[str, Any], outputs: dict[str, Any] | None = None
    ) -> httpx.Response:
        return await self.client.post(
            f"/worker/v1/jobs/{job['job_id']}/complete",
            json={"outputs": outputs or {}},
            headers=self.lease(job),
        )


@pytest.fixture
async def fake_worker(gateway: Gateway, worker_token: str) -> Any:
    async with gateway.client(headers={"Authorization": f"Bearer {worker_token}"}) as client:
        worker = FakeWorker(client, "fake-1")
        await worker.register()
        yield worker
