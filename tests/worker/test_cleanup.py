"""After a job the worker leaves little behind on ComfyUI."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from comfy_multi.worker.janitor import PLACEHOLDER_PNG
from tests.conftest import wait_for
from tests.worker import prompts
from tests.worker.conftest import Room, StandIn, WorkerProc, Workers


async def _run_invert(room: Room, standin: StandIn, worker: WorkerProc) -> str:
    (room.user_dir("alice", "input") / "cat.png").write_bytes(prompts.png_bytes((300, 200)))
    await room.wait_workers(1)
    job_id = await room.submit(prompts.invert("cat.png"))
    assert (await room.wait_state(job_id))["state"] == "done"
    return worker.output().split("running as ComfyUI prompt ", 1)[1].split()[0]


async def _history(standin: StandIn) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=standin.url) as http:
        history: dict[str, Any] = (await http.get("/history")).json()
    return history


async def test_history_is_removed_and_inputs_blanked_through_comfyui(
    room: Room, standin: StandIn, workers: Workers, dump_logs: Callable[[], str]
) -> None:
    worker = workers.start(standin.url)
    prompt_id = await _run_invert(room, standin, worker)

    await wait_for(lambda: _gone(standin, prompt_id), timeout=10)
    (staged,) = standin.input_dir.glob("cm-*/cat.png")
    await wait_for(lambda: staged.read_bytes() == PLACEHOLDER_PNG, timeout=10)


async def _gone(standin: StandIn, prompt_id: str) -> bool:
    return prompt_id not in await _history(standin)


async def test_a_shared_input_folder_is_emptied_directly(
    room: Room, standin: StandIn, workers: Workers, dump_logs: Callable[[], str]
) -> None:
    worker = workers.start(standin.url, args=("--comfyui-input-dir", str(standin.input_dir)))
    prompt_id = await _run_invert(room, standin, worker)

    await wait_for(lambda: not list(standin.input_dir.glob("cm-*")), timeout=10)
    assert await _gone(standin, prompt_id)
