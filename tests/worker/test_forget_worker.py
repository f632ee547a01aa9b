"""Workers that are gone: off the lists by themselves after a while, or at
once with `comfy-multi forget-worker`; their jobs stay in the report."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from typing import Any

import pytest

from comfy_multi.admin.report import gather_jobs, summarize
from comfy_multi.settings import Settings
from tests.conftest import wait_for
from tests.worker import prompts
from tests.worker.conftest import Room, StandIns, Workers

FORGET_AFTER_S = 4.0
CLI_TIMEOUT_S = 60


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"worker_forget_seconds": FORGET_AFTER_S})


async def cli(settings: Settings, *args: str) -> tuple[int, str]:
    """The command with the room's settings (a worker is offline after the same silence)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMFY_MULTI_")}
    env.update(
        REDIS_URL=str(settings.redis_url),
        COMFY_MULTI_HEARTBEAT_SECONDS=str(settings.heartbeat_seconds),
        COLUMNS="200",
        NO_COLOR="1",
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "comfy_multi",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=CLI_TIMEOUT_S)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def listed(room: Room) -> dict[str, dict[str, Any]]:
    return {w["worker_id"]: w for w in await room.workers()}


@pytest.mark.slow
async def test_a_dead_worker_leaves_the_list_by_itself_and_its_jobs_stay_in_the_report(
    room: Room, standins: StandIns, workers: Workers, aredis: Any, dump_logs: Callable[[], str]
) -> None:
    gpu = standins.start()
    doomed = workers.start(gpu.url, name="doomed")
    await room.wait_workers(1)
    done = await room.wait_state(await room.submit(prompts.empty_saved()))
    assert done["state"] == "done", done
    job_id = await room.submit(prompts.slow(20.0, steps=20))
    running = await room.wait_state(job_id, ("running",))
    worker_id = running["worker"]

    doomed.kill()

    async def offline() -> bool:
        found = (await listed(room)).get(worker_id)
        return found is not None and found["state"] == "offline"

    await wait_for(offline, timeout=10, interval=0.1)
    await wait_for(lambda: _gone(room, worker_id), timeout=FORGET_AFTER_S + 5, interval=0.2)
    await room.cancel(job_id)  # requeued by the lease sweep meanwhile; nobody will run it

    report = summarize(await gather_jobs(aredis))
    assert [(g.worker_id, g.jobs) for g in report.gpus] == [("doomed", 1)]  # counted by name


async def _gone(room: Room, worker_id: str) -> bool:
    return worker_id not in await listed(room)


@pytest.mark.slow
async def test_the_instructor_forgets_a_worker_from_the_command_line(
    room: Room, standins: StandIns, workers: Workers, settings: Settings
) -> None:
    gpu = standins.start()
    first = workers.start(gpu.url, name="gpu-old")
    await room.wait_workers(1)
    (worker_id,) = list(await listed(room))

    code, out = await cli(settings, "forget-worker", "gpu-old")
    assert code == 1
    assert "is online; stop it" in out
    assert worker_id in await listed(room)
    # the same from the platform API: refused while online, and only for an admin
    online = await room.http.delete(f"/api/v1/workers/{worker_id}", auth=room.auth("teacher"))
    assert online.status_code == 409
    assert "is online" in online.json()["message"]
    refused = await room.http.delete(f"/api/v1/workers/{worker_id}", auth=room.auth("alice"))
    assert refused.status_code == 403

    first.kill()

    async def offline() -> bool:
        return (await listed(room))[worker_id]["state"] == "offline"

    await wait_for(offline, timeout=10, interval=0.1)
    code, out = await cli(settings, "forget-worker", "no-such-gpu")
    assert code == 1
    assert "'no-such-gpu' is not registered" in out

    code, out = await cli(settings, "forget-worker", "gpu-old")  # the name it started with
    assert code == 0, out
    assert f"forgot {worker_id}" in out
    assert worker_id not in await listed(room)
