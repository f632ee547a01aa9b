"""What GPUs and networks do: killed workers, dying ComfyUI, a gateway restart."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from comfy_multi.settings import Settings
from tests.conftest import Gateway, ServerThread, wait_for
from tests.worker import prompts
from tests.worker.conftest import Room, StandIns, Workers


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Leases long enough to ride out a gateway restart; short enough to test expiry."""
    return settings.model_copy(update={"lease_seconds": 6.0})


def _saved_files(room: Room, prefix: str) -> list[str]:
    folder = room.user_dir("alice", "output")
    return sorted(p.name for p in folder.rglob(f"{prefix}*") if p.is_file())


@pytest.mark.slow
async def test_a_killed_worker_s_job_completes_once_on_another(
    room: Room, standins: StandIns, workers: Workers, dump_logs: Callable[[], str]
) -> None:
    first_gpu, second_gpu = standins.start(name="gpu-a"), standins.start(name="gpu-b")
    doomed = workers.start(first_gpu.url, name="doomed")
    await room.wait_workers(1)
    job_id = await room.submit(prompts.slow(2.0, steps=8))
    running = await room.wait_state(job_id, ("running",))
    assert running["worker"].startswith("doomed-")

    doomed.kill()
    workers.start(second_gpu.url, name="rescuer")
    job = await room.wait_state(job_id, within=40)

    assert job["state"] == "done", job
    assert job["worker"].startswith("rescuer-")
    assert job["attempts"] == 2
    assert _saved_files(room, "slow") == ["slow_00001_.png"]


@pytest.mark.slow
async def test_comfyui_dying_mid_job_requeues_it_until_comfyui_is_back(
    room: Room, standins: StandIns, workers: Workers, dump_logs: Callable[[], str]
) -> None:
    gpu = standins.start()
    worker = workers.start(gpu.url)
    await room.wait_workers(1)
    job_id = await room.submit(prompts.slow(20.0, steps=40))
    await room.wait_state(job_id, ("running",))
    await wait_for(lambda: "running as ComfyUI prompt" in worker.output(), timeout=10)

    gpu.kill()
    requeued = await room.wait_state(job_id, ("pending", "failed"), within=15)
    assert requeued["state"] == "pending"
    assert "went away while running the job" in worker.output()

    standins.restart(gpu)
    # the requeued job would take 20 s again; cancel it and run a short one instead
    await room.cancel(job_id)
    second = await room.submit(prompts.empty_saved(color=7))
    job = await room.wait_state(second, within=30)
    assert job["state"] == "done", job
    assert "waiting for ComfyUI" in worker.output()


@pytest.mark.slow
async def test_a_gateway_restart_mid_job_does_not_lose_the_result(
    room: Room,
    gateway: Gateway,
    standins: StandIns,
    workers: Workers,
    dump_logs: Callable[[], str],
) -> None:
    gpu = standins.start()
    worker = workers.start(gpu.url)
    await room.wait_workers(1)
    job_id = await room.submit(prompts.slow(1.5, steps=6))
    await room.wait_state(job_id, ("running",))

    gateway.server.stop()

    async def finished_on_comfyui() -> bool:
        async with httpx.AsyncClient() as http:
            history = (await http.get(f"{gpu.url}/history")).json()
        return any(e["status"]["status_str"] == "success" for e in history.values())

    # the job ends on ComfyUI while the gateway is away; the worker keeps its result
    await wait_for(finished_on_comfyui, timeout=20)
    await wait_for(lambda: "relaying events failed" in worker.output(), timeout=20)
    restarted = ServerThread(gateway.settings, port=gateway.server.port).start()
    try:
        job = await room.wait_state(job_id, within=30)
    finally:
        restarted.stop()
    assert job["state"] == "done", job
    assert job["attempts"] == 1
    assert _saved_files(room, "slow") == ["slow_00001_.png"]
