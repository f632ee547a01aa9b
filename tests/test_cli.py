"""The `comfy-multi` command as an operator uses it: real processes, real Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from comfy_multi.store.embedded import EmbeddedRedis

from .conftest import free_port

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def rooms_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's own record of running rooms, away from the operator's home."""
    path = tmp_path / "rooms"
    monkeypatch.setenv("COMFY_MULTI_ROOMS_DIR", str(path))
    monkeypatch.delenv("COMFY_MULTI_DATA_DIR", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    return path


def cli(
    data_dir: Path | None,
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    where = ["--data-dir", str(data_dir)] if data_dir is not None else []
    return subprocess.run(
        [sys.executable, "-m", "comfy_multi", *args, *where],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


def wait_until_serving(proc: subprocess.Popen[str], port: int) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
            return
        except httpx.HTTPError:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the gateway never answered"
            time.sleep(0.1)


def stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    proc.send_signal(signal.SIGTERM)
    return proc.communicate(timeout=30)


def start_up(data: Path, port: int, *extra: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "comfy_multi", "up", "--data-dir", str(data)]
    proc = subprocess.Popen(
        [*command, "--port", str(port), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_until_serving(proc, port)
    return proc


@pytest.fixture
def room(tmp_path: Path) -> Iterator[tuple[Path, int, subprocess.Popen[str]]]:
    data, port = tmp_path / "data", free_port()
    proc = start_up(data, port)
    try:
        yield data, port, proc
    finally:
        if proc.poll() is None:
            stop(proc)


@pytest.mark.parametrize(
    "command",
    [
        ["status"],
        ["user", "add", "alice"],
        ["user", "list"],
        ["worker-token", "create", "gpu-1"],
        ["report"],
    ],
)
def test_no_room_no_command_and_nothing_created(tmp_path: Path, command: list[str]) -> None:
    """Typed in a directory with no room and no `up` running, a command refuses
    and says how to point it; it never starts an empty room of its own."""
    result = cli(None, *command, cwd=tmp_path)
    assert result.returncode == 1
    assert "no room in" in result.stderr
    for how in ("--data-dir", "COMFY_MULTI_DATA_DIR", "REDIS_URL"):
        assert how in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data").exists()
    explicit = cli(tmp_path / "elsewhere", *command, cwd=tmp_path)
    assert explicit.returncode == 1
    assert f"no room in {tmp_path / 'elsewhere'}" in explicit.stderr
    assert not (tmp_path / "elsewhere").exists()


def test_an_empty_redis_is_no_room(tmp_path: Path, redis_url: str) -> None:
    result = cli(None, "user", "add", "alice", cwd=tmp_path, env={"REDIS_URL": redis_url})
    assert result.returncode == 1
    assert "holds no comfy-multi room" in result.stderr
    assert not (tmp_path / "data").exists()


def test_bad_settings_fail_with_one_line(tmp_path: Path) -> None:
    result = cli(tmp_path, "status", env={"COMFY_MULTI_LEASE_SECONDS": "soon"})
    assert result.returncode == 1
    assert "COMFY_MULTI_LEASE_SECONDS" in result.stderr
    assert "Traceback" not in result.stderr
    result = cli(tmp_path, "status", env={"REDIS_URL": "http://nope"})
    assert result.returncode == 1
    assert "REDIS_URL" in result.stderr or "redis://" in result.stderr


@pytest.mark.slow
def test_the_second_terminal_finds_the_running_room(
    tmp_path: Path, room: tuple[Path, int, subprocess.Popen[str]]
) -> None:
    """The quick start's second terminal, opened in any directory, acts on the room
    `up` serves, and every command's first line says which room that is."""
    data, port, _ = room
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "class.csv").write_text("carol\ndave,dave-pw\n")
    added = cli(None, "user", "add", "--from-csv", "class.csv", cwd=elsewhere)
    assert added.returncode == 0, added.stderr
    first = added.stdout.splitlines()[0]
    assert first == f"room: {data} (running at http://127.0.0.1:{port}, the only one running)"
    assert not (elsewhere / "data").exists()
    me = httpx.get(f"http://127.0.0.1:{port}/api/v1/me", auth=("dave", "dave-pw"))
    assert me.status_code == 200
    for command in (["status"], ["user", "list"], ["worker-token", "create", "gpu-1"], ["report"]):
        result = cli(None, *command, cwd=elsewhere)
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines()[0].startswith(f"room: {data} (running at"), command
    assert "dave" in cli(None, "user", "list", cwd=elsewhere).stdout


@pytest.mark.slow
def test_up_serves_and_stops_cleanly(tmp_path: Path, rooms_dir: Path) -> None:
    data = tmp_path / "data"
    port = free_port()
    proc = start_up(data, port)
    try:
        health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
        assert health.json()["status"] == "ok"
        password = (data / "initial-admin-password").read_text().strip()
        assert (data / "initial-admin-password").stat().st_mode & 0o077 == 0
        me = httpx.get(f"http://127.0.0.1:{port}/api/v1/me", auth=("admin", password))
        assert me.json() == {"name": "admin", "admin": True}
        # the workshop's folder is there on first start, with a word on what goes in it
        assert "workflows" in (data / "workflows" / "README.md").read_text()
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
        out, err = stop(proc)
    assert proc.returncode == 0, err
    assert password not in out + err  # the password is in a private file, never in the log
    assert "Only this computer can open it" in out  # and how to open it to the network
    assert EmbeddedRedis(data / "redis").running_pid() is None
    assert not (data / "redis" / "redis.pid").exists()
    assert not (data / "room.json").exists()
    assert list(rooms_dir.glob("*.json")) == []

    # the room outlives `up`: its commands start its Redis for themselves, and stop it
    listed = cli(data, "user", "list")
    assert listed.returncode == 0, listed.stderr
    assert (
        listed.stdout.splitlines()[0]
        == f"room: {data} (not running; its Redis is started for this command only)"
    )
    assert "bob" in listed.stdout
    duplicate = cli(data, "user", "add", "bob")
    assert duplicate.returncode == 1
    assert "already exists" in duplicate.stderr
    assert "Traceback" not in duplicate.stderr
    token = cli(data, "worker-token", "create", "gpu-1")
    assert token.returncode == 0
    assert "cmw_" in token.stdout
    status = cli(data, "status")
    assert status.returncode == 0, status.stderr
    for heading in ("waiting", "running", "workers", "users", "fair"):
        assert heading in status.stdout
    assert EmbeddedRedis(data / "redis").running_pid() is None  # stopped after each command


@pytest.mark.slow
@pytest.mark.parametrize("host", [None, "127.0.0.1"])
def test_scripts_up_passes_its_arguments(tmp_path: Path, host: str | None) -> None:
    """`./scripts/up --port N` (and the operator guide's --host/--port form) as typed."""
    port = free_port()
    args = [str(ROOT / "scripts" / "up"), "--port", str(port), "--data-dir", str(tmp_path / "d")]
    if host:
        args[1:1] = ["--host", host]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until_serving(proc, port)
    finally:
        out, err = stop(proc)
    assert "InvalidRequirement" not in err
    assert f"http://127.0.0.1:{port}/" in out
