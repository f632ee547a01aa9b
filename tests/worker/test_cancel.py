"""Cancel and timeout: ComfyUI is interrupted for that prompt only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from tests.conftest import wait_for
from tests.worker import prompts
from tests.worker.conftest import Room, StandIn, Workers


async def _comfy_queue(standin: StandIn) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=standin.url) as http:
        queue: dict[str, Any] = (await http.get("/queue")).json()
    return queue


async def _history(standin: StandIn, prompt_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=standin.url) as http:
        entry: dict[str, Any] = (await http.get(f"/history/{prompt_id}")).json()
    return entry.get(prompt_id, {})


async def test_cancel_interrupts_the_running_prompt(
    room: Room, standin: StandIn, workers: Workers, dump_logs: Callable[[], str]
) -> None:
    worker = workers.start(standin.url)
    await room.wait_workers(1)
    job_id = await room.submit(prompts.slow(60, steps=120))
    await room.wait_state(job_id, ("running",))
    await wait_for(lambda: "running as ComfyUI prompt" in worker.output(), timeout=10)

    await room.cancel(job_id)

    assert (await room.wait_state(job_id))["state"] == "cancelled"

    async def comfy_idle() -> bool:
        queue = await _comfy_queue(standin)
        return not queue["queue_running"] and not queue["queue_pending"]

    await wait_for(comfy_idle, timeout=10)
    follow_up = await room.submit(prompts.empty_saved(color=3))
    assert (await room.wait_state(follow_up))["state"] == "done"


async def test_cancel_leaves_other_prompts_on_the_same_comfyui_alone(
    room: Room, standin: StandIn, workers: Workers, dump_logs: Callable[[], str]
) -> None:
    """Someone else's prompt runs on ComfyUI; our job waits behind it and is cancelled."""
    async with httpx.AsyncClient(base_url=standin.url) as http:
        answer = await http.post(
            "/prompt", json={"prompt": prompts.slow(3.0, steps=6), "client_id": "bystander"}
        )
    assert answer.status_code == 200, answer.text
    bystander = answer.json()["prompt_id"]

    worker = workers.start(standin.url)
    await room.wait_workers(1)
    job_id = await room.submit(prompts.slow(1.0, steps=2, color=5))
    await wait_for(lambda: "running as ComfyUI prompt" in worker.output(), timeout=10)
    ours = worker.output().split("running as ComfyUI prompt ", 1)[1].split()[0]
    assert any(item[1] == ours for item in (await _comfy_queue(standin))["queue_pending"])

    await room.cancel(job_id)

    assert (await room.wait_state(job_id))["state"] == "cancelled"
    finished = await wait_for(lambda: _history(standin, bystander), timeout=15)
    assert finished["status"]["status_str"] == "success"
    queue = await _comfy_queue(standin)
    assert all(item[1] != ours for item in queue["queue_running"] + queue["queue_pending"])
    assert await _history(standin, ours) == {}


async def test_a_job_past_its_time_limit_is_interrupted_and_failed(
    room: Room, standin: StandIn, workers: Workers, dump_logs: Callable[[], str]
) -> None:
    workers.start(standin.url, args=("--job-timeout", "1"))
    await room.wait_workers(1)
    job_id = await room.submit(prompts.slow(60, steps=120))

    job = await room.wait_state(job_id, within=20)

    assert job["state"] == "failed"
    assert job["error"]["type"] == "timeout"
    assert "1 s time limit" in job["error"]["message"]

    async def comfy_idle() -> bool:
        queue = await _comfy_queue(standin)
        return not queue["queue_running"] and not queue["queue_pending"]

    await wait_for(comfy_idle, timeout=10)
