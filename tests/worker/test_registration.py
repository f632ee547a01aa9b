"""Registration follows what ComfyUI offers: new files or nodes change the digest."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import httpx

from comfy_multi.store import keys
from comfy_multi.worker.runner import Worker, WorkerConfig
from tests.conftest import Gateway, wait_for
from tests.worker import prompts
from tests.worker.conftest import Room, StandIn


async def _object_info_digest(standin: StandIn) -> str:
    async with httpx.AsyncClient(base_url=standin.url) as http:
        return hashlib.sha256((await http.get("/object_info")).content).hexdigest()


async def test_the_worker_registers_again_when_object_info_changes(
    room: Room, gateway: Gateway, standin: StandIn, worker_token: str, aredis: Any
) -> None:
    config = WorkerConfig(
        gateway_url=gateway.url,
        token=worker_token,
        comfyui_url=standin.url,
        name="watcher",
        capabilities_every=0.2,
    )
    worker = Worker(config)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(worker.run())
        try:
            await room.wait_workers(1)

            async def published() -> str | None:
                digest = await aredis.hget(keys.WORKER_DIGESTS, worker.worker_id)
                return str(digest) if digest else None

            first = await wait_for(published)
            assert first == await _object_info_digest(standin)
            assert await aredis.hexists(keys.OBJECT_INFO, first)

            (standin.input_dir / "new-upload.png").write_bytes(prompts.png_bytes())
            changed = await _object_info_digest(standin)
            assert changed != first

            async def republished() -> bool:
                return await published() == changed

            await wait_for(republished, timeout=10)
            # a digest is only switched to once its definitions are stored
            assert await aredis.hexists(keys.OBJECT_INFO, changed)
        finally:
            worker.request_stop()
