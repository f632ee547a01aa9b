"""`comfy-multi report` against the dashboard's own figures, after a worker was
killed mid-job and restarted under the same name."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.comfy.procs import clean_env
from tests.conftest import Gateway, wait_for
from tests.worker import prompts
from tests.worker.conftest import ROOT, Room, StandIn, Workers


def report(gateway: Gateway, *args: str) -> subprocess.CompletedProcess[str]:
    settings = gateway.settings
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "comfy_multi",
            "report",
            "--data-dir",
            str(settings.data_dir),
            *args,
        ],
        cwd=ROOT,
        env=clean_env(REDIS_URL=str(settings.redis_url), COLUMNS="80"),
        capture_output=True,  # piped, as into a file or a mail
        text=True,
        timeout=60,
    )


@pytest.mark.slow
async def test_report_counts_a_killed_worker_as_the_dashboard_does(
    room: Room, standin: StandIn, workers: Workers
) -> None:
    first = workers.start(standin.url, name="gpu-1")
    await room.wait_workers(1)
    quick = await room.submit(prompts.empty_saved(color=3), user="bob")
    assert (await room.wait_state(quick))["state"] == "done"
    slow = await room.submit(prompts.slow(seconds=8, steps=16), user="alice")

    async def running() -> bool:
        return (await room.job(slow))["state"] == "running"

    await wait_for(running, timeout=20)
    first.kill()  # SIGKILL mid-job: the lease runs out and the job starts again
    workers.start(standin.url, name="gpu-1")  # the same GPU, restarted
    done = await room.wait_state(slow, within=90)
    assert done["state"] == "done"
    assert done["attempts"] == 2

    dashboard = await room.workers()  # what /admin shows, one row per worker process
    assert len(dashboard) == 2
    shown_done = sum(w["jobs_done"] for w in dashboard)
    shown_failed = sum(w["failures"] for w in dashboard)
    assert (shown_done, shown_failed) == (2, 1)

    result = report(room.gateway)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("room: the Redis at")
    assert all(len(line) <= 80 for line in lines[1:]), lines  # line 0 is a socket path
    assert "2 jobs from " in lines[1]
    assert "at most 1 person at once" in lines[2]  # bob had finished before alice queued
    assert "1 GPU busy" in lines[2]  # a restart is not a second GPU
    gpu = lines.index("GPUs (the dashboard's counts; a job lost with its worker is a failure)")
    assert lines[gpu + 1].split() == ["GPU", "done", "failed", "busy", "share", "restarts"]
    row = lines[gpu + 2].split()
    assert (row[0], int(row[1]), int(row[2]), row[5]) == ("gpu-1", shown_done, shown_failed, "1")
    people = lines.index("Jobs per person")
    assert lines[people + 2].split()[:3] == ["alice", "1", "1"]  # never "ali…"
    assert lines[people + 3].split()[:3] == ["bob", "1", "1"]
