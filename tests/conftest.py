"""Shared fixtures: a real embedded Redis, a real gateway on loopback, users and tokens."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import uvicorn

from comfy_multi.app import create_app
from comfy_multi.gateway.server import GatewayServer
from comfy_multi.services.users import FAST_HASHING_FOR_TESTS, UserStore, password_hasher
from comfy_multi.settings import Settings
from comfy_multi.store.connection import connect
from comfy_multi.store.embedded import EmbeddedRedis
from tests import real_comfyui

STARTUP_TIMEOUT_S = 20.0
# Cheap argon2 everywhere in the suite: in-process stores, gateways, and the
# environment of every CLI, gateway or worker process a test starts.
FAST_HASHING_ENV = {"COMFY_MULTI_PASSWORD_HASHING": FAST_HASHING_FOR_TESTS}
TEST_HASHER = password_hasher(FAST_HASHING_FOR_TESTS)
os.environ.update(FAST_HASHING_ENV)
pytest_plugins = ["tests.admin.fixtures"]


@pytest.fixture(scope="session")
def embedded_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis") / "redis")
    server.start(adopt=False)
    yield server
    server.stop()


@pytest.fixture
def redis_url(embedded_redis: EmbeddedRedis) -> str:
    """The session's Redis, emptied for this test."""
    client = redis.Redis.from_url(embedded_redis.url)
    client.flushall()
    client.close()
    return embedded_redis.url


@pytest.fixture
def settings(tmp_path: Path, redis_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        redis_url=redis_url,
        lease_seconds=3.0,
        heartbeat_seconds=0.5,
        sweep_seconds=0.2,
        secret_key="test-secret",
        password_hashing=FAST_HASHING_FOR_TESTS,
    )


@pytest.fixture
async def aredis(redis_url: str) -> AsyncIterator[Any]:
    client = connect(redis_url)
    yield client
    await client.aclose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerThread:
    """A real uvicorn serving the gateway on a loopback port, in a thread."""

    def __init__(self, settings: Settings, port: int | None = None) -> None:
        self.settings = settings
        self.port = port or free_port()
        app = create_app(settings)
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_config=None,
            access_log=False,
            ws="websockets-sansio",
            timeout_graceful_shutdown=2,
        )
        self.server = GatewayServer(config, app)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the gateway did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.handle_exit(signal.SIGTERM, None)
        self.thread.join(timeout=10)


@dataclass
class Gateway:
    url: str
    settings: Settings
    server: ServerThread

    def client(self, auth: tuple[str, str] | None = None, **kw: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, auth=auth, timeout=30, **kw)


@pytest.fixture
def gateway(settings: Settings) -> Iterator[Gateway]:
    server = ServerThread(settings).start()
    yield Gateway(server.url, settings, server)
    server.stop()


@dataclass
class Person:
    name: str
    password: str
    admin: bool

    @property
    def auth(self) -> tuple[str, str]:
        return (self.name, self.password)


@pytest.fixture
async def people(aredis: Any) -> dict[str, Person]:
    """alice, bob, carol (participants) and teacher (admin)."""
    store = UserStore(aredis, hasher=TEST_HASHER)
    out = {}
    for name, admin in (("alice", False), ("bob", False), ("carol", False), ("teacher", True)):
        pw = f"{name}-pw"
        await store.add(name, pw, admin=admin)
        out[name] = Person(name, pw, admin)
    return out


@pytest.fixture
async def worker_token(aredis: Any) -> str:
    return await UserStore(aredis, hasher=TEST_HASHER).create_worker_token("gpu-test")


async def wait_for(predicate: Any, timeout: float = 10.0, interval: float = 0.05) -> Any:  # noqa: ASYNC109
    """Poll an (async) predicate until it is truthy; its value, or TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(interval)


# --- the real ComfyUI ------------------------------------------------------------------------
# Started in the background as pytest starts (in the xdist controller, before workers
# exist, so they all share it), when the selected tests may need it: its 10-60 s of
# start-up then overlap the rest of the suite. The fixture waits for it.


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput") or os.environ.get("COMFYUI_URL"):
        return
    if not real_comfyui.may_need(config.args, config.option.markexpr or ""):
        return
    folder = real_comfyui.built_comfyui()
    if folder is None:
        return
    workdir = Path(tempfile.mkdtemp(prefix="comfy-multi-real-comfyui-"))
    running = real_comfyui.RealComfyUI(folder, workdir).launch()
    config.stash[_REAL_COMFYUI] = running
    os.environ["COMFYUI_URL"] = running.url
    os.environ[real_comfyui.LOG_ENV] = str(running.log_path)


def pytest_unconfigure(config: pytest.Config) -> None:
    running = config.stash.get(_REAL_COMFYUI, None)
    if running is not None:
        running.stop()
        shutil.rmtree(running.workdir, ignore_errors=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks follow what a test uses, so `-m "not comfyui"` and the like never
    leave in (or out) a test whose file forgot its marker."""
    browser_dir = Path(__file__).parent / "browser"
    for item in items:
        if "comfyui_url" in getattr(item, "fixturenames", ()) or item.get_closest_marker("comfyui"):
            item.add_marker(pytest.mark.comfyui)
            # the first one may wait for ComfyUI's start, on top of its own run time
            timeout = item.config.getini("timeout")
            item.add_marker(pytest.mark.timeout(float(timeout) + real_comfyui.STARTUP_TIMEOUT_S))
        if browser_dir in item.path.parents:
            item.add_marker(pytest.mark.browser)


_REAL_COMFYUI = pytest.StashKey[real_comfyui.RealComfyUI]()


@pytest.fixture(scope="session")
def comfyui_url() -> str:
    """A real ComfyUI shared by the session: $COMFYUI_URL, or the cached build started
    at the start of the run. Skips, with one line saying how to get one, when none."""
    url = os.environ.get("COMFYUI_URL", "").rstrip("/")
    if not url:
        pytest.skip(real_comfyui.NO_COMFYUI)
    real_comfyui.wait_ready(url)  # fails every later test at once when it never answered
    return url
