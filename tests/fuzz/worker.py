"""A worker registered through the real channel, for tests that need submits
to reach validation (with none, every submit is the designed 503)."""

from __future__ import annotations

import hashlib
import json

import httpx

from tests.conftest import Gateway

OBJECT_INFO = {
    "EmptyImage": {"input": {"required": {"width": ["INT", {"default": 8}]}}, "output": ["IMAGE"]},
    "SaveImage": {"input": {"required": {"images": ["IMAGE"]}}, "output": [], "output_node": True},
}


def register_worker(gateway: Gateway, token: str) -> None:
    """A registered worker, so submits reach validation (else every one is
    the designed 503 "no GPU worker has connected yet")."""
    body = json.dumps(OBJECT_INFO).encode()
    digest = hashlib.sha256(body).hexdigest()
    with httpx.Client(base_url=gateway.url, headers={"Authorization": f"Bearer {token}"}) as http:
        http.post(
            "/worker/v1/register",
            json={
                "worker_id": "fuzz-gpu",
                "object_info_digest": digest,
                "nodes": list(OBJECT_INFO),
            },
        ).raise_for_status()
        http.put(f"/worker/v1/object_info?digest={digest}", content=body).raise_for_status()
