"""Drive a room from a test: participants' clients, scripted GPU workers on the real
worker channel client, and a dashboard socket that mirrors what the page holds."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect

from comfy_multi.wire import ClaimedJob, Event, HeartbeatAnswer
from comfy_multi.worker.channel import Channel
from tests.channel import FAST, register
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


class ScriptedWorker:
    """A GPU worker without a GPU: the test decides when it claims and finishes;
    every call goes through the real worker channel client."""

    def __init__(self, gateway: Gateway, token: str, worker_id: str) -> None:
        self.worker_id = worker_id
        self.channel = Channel(gateway.url, token, worker_id, backoff=FAST)

    async def register(self) -> None:
        await register(
            self.channel, OBJECT_INFO, models={"checkpoints": ["a.safetensors", "b.safetensors"]}
        )

    async def claim(self) -> ClaimedJob | None:
        return await self.channel.claim(0)

    async def heartbeat(self, *jobs: ClaimedJob) -> HeartbeatAnswer:
        return await self.channel.heartbeat(list(jobs))

    async def progress(self, job: ClaimedJob, value: int, maximum: int) -> None:
        event = Event(type="progress", data={"value": value, "max": maximum, "node": "2"})
        await self.channel.post_events(job, [event])

    async def upload(self, job: ClaimedJob, filename: str, data: bytes) -> str:
        """Store an output the way a real worker does; the stored name."""
        stored = await self.channel.put_output(
            job, filename=filename, subfolder="", kind="output", content=data, size=len(data)
        )
        return stored.filename

    async def complete(self, job: ClaimedJob) -> None:
        await self.channel.complete(job, {}, {})

    async def fail(self, job: ClaimedJob, message: str = "out of memory") -> None:
        error = {"exception_message": message, "node_type": "SaveImage"}
        await self.channel.fail(job, error, requeue=False)

    async def aclose(self) -> None:
        await self.channel.aclose()


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
