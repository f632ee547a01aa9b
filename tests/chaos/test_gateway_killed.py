"""`up` SIGKILLed while people press Run: its embedded Redis lives on in its
own session, a new `up` on the same port adopts it, the worker reconnects by
itself, and every acknowledged Run is done exactly once."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from urllib.parse import urlsplit

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
from tests.chaos.test_redis_killed import healthy
from tests.comfy.procs import start_standin, start_worker

pytestmark = pytest.mark.slow


def test_gateway_killed_under_load_new_up_adopts_redis_and_loses_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    up = start_up(data, env=env_for_tests())
    port = urlsplit(up.url).port
    assert port is not None
    people = [(name, f"{name}-pw") for name in ("alice", "bob", "carol")]
    for name, password in people:
        cli(data, "user", "add", name, "--password", password)
    standin = start_standin(tmp_path / "standin", tmp_path / "standin.log")
    worker = start_worker(up.url, worker_token(data, "gpu-1"), standin.url, tmp_path / "w.log")
    load = Load(up.url, people, every_s=0.1)
    second = None
    try:
        admin = up.admin

        def worker_online(url: str) -> bool:
            try:
                workers = httpx.get(f"{url}/api/v1/workers", auth=admin, timeout=2).json()
            except httpx.HTTPError:
                return False
            return any(w["online"] for w in workers)

        wait_until(lambda: worker_online(up.url), timeout=30)
        load.start()
        time.sleep(3)
        redis_pid = up.redis_pid()
        kill(up.proc.pid)
        up.proc.wait(timeout=10)
        killed_at = time.monotonic()
        os.kill(redis_pid, 0)  # the embedded Redis outlived its `up`
        second = start_up(data, port=port, env=env_for_tests())
        wait_until(lambda: healthy(second.url), timeout=30)
        back_after = time.monotonic() - killed_at
        assert second.redis_pid() == redis_pid, "the new up started another Redis"
        wait_until(lambda: worker_online(second.url), timeout=30)
        time.sleep(3)  # Runs keep arriving on the new gateway
        load.stop()
        assert any(t > killed_at + back_after for t, _, _ in load.acked), "none after the restart"

        runs = {job_id: name for _, name, job_id in load.acked}
        assert_each_run_done_once(second.url, admin, people, runs)
        print(
            f"new up serving {back_after:.2f} s after SIGKILL; {len(load.acked)} Runs "
            f"acknowledged, {load.refused} refused while down; none lost"
        )
    finally:
        load.stop()
        worker.stop()
        standin.stop()
        if second is not None:
            second.stop()
        else:
            up.stop()
            with contextlib.suppress(OSError, ValueError):
                kill(up.redis_pid())  # an orphaned Redis, if the new up never started
