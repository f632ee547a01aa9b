"""The worker against the session's real ComfyUI (fixture `comfyui_url`)."""

from __future__ import annotations

import io
import random
from collections.abc import Callable

import httpx
import pytest
from PIL import Image

from tests.conftest import wait_for
from tests.worker import prompts
from tests.worker.conftest import Room, Workers, user_socket

pytestmark = pytest.mark.comfyui


async def _wait_nodes_published(room: Room) -> None:
    """A worker is online before its node definitions have arrived; submits need them."""

    async def published() -> bool:
        response = await room.http.get("/u/alice/object_info", auth=room.auth("alice"))
        return response.status_code == 200 and "ImageBlur" in response.json()

    await wait_for(published, timeout=30)


async def _comfy_idle(comfyui_url: str) -> bool:
    async with httpx.AsyncClient(base_url=comfyui_url) as http:
        queue = (await http.get("/queue")).json()
    return not queue["queue_running"] and not queue["queue_pending"]


async def test_load_invert_save_on_a_real_comfyui(
    room: Room, workers: Workers, dump_logs: Callable[[], str], comfyui_url: str
) -> None:
    color = (random.randrange(256), random.randrange(256), random.randrange(256))
    (room.user_dir("alice", "input") / "real.png").write_bytes(prompts.png_bytes((40, 30), color))
    worker = workers.start(comfyui_url)
    await room.wait_workers(1)
    await _wait_nodes_published(room)

    async with user_socket(room, "alice") as sock:
        job_id = await room.submit(
            prompts.invert("real.png", prefix="comfy-multi-test"), client_id=sock.sid
        )
        events, _ = await sock.run_of(job_id, within=60)
    job = await room.wait_state(job_id, within=60)

    kinds = [(e["type"], e["data"].get("node")) for e in events]
    expected = [
        ("execution_start", None),
        ("executing", "1"),
        ("executing", "2"),
        ("executing", "3"),
        ("executed", "3"),
        ("execution_success", None),
        ("executing", None),
    ]
    assert [k for k in kinds if k in expected] == expected, kinds

    assert job["state"] == "done", job
    (saved,) = job["outputs"]["3"]["images"]
    stored = room.user_dir("alice", saved["type"]) / saved["subfolder"] / saved["filename"]
    with Image.open(io.BytesIO(stored.read_bytes())) as image:
        assert image.size == (40, 30)
        pixel = image.convert("RGB").getpixel((5, 5))
    assert isinstance(pixel, tuple)
    # ComfyUI works in floats and truncates back to 8 bits: off by one at most
    assert all(abs(p - (255 - c)) <= 1 for p, c in zip(pixel, color, strict=True)), pixel

    prompt_id = worker.output().split("running as ComfyUI prompt ", 1)[1].split()[0]

    async def history_cleaned() -> bool:
        async with httpx.AsyncClient(base_url=comfyui_url) as http:
            return (await http.get(f"/history/{prompt_id}")).json() == {}

    await wait_for(history_cleaned, timeout=15)


async def test_cancel_interrupts_a_real_comfyui(
    room: Room, workers: Workers, dump_logs: Callable[[], str], comfyui_url: str
) -> None:
    worker = workers.start(comfyui_url)
    await room.wait_workers(1)
    await _wait_nodes_published(room)
    slow_blur = {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 2048, "height": 2048, "batch_size": 1, "color": 0},
        },
        "2": {
            "class_type": "ImageBlur",
            "inputs": {"image": ["1", 0], "blur_radius": 31, "sigma": random.uniform(1, 10)},
        },
        "3": {
            "class_type": "ImageBlur",
            "inputs": {"image": ["2", 0], "blur_radius": 31, "sigma": 2.0},
        },
        "4": {"class_type": "PreviewImage", "inputs": {"images": ["3", 0]}},
    }
    job_id = await room.submit(slow_blur)
    await wait_for(lambda: "running as ComfyUI prompt" in worker.output(), timeout=30)

    await room.cancel(job_id)

    assert (await room.wait_state(job_id))["state"] == "cancelled"
    await wait_for(lambda: _comfy_idle(comfyui_url), timeout=40)
