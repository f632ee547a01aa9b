"""The embedded Redis: AOF persistence across restarts, stale state after a crash."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from comfy_multi.errors import ConfigError
from comfy_multi.queue.jobs import JobQueue
from comfy_multi.queue.models import JobState
from comfy_multi.queue.views import QueueViews
from comfy_multi.queue.workers import Registration, WorkerRegistry
from comfy_multi.services.users import UserStore
from comfy_multi.settings import Settings
from comfy_multi.store.connection import connect
from comfy_multi.store.embedded import EmbeddedRedis, socket_path
from tests.conftest import TEST_HASHER

PROMPT = {"1": {"class_type": "SaveImage", "inputs": {}}}


async def test_state_survives_a_restart(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    server = EmbeddedRedis(settings.redis_dir)
    server.start()
    client = connect(server.url)
    try:
        queue = JobQueue(client, settings)
        await UserStore(client, hasher=TEST_HASHER).add("alice", "alice-pw")
        await WorkerRegistry(client, settings).register(
            Registration(worker_id="w1", object_info_digest="ab" * 8), "gpu"
        )
        done = await queue.submit("alice", PROMPT, cls=5)
        claimed = await queue.claim("w1")
        assert claimed is not None
        await queue.complete(done.id, claimed.lease_token, "w1", {"1": {"images": [1]}}, {})
        waiting = [(await queue.submit("alice", PROMPT, cls=5)).id for _ in range(3)]
    finally:
        await client.aclose()
    server.stop()
    assert not server.sock.exists()

    server = EmbeddedRedis(settings.redis_dir)
    server.start()
    client = connect(server.url)
    try:
        queue = JobQueue(client, settings)
        assert (
            await UserStore(client, hasher=TEST_HASHER).verify_password("alice", "alice-pw")
        ).name == "alice"
        assert (await queue.get(done.id)).outputs == {"1": {"images": [1]}}
        assert await QueueViews(queue).dispatch_order() == waiting
        pending, running, finished = await QueueViews(queue).user_job_ids("alice")
        assert (pending, running, finished) == (waiting, [], [done.id])
        assert (await queue.get(waiting[0])).state == JobState.PENDING
    finally:
        await client.aclose()
        server.stop()


def test_a_crashed_servers_leftovers_are_cleaned(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "redis")
    server.start()
    pid = server.running_pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    assert server._proc is not None
    server._proc.wait(timeout=10)
    assert server.sock.exists()  # left behind by the crash
    again = EmbeddedRedis(tmp_path / "redis")
    assert again.running_pid() is None
    again.start()
    try:
        assert again.running_pid() not in (None, pid)
    finally:
        again.stop()


def test_a_live_server_is_reused_not_duplicated(tmp_path: Path) -> None:
    first = EmbeddedRedis(tmp_path / "redis")
    first.start()
    try:
        second = EmbeddedRedis(tmp_path / "redis")
        second.start(adopt=False)
        assert second.running_pid() == first.running_pid()
        second.stop()  # not its own: must leave it running
        assert first.running_pid() is not None
    finally:
        first.stop()


def test_long_data_dirs_get_a_short_socket(tmp_path: Path) -> None:
    deep = tmp_path / ("x" * 120) / "redis"
    assert len(str(socket_path(deep))) < 100


def test_a_broken_binary_fails_with_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "redis").mkdir()
    (tmp_path / "redis" / "redis.conf").write_text("")
    server = EmbeddedRedis(tmp_path / "redis")
    server.sock = Path("/nonexistent-dir/redis.sock")  # redis cannot bind here
    with pytest.raises(ConfigError, match="embedded Redis failed to start"):
        server.start()
