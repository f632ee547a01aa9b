"""Gateway + embedded Redis + worker + ComfyUI stand-in, all real, on loopback."""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import wait_for
from tests.worker import prompts
from tests.worker.conftest import Room, StandIn, Workers


def _files(output: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        item
        for items in output.values()
        if isinstance(items, list)
        for item in items
        if isinstance(item, dict) and "filename" in item
    ]


async def test_a_job_runs_and_its_outputs_land_in_the_users_folder(
    room: Room, standin: StandIn, workers: Workers, dump_logs: Callable[[], str]
) -> None:
    (room.user_dir("alice", "input") / "cat.png").write_bytes(prompts.png_bytes())
    workers.start(standin.url)
    await room.wait_workers(1)

    job_id = await room.submit(prompts.invert("cat.png"))
    job = await room.wait_state(job_id)

    assert job["state"] == "done", job
    saved = _files(job["outputs"]["3"])
    assert len(saved) == 1
    stored = room.user_dir("alice", saved[0]["type"]) / saved[0]["subfolder"] / saved[0]["filename"]
    assert stored.is_file()
    assert stored.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert job["meta"]["3"]["node_id"] == "3"


async def test_sigterm_finishes_the_running_job_then_exits(
    room: Room, standin: StandIn, workers: Workers, dump_logs: Callable[[], str]
) -> None:
    worker = workers.start(standin.url)
    await room.wait_workers(1)
    job_id = await room.submit(prompts.slow(1.5, steps=5))
    await room.wait_state(job_id, ("running",))
    worker.signal(signal.SIGTERM)

    assert await worker.exited(within=20) == 0
    assert (await room.job(job_id))["state"] == "done"


@pytest.mark.parametrize("second", [signal.SIGTERM, signal.SIGINT])
async def test_a_second_signal_gives_the_job_back(
    room: Room,
    standin: StandIn,
    workers: Workers,
    dump_logs: Callable[[], str],
    second: signal.Signals,
) -> None:
    worker = workers.start(standin.url)
    await room.wait_workers(1)
    job_id = await room.submit(prompts.slow(30, steps=60))
    await room.wait_state(job_id, ("running",))
    worker.signal(signal.SIGTERM)
    await wait_for(lambda: "signal again" in worker.output(), timeout=10)
    worker.signal(second)

    assert await worker.exited(within=20) == 0
    job = await room.wait_state(job_id, ("pending",), within=10)
    assert job["attempts"] <= 1

    async def comfy_idle() -> bool:
        async with room.gateway.client() as http:
            queue = (await http.get(f"{standin.url}/queue")).json()
        return not queue["queue_running"] and not queue["queue_pending"]

    await wait_for(comfy_idle, timeout=15)
