"""Workers die the way rented GPUs do: three workers serve twenty people's
two hundred Runs while one is SIGKILLed again and again (and started again),
and another is frozen (SIGSTOP) past its lease and then thawed. Every Run
finishes exactly once, in its owner's history; the frozen worker's late
reports are refused."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from tests.chaos.room import (
    assert_each_run_done_once,
    cli,
    env_for_tests,
    start_up,
    wait_until,
    worker_token,
)
from tests.comfy.procs import start_standin, start_worker
from tests.worker.prompts import slow

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

PEOPLE = 20
RUNS = 200
KILLS = 3


def test_workers_killed_and_frozen_lose_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    up = start_up(data, env=env_for_tests())
    people = [(f"p{i:02d}", f"p{i:02d}-pw") for i in range(PEOPLE)]
    cli(data, "user", "add", "--from-csv", str(_class_list(tmp_path, people)))
    token = worker_token(data, "gpus")
    standins = [start_standin(tmp_path / f"s{i}", tmp_path / f"s{i}.log") for i in range(3)]
    workers = [
        start_worker(up.url, token, s.url, tmp_path / f"w{i}.log", name=f"gpu-{i}")
        for i, s in enumerate(standins)
    ]
    admin = up.admin
    try:
        wait_until(
            lambda: (
                sum(w["online"] for w in httpx.get(f"{up.url}/api/v1/workers", auth=admin).json())
                == 3
            ),
            timeout=30,
        )
        jobs: dict[str, str] = {}
        with httpx.Client(base_url=up.url, timeout=30) as http:
            for n in range(RUNS):
                name, password = people[n % PEOPLE]
                answer = http.post(
                    f"/u/{name}/api/prompt",
                    json={"prompt": slow(seconds=1.0, steps=4, color=n)},
                    auth=(name, password),
                )
                assert answer.status_code == 200, answer.text
                jobs[answer.json()["prompt_id"]] = name

            # gpu-0 dies mid-job again and again, and is started again each time
            for k in range(KILLS):
                wait_until(lambda: _running_on(http, admin, "gpu-0"), timeout=120, interval=0.05)
                workers[0].proc.send_signal(signal.SIGKILL)
                workers[0].proc.wait()
                workers[0] = start_worker(
                    up.url, token, standins[0].url, tmp_path / f"w0-{k}.log", name="gpu-0"
                )
            # gpu-1 freezes past its lease while it holds a job, then thaws
            frozen = wait_until(
                lambda: _running_on(http, admin, "gpu-1"), timeout=60, interval=0.05
            )
            workers[1].proc.send_signal(signal.SIGSTOP)
            wait_until(
                lambda: (
                    http.get(f"/api/v1/jobs/{frozen}", auth=admin).json()["worker"] != "gpu-1"
                    or http.get(f"/api/v1/jobs/{frozen}", auth=admin).json()["state"] != "running"
                ),
                timeout=30,
            )
            workers[1].proc.send_signal(signal.SIGCONT)

            assert_each_run_done_once(up.url, admin, people, jobs, within=300)
        # the frozen worker's own run of that job was never recorded: one output, above
        assert jobs[frozen]  # it is one of the room's Runs
    finally:
        for w in workers:
            if w.proc.poll() is None:
                w.proc.send_signal(signal.SIGCONT)
            w.stop()
        for s in standins:
            s.stop()
        up.stop()


def _class_list(tmp_path: Path, people: list[tuple[str, str]]) -> Path:
    path = tmp_path / "class.csv"
    path.write_text("".join(f"{name},{password}\n" for name, password in people))
    return path


def _running_on(http: httpx.Client, admin: tuple[str, str], worker: str) -> str | None:
    for job in http.get("/api/v1/jobs", params={"state": "running"}, auth=admin).json()["jobs"]:
        if str(job.get("worker") or "").startswith(f"{worker}-"):  # ids are <name>-<hex>
            return str(job["id"])
    return None
