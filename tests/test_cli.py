"""The `comfy-multi` command as an operator uses it: real processes, real Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from comfy_multi.store.embedded import EmbeddedRedis

from .conftest import free_port


def cli(
    data_dir: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "comfy_multi", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


def test_room_commands_without_a_running_platform(tmp_path: Path) -> None:
    """user/worker-token/status start the data dir's Redis for themselves, and stop it."""
    data = tmp_path / "data"
    added = cli(data, "user", "add", "alice")
    assert added.returncode == 0, added.stderr
    assert "password:" in added.stdout
    assert cli(data, "user", "add", "teacher", "--admin", "--password", "s3cret").returncode == 0
    duplicate = cli(data, "user", "add", "alice")
    assert duplicate.returncode == 1
    assert "already exists" in duplicate.stderr
    assert "Traceback" not in duplicate.stderr
    listed = cli(data, "user", "list").stdout
    assert "alice" in listed
    assert "admin" in listed
    token = cli(data, "worker-token", "create", "gpu-1")
    assert token.returncode == 0
    assert "cmw_" in token.stdout
    status = cli(data, "status")
    assert status.returncode == 0, status.stderr
    for heading in ("waiting", "running", "workers", "users", "fair"):
        assert heading in status.stdout
    assert EmbeddedRedis(data / "redis").running_pid() is None  # stopped after each command


def test_bad_settings_fail_with_one_line(tmp_path: Path) -> None:
    result = cli(tmp_path, "status", env={"COMFY_MULTI_LEASE_SECONDS": "soon"})
    assert result.returncode == 1
    assert "COMFY_MULTI_LEASE_SECONDS" in result.stderr
    assert "Traceback" not in result.stderr
    result = cli(tmp_path, "status", env={"REDIS_URL": "http://nope"})
    assert result.returncode == 1
    assert "REDIS_URL" in result.stderr or "redis://" in result.stderr


@pytest.mark.slow
def test_up_serves_and_stops_cleanly(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "comfy_multi", "up", "--data-dir", str(data), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.HTTPError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert health.json()["status"] == "ok"
        password = (data / "initial-admin-password").read_text().strip()
        assert (data / "initial-admin-password").stat().st_mode & 0o077 == 0
        me = httpx.get(f"http://127.0.0.1:{port}/api/v1/me", auth=("admin", password))
        assert me.json() == {"name": "admin", "admin": True}
        # a room command while `up` runs uses its Redis and leaves it running
        assert cli(data, "user", "add", "bob", "--password", "bob-pw").returncode == 0
        assert (
            httpx.get(f"http://127.0.0.1:{port}/api/v1/me", auth=("bob", "bob-pw")).status_code
            == 200
        )
        second = cli(data, "up", "--port", str(free_port()))
        assert second.returncode == 1
        assert "already running" in second.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert password not in out + err  # the password is in a private file, never in the log
    assert EmbeddedRedis(data / "redis").running_pid() is None
    assert not (data / "redis" / "redis.pid").exists()
