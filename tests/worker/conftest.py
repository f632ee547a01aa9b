"""Real processes on loopback: the ComfyUI stand-in, workers, and helpers to drive a room.

The gateway and its Redis come from tests/conftest.py (``gateway``, ``people``,
``worker_token``); the stand-in and each worker run as their own processes so a
test can SIGKILL or SIGTERM them.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.comfy.procs import clean_env
from tests.conftest import Gateway, Person, wait_for

ROOT = Path(__file__).resolve().parents[2]
STANDIN_START_S = 30.0
WORKER_READY_S = 20.0
FINAL = ("done", "failed", "cancelled")


# --- the ComfyUI stand-in ------------------------------------------------------


@dataclass
class StandIn:
    url: str
    port: int
    data_dir: Path
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def input_dir(self) -> Path:
        return self.data_dir / "input"

    @property
    def output_dir(self) -> Path:
        return self.data_dir / "output"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def alive(self) -> bool:
        return self.proc.poll() is None


def _start_standin(data_dir: Path, port: int, log: Path) -> StandIn:
    data_dir.mkdir(parents=True, exist_ok=True)
    ready_file = log.with_suffix(".stdout")
    with ready_file.open("wb") as out, log.open("ab") as err:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.comfyui_standin",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--data-dir",
                str(data_dir),
            ],
            cwd=ROOT,
            stdout=out,
            stderr=err,
            env=clean_env(),
        )
    deadline = time.monotonic() + STANDIN_START_S
    while True:
        for line in ready_file.read_text(errors="replace").splitlines():
            if line.startswith("STANDIN_READY "):
                url = line.split(" ", 1)[1].strip()
                return StandIn(url, int(url.rsplit(":", 1)[1]), data_dir, proc, log)
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"the ComfyUI stand-in did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)


@dataclass
class StandIns:
    tmp: Path
    started: list[StandIn] = field(default_factory=list)

    def start(self, *, name: str = "comfyui", port: int = 0) -> StandIn:
        standin = _start_standin(self.tmp / name, port, self.tmp / f"{name}.log")
        self.started.append(standin)
        return standin

    def restart(self, old: StandIn) -> StandIn:
        """Start again on the same port and data folder (ComfyUI coming back)."""
        old.kill()
        standin = _start_standin(old.data_dir, old.port, old.log)
        self.started.append(standin)
        return standin


@pytest.fixture
def standins(tmp_path: Path) -> Iterator[StandIns]:
    group = StandIns(tmp_path)
    yield group
    for standin in group.started:
        standin.kill()


@pytest.fixture
def standin(standins: StandIns) -> StandIn:
    return standins.start()


# --- workers ----------------------------------------------------------------------


@dataclass
class WorkerProc:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def exited(self, within: float = 20.0) -> int:
        await wait_for(lambda: self.proc.poll() is not None, timeout=within)
        return int(self.proc.returncode)


@dataclass
class Workers:
    tmp: Path
    gateway: Gateway
    token: str
    started: list[WorkerProc] = field(default_factory=list)

    def start(
        self,
        comfyui_url: str,
        *,
        name: str | None = None,
        args: tuple[str, ...] = (),
        named: bool = True,
    ) -> WorkerProc:
        """A worker process; `named=False` leaves out --name, as an instructor might."""
        name = name or f"gpu-{len(self.started) + 1}"
        log = self.tmp / f"worker-{name}.log"
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "comfy_multi.worker",
                    "--gateway",
                    self.gateway.url,
                    "--comfyui",
                    comfyui_url,
                    *(["--name", name] if named else []),
                    *args,
                ],
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=clean_env(COMFY_MULTI_WORKER_TOKEN=self.token, COMFY_MULTI_LOG_LEVEL="debug"),
            )
        worker = WorkerProc(name, proc, log)
        self.started.append(worker)
        return worker

    def logs(self) -> str:
        return "\n".join(f"--- {w.name} ---\n{w.output()[-4000:]}" for w in self.started)


@pytest.fixture
def workers(tmp_path: Path, gateway: Gateway, worker_token: str) -> Iterator[Workers]:
    group = Workers(tmp_path, gateway, worker_token)
    yield group
    for worker in group.started:
        with contextlib.suppress(ProcessLookupError):
            worker.proc.send_signal(signal.SIGKILL)
        worker.proc.wait(timeout=10)


# --- driving the room ------------------------------------------------------------


@dataclass
class Room:
    """The gateway as participants and the instructor see it."""

    gateway: Gateway
    people: dict[str, Person]
    http: httpx.AsyncClient

    def auth(self, user: str) -> tuple[str, str]:
        return self.people[user].auth

    def user_dir(self, user: str, kind: str) -> Path:
        path = self.gateway.settings.users_dir / user / kind
        path.mkdir(parents=True, exist_ok=True)
        return path

    async def submit(self, prompt: dict[str, Any], *, user: str = "alice", **extra: Any) -> str:
        response = await self.http.post(
            "/api/v1/jobs", json={"prompt": prompt, **extra}, auth=self.auth(user)
        )
        assert response.status_code == 201, response.text
        body = response.json()
        job_id = body.get("id") or body.get("job_id") or body.get("prompt_id")
        assert isinstance(job_id, str), body
        return job_id

    async def job(self, job_id: str) -> dict[str, Any]:
        response = await self.http.get(f"/api/v1/jobs/{job_id}", auth=self.auth("teacher"))
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        return job

    async def wait_state(
        self, job_id: str, states: tuple[str, ...] = FINAL, within: float = 30.0
    ) -> dict[str, Any]:
        async def reached() -> dict[str, Any] | None:
            job = await self.job(job_id)
            return job if job["state"] in states else None

        result: dict[str, Any] = await wait_for(reached, timeout=within, interval=0.05)
        return result

    async def cancel(self, job_id: str, *, user: str = "alice") -> None:
        response = await self.http.post(f"/api/v1/jobs/{job_id}/cancel", auth=self.auth(user))
        assert response.status_code == 200, response.text

    async def workers(self) -> list[dict[str, Any]]:
        response = await self.http.get("/api/v1/workers", auth=self.auth("teacher"))
        assert response.status_code == 200, response.text
        listed: list[dict[str, Any]] = response.json()
        return listed

    async def wait_workers(self, count: int, within: float = WORKER_READY_S) -> None:
        async def enough() -> bool:
            return sum(1 for w in await self.workers() if w["online"]) >= count

        async def nodes_published() -> bool:
            # a worker shows online before its node definitions are stored; a Run
            # submitted in between is refused with "no GPU worker yet"
            answer = await self.http.get("/u/alice/api/object_info", auth=self.auth("alice"))
            return answer.status_code == 200 and bool(answer.json())

        await wait_for(enough, timeout=within, interval=0.1)
        await wait_for(nodes_published, timeout=within, interval=0.1)


@pytest.fixture
async def room(gateway: Gateway, people: dict[str, Person]) -> AsyncIterator[Room]:
    async with gateway.client() as http:
        yield Room(gateway, people, http)


@pytest.fixture
def dump_logs(
    request: pytest.FixtureRequest, workers: Workers, standins: StandIns
) -> Iterator[Callable[[], str]]:
    """Prints worker and stand-in logs when a test fails."""

    def collect() -> str:
        parts = [workers.logs()]
        parts += [f"--- {s.log.name} ---\n{s.log.read_text()[-3000:]}" for s in standins.started]
        return "\n".join(parts)

    yield collect
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(collect())


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


# --- a participant's ComfyUI websocket ------------------------------------------------


@dataclass
class UserSocket:
    connection: Any
    sid: str

    async def run_of(self, job_id: str, within: float = 30.0) -> tuple[list[dict[str, Any]], int]:
        """Text events of one job up to its final ``executing {node: null}``, and the
        number of binary preview frames seen meanwhile."""
        events: list[dict[str, Any]] = []
        previews = 0
        async with asyncio.timeout(within):
            while True:
                frame = await self.connection.recv()
                if isinstance(frame, bytes):
                    previews += 1
                    continue
                message = json.loads(frame)
                data = message.get("data") or {}
                if data.get("prompt_id") != job_id:
                    continue
                events.append(message)
                if message["type"] == "executing" and data.get("node") is None:
                    return events, previews


@contextlib.asynccontextmanager
async def user_socket(room: Room, user: str) -> AsyncIterator[UserSocket]:
    name, password = room.auth(user)
    basic = base64.b64encode(f"{name}:{password}".encode()).decode()
    url = room.gateway.url.replace("http://", "ws://") + f"/u/{user}/ws"
    async with connect(url, additional_headers={"Authorization": f"Basic {basic}"}) as ws:
        greeting = json.loads(await ws.recv())
        await ws.send(
            json.dumps({"type": "feature_flags", "data": {"supports_preview_metadata": True}})
        )
        yield UserSocket(ws, greeting["data"]["sid"])
