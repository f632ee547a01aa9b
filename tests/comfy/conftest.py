"""Fixtures for the participant API: signed-in clients, a worker that talks
through the real worker channel, and participant websockets."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from PIL import Image
from websockets.asyncio.client import ClientConnection, connect

from comfy_multi.wire import ClaimedJob, Event
from comfy_multi.worker.channel import Channel
from tests.channel import FAST, register, worker_channel
from tests.comfy.procs import node_defs
from tests.conftest import Gateway, Person


def png_bytes(size: tuple[int, int] = (8, 8), color: tuple[int, ...] = (200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="PNG")
    return out.getvalue()


def basic(person: Person) -> str:
    return "Basic " + base64.b64encode(f"{person.name}:{person.password}".encode()).decode()


@dataclass
class ScriptedWorker:
    """A GPU worker whose ComfyUI is played by the test; every call goes through
    the real worker channel client, as the real worker's would."""

    channel: Channel
    object_info: dict[str, Any] = field(default_factory=node_defs)

    async def register(self, models: dict[str, list[str]] | None = None) -> None:
        await register(
            self.channel,
            self.object_info,
            models=models or {"checkpoints": ["sd15.safetensors"]},
            comfyui_version="0.3.64",
        )

    async def claim(self) -> ClaimedJob:
        job = await self.channel.claim(10)
        assert job is not None, "no job was queued"
        return job

    async def events(self, job: ClaimedJob, *events: tuple[str, dict[str, Any]]) -> None:
        batch = [Event(type=t, data={"prompt_id": job.job_id, **d}) for t, d in events]
        await self.channel.post_events(job, batch)

    async def preview(
        self, job: ClaimedJob, image: bytes, meta: dict[str, Any] | None = None
    ) -> None:
        await self.channel.put_preview(job, image, "image/png", meta)

    async def output(self, job: ClaimedJob, filename: str, body: bytes) -> dict[str, Any]:
        stored = await self.channel.put_output(
            job, filename=filename, subfolder="", kind="output", content=body, size=len(body)
        )
        return stored.model_dump()

    async def complete(self, job: ClaimedJob, outputs: dict[str, Any]) -> None:
        await self.channel.complete(job, outputs, {})

    async def fail(self, job: ClaimedJob, error: dict[str, Any]) -> None:
        await self.channel.fail(job, error, requeue=False)

    async def run(self, job: ClaimedJob, image: bytes | None = None) -> dict[str, Any]:
        """A whole successful run of a SaveImage job, as the real worker reports it."""
        stored = await self.output(job, "ComfyUI_00001_.png", image or png_bytes())
        saved = {"images": [stored]}
        await self.events(
            job,
            ("execution_start", {"timestamp": 1}),
            ("execution_cached", {"nodes": [], "timestamp": 1}),
            ("executing", {"node": "1", "display_node": "1"}),
            ("progress", {"value": 1, "max": 1, "node": "1"}),
            ("executed", {"node": "3", "display_node": "3", "output": saved}),
            ("execution_success", {"timestamp": 2}),
        )
        await self.complete(job, {"3": saved})
        return saved


@pytest.fixture
async def worker(gateway: Gateway, worker_token: str) -> AsyncIterator[ScriptedWorker]:
    """A registered worker offering the stand-in's nodes."""
    async with worker_channel(gateway.url, worker_token, "fake-gpu") as channel:
        scripted = ScriptedWorker(channel)
        await scripted.register()
        yield scripted


@pytest.fixture
async def clients(
    gateway: Gateway, people: dict[str, Person]
) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    """One HTTP Basic client per person."""
    async with contextlib.AsyncExitStack() as stack:
        out = {}
        for name, person in people.items():
            out[name] = await stack.enter_async_context(gateway.client(auth=person.auth))
        yield out


def blur_prompt(image: str | None = None, sigma: float = 1.0) -> dict[str, Any]:
    """LoadImage (or EmptyImage) → ImageBlur → SaveImage, the CPU-only workshop graph."""
    source: dict[str, Any]
    if image is None:
        source = {
            "class_type": "EmptyImage",
            "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 3355443},
        }
    else:
        source = {"class_type": "LoadImage", "inputs": {"image": image}}
    return {
        "1": source,
        "2": {
            "class_type": "ImageBlur",
            "inputs": {"image": ["1", 0], "blur_radius": 3, "sigma": sigma},
        },
        "3": {
            "class_type": "SaveImage",
            "inputs": {"images": ["2", 0], "filename_prefix": "ComfyUI"},
        },
    }


class UserSocket:
    """A participant's ComfyUI websocket, read frame by frame."""

    def __init__(self, ws: ClientConnection, sid: str) -> None:
        self.ws = ws
        self.sid = sid

    async def next(self, within: float = 10.0) -> str | bytes:
        return await asyncio.wait_for(self.ws.recv(), within)

    async def until(
        self, match: Callable[[dict[str, Any]], bool], within: float = 10.0
    ) -> tuple[dict[str, Any], list[str | bytes]]:
        """Read until a text message matches; also returns every frame read."""
        seen: list[str | bytes] = []
        async with asyncio.timeout(within):
            while True:
                frame = await self.ws.recv()
                seen.append(frame)
                if isinstance(frame, str):
                    message = json.loads(frame)
                    if match(message):
                        return message, seen


@contextlib.asynccontextmanager
async def user_socket(
    gateway: Gateway,
    person: Person,
    *,
    client_id: str | None = None,
    flags: dict[str, Any] | None = None,
    hello: bool = False,
) -> AsyncIterator[UserSocket]:
    url = gateway.url.replace("http://", "ws://") + f"/u/{person.name}/ws"
    if client_id:
        url += f"?clientId={client_id}"
    async with connect(url, additional_headers={"Authorization": basic(person)}) as ws:
        greeting = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert greeting["type"] == "status"
        sock = UserSocket(ws, greeting["data"]["sid"])
        if flags is not None:
            await ws.send(json.dumps({"type": "feature_flags", "data": flags}))
            reply, _ = await sock.until(lambda m: m["type"] == "feature_flags")
            assert reply["data"]["supports_preview_metadata"] is True
        if hello:
            await ws.send(json.dumps({"type": "comfy_multi.hello", "data": {}}))
        yield sock


def scripted_worker(
    http: httpx.AsyncClient, worker_id: str, object_info: dict[str, Any] | None = None
) -> ScriptedWorker:
    """A ScriptedWorker on the gateway and worker token of ``http``."""
    token = str(http.headers["Authorization"]).removeprefix("Bearer ")
    channel = Channel(str(http.base_url).rstrip("/"), token, worker_id, backoff=FAST)
    return ScriptedWorker(channel, object_info if object_info is not None else node_defs())
