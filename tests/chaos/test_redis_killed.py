"""The embedded Redis SIGKILLed while people press Run: `up` starts it again
within seconds, the gateway and the worker reconnect by themselves, and no
acknowledged Run is lost or run twice."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.chaos.room import (
    Load,
    assert_each_run_done_once,
    cli,
    env_for_tests,
    kill,
    start_up,
    wait_until,
    worker_token,
)
from tests.comfy.procs import start_standin, start_worker

pytestmark = pytest.mark.slow

RESTART_WITHIN_S = 10.0


def healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_redis_killed_under_load_comes_back_and_loses_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    up = start_up(data, env=env_for_tests())
    people = [(name, f"{name}-pw") for name in ("alice", "bob", "carol")]
    for name, password in people:
        cli(data, "user", "add", name, "--password", password)
    standin = start_standin(tmp_path / "standin", tmp_path / "standin.log")
    worker = start_worker(up.url, worker_token(data, "gpu-1"), standin.url, tmp_path / "w.log")
    load = Load(up.url, people, every_s=0.1)
    try:
        admin = up.admin
        wait_until(
            lambda: any(
                w["online"] for w in httpx.get(f"{up.url}/api/v1/workers", auth=admin).json()
            ),
            timeout=30,
        )
        load.start()
        time.sleep(3)
        old_pid = up.redis_pid()
        kill(old_pid)
        killed_at = time.monotonic()
        wait_until(lambda: healthy(up.url) and up.redis_pid() != old_pid, RESTART_WITHIN_S)
        back_after = time.monotonic() - killed_at
        time.sleep(3)  # Runs keep arriving on the restarted Redis
        load.stop()
        assert up.proc.poll() is None, up.output()
        assert load.acked, "no Run was acknowledged"
        assert any(t > killed_at + back_after for t, _, _ in load.acked), "none after the restart"

        runs = {job_id: name for _, name, job_id in load.acked}
        assert_each_run_done_once(up.url, admin, people, runs)
        print(
            f"Redis back {back_after:.2f} s after SIGKILL; {len(load.acked)} Runs acknowledged, "
            f"{load.refused} refused while it was down; none lost"
        )
    finally:
        load.stop()
        worker.stop()
        standin.stop()
        assert up.stop() == 0, up.output()
    assert "the embedded Redis exited" in up.log.read_text(errors="replace")
