"""Drive a room from a test: participants' clients, fake GPU workers on the real
worker channel, and a dashboard socket that mirrors what the page holds."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect

from tests.conftest import Gateway, Person

NODE = {"category": "test", "description": "", "python_module": "nodes", "deprecated": False}
OBJECT_INFO: dict[str, Any] = {
    "EmptyImage": {
        **NODE,
        "name": "EmptyImage",
        "display_name": "EmptyImage",
        "input": {
            "required": {"width": ["INT", {"default": 8}], "height": ["INT", {"default": 8}]}
        },
        "output": ["IMAGE"],
        "output_is_list": [False],
        "output_name": ["IMAGE"],
        "output_node": False,
    },
    "SaveImage": {
        **NODE,
        "name": "SaveImage",
        "display_name": "Save Image",
        "input": {"required": {"images": ["IMAGE"], "filename_prefix": ["STRING", {}]}},
        "output": [],
        "output_is_list": [],
        "output_name": [],
        "output_node": True,
    },
}
OBJECT_INFO_BYTES = orjson.dumps(OBJECT_INFO)
PROMPT: dict[str, Any] = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8}},
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "t"}},
}


async def submit(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    """Queue PROMPT through the platform API as the client's user."""
    r = await client.post("/api/v1/jobs", json={"prompt": PROMPT, **body})
    assert r.status_code == 201, r.text
    job: dict[str, Any] = r.json()
    return job


class FakeWorker:
    """A GPU worker without a GPU: the test decides when it claims and finishes."""

    def __init__(self, gateway: Gateway, token: str, worker_id: str) -> None:
        self.worker_id = worker_id
        self.http = httpx.AsyncClient(
            base_url=gateway.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )

    async def register(self) -> None:
        digest = hashlib.sha256(OBJECT_INFO_BYTES).hexdigest()
        r = await self.http.post(
            "/worker/v1/register",
            json={
                "worker_id": self.worker_id,
                "comfyui_version": "test",
                "object_info_digest": digest,
                "nodes": sorted(OBJECT_INFO),
                "models": {"checkpoints": ["a.safetensors", "b.safetensors"]},
            },
        )
        r.raise_for_status()
        if r.json()["need_object_info"]:
            put = await self.http.put(
                "/worker/v1/object_info", params={"digest": digest}, content=OBJECT_INFO_BYTES
            )
            put.raise_for_status()

    async def claim(self) -> dict[str, Any] | None:
        r = await self.http.post(
            "/worker/v1/claim", json={"worker_id": self.worker_id, "wait_seconds": 0}
        )
        r.raise_for_status()
        return None if r.status_code == 204 else dict(r.json())

    async def heartbeat(self, *jobs: dict[str, Any]) -> dict[str, Any]:
        held = [{"job_id": j["job_id"], "lease_token": j["lease_token"]} for j in jobs]
        r = await self.http.post(
            "/worker/v1/heartbeat", json={"worker_id": self.worker_id, "jobs": held}
        )
        r.raise_for_status()
        return dict(r.json())

    def _lease(self, job: dict[str, Any]) -> dict[str, str]:
        return {"X-Lease-Token": job["lease_token"], "X-Worker-Id": self.worker_id}

    async def progress(self, job: dict[str, Any], value: int, maximum: int) -> None:
        event = {"type": "progress", "data": {"value": value, "max": maximum, "node": "2"}}
        r = await self.http.post(
            f"/worker/v1/jobs/{job['job_id']}/events",
            json={"events": [event]},
            headers=self._lease(job),
        )
        r.raise_for_status()

    async def upload(self, job: dict[str, Any], filename: str, data: bytes) -> str:
        """Store an output the way a real worker does; the stored name."""
        r = await self.http.put(
            f"/worker/v1/jobs/{job['job_id']}/outputs",
            params={"filename": filename},
            content=data,
            headers=self._lease(job),
        )
        r.raise_for_status()
        return str(r.json()["filename"])

    async def complete(self, job: dict[str, Any]) -> None:
        r = await self.http.post(
            f"/worker/v1/jobs/{job['job_id']}/complete", json={}, headers=self._lease(job)
        )
        r.raise_for_status()

    async def fail(self, job: dict[str, Any], message: str = "out of memory") -> None:
        error = {"exception_message": message, "node_type": "SaveImage"}
        r = await self.http.post(
            f"/worker/v1/jobs/{job['job_id']}/fail",
            json={"error": error},
            headers=self._lease(job),
        )
        r.raise_for_status()

    async def aclose(self) -> None:
        await self.http.aclose()


def basic(person: Person) -> str:
    return "Basic " + base64.b64encode(f"{person.name}:{person.password}".encode()).decode()


def ws_url(gateway: Gateway) -> str:
    return gateway.url.replace("http://", "ws://") + "/admin/ws"


@dataclass
class Dashboard:
    """The page's state, kept by the same rules as admin.js."""

    socket: ClientConnection
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    pending: list[str] = field(default_factory=list)
    running: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)
    progress: dict[str, dict[str, Any]] = field(default_factory=dict)
    workers: list[dict[str, Any]] = field(default_factory=list)
    room: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)

    def apply(self, m: dict[str, Any]) -> None:
        self.messages.append(m)
        if m["t"] == "snapshot":
            self.jobs, self.progress = dict(m["jobs"]), {}
        for name in ("pending", "running", "finished", "workers", "room", "config"):
            if name in m:
                setattr(self, name, m[name])
        self.jobs.update(m.get("jobs", {}))
        self.progress.update(m.get("progress", {}))
        listed = set(self.pending) | set(self.running) | set(self.finished)
        self.jobs = {i: j for i, j in self.jobs.items() if i in listed}

    def users_of(self, ids: list[str]) -> list[str]:
        return [self.jobs[i]["user"] for i in ids]

    async def receive(self, within: float) -> None:
        raw = await asyncio.wait_for(self.socket.recv(), timeout=within)
        self.apply(orjson.loads(raw))

    async def until(self, check: Callable[[Dashboard], Any], within: float = 10.0) -> Any:
        """Read updates until `check(self)` is truthy; its value."""
        deadline = time.monotonic() + within
        while not (value := check(self)):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"dashboard never matched; last state: {self.summary()}")
            await self.receive(remaining)
        return value

    async def refresh(self, *sections: str) -> None:
        await self.socket.send(orjson.dumps({"t": "refresh", "sections": list(sections)}).decode())

    def summary(self) -> dict[str, Any]:
        return {
            "pending": self.users_of([i for i in self.pending if i in self.jobs]),
            "running": self.running,
            "finished": len(self.finished),
            "config": self.config,
            "workers": [(w["worker_id"], w["state"]) for w in self.workers],
        }


async def open_dashboard(gateway: Gateway, person: Person) -> Dashboard:
    socket = await connect(ws_url(gateway), additional_headers={"Authorization": basic(person)})
    dash = Dashboard(socket)
    await dash.receive(10)
    return dash
