"""A real room for chaos tests: `comfy-multi up` as a subprocess, the ComfyUI
stand-in and a worker, and a steady stream of Runs from several people."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.comfy.procs import ROOT, clean_env
from tests.conftest import free_port
from tests.worker.prompts import empty_saved

START_TIMEOUT_S = 60.0


@dataclass
class UpProcess:
    proc: subprocess.Popen[bytes]
    url: str
    data: Path
    log: Path

    @property
    def admin(self) -> tuple[str, str]:
        return ("admin", (self.data / "initial-admin-password").read_text().strip())

    def redis_pid(self) -> int:
        return int((self.data / "redis" / "redis.pid").read_text().strip())

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-5000:]


def start_up(
    data: Path, *extra: str, port: int = 0, env: dict[str, str] | None = None
) -> UpProcess:
    """`port`: 0 for a free one; a given one to restart a room where its workers look."""
    port = port or free_port()
    log = data.parent / f"up-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "comfy_multi",
                "up",
                "--data-dir",
                str(data),
                "--port",
                str(port),
                *extra,
            ],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=clean_env(**(env or {})),
        )
    up = UpProcess(proc, f"http://127.0.0.1:{port}", data, log)
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            if httpx.get(f"{up.url}/health", timeout=2).status_code in (200, 503):
                return up
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"up did not start:\n{up.output()}")
        time.sleep(0.1)


def cli(data: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "comfy_multi", *args, "--data-dir", str(data)],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(COLUMNS="200"),
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def worker_token(data: Path, name: str) -> str:
    return next(
        w for w in cli(data, "worker-token", "create", name).split() if w.startswith("cmw_")
    )


@dataclass
class Load:
    """People pressing Run in a loop; every acknowledged job is remembered
    with the moment it was acknowledged."""

    url: str
    people: list[tuple[str, str]]
    every_s: float = 0.05
    acked: list[tuple[float, str, str]] = field(default_factory=list)  # (time, user, job id)
    refused: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        n = 0
        with httpx.Client(base_url=self.url, timeout=5) as http:
            while not self._stop.is_set():
                name, password = self.people[n % len(self.people)]
                n += 1
                try:
                    answer = http.post(
                        f"/u/{name}/api/prompt",
                        json={"prompt": empty_saved(color=n % 0xFFFFFF, size=8, prefix="chaos")},
                        auth=(name, password),
                    )
                except httpx.HTTPError:
                    self.refused += 1
                else:
                    if answer.status_code == 200:
                        self.acked.append((time.monotonic(), name, answer.json()["prompt_id"]))
                    else:
                        self.refused += 1
                self._stop.wait(self.every_s)


def env_for_tests() -> dict[str, str]:
    return {
        "COMFY_MULTI_LEASE_SECONDS": "3",
        "COMFY_MULTI_HEARTBEAT_SECONDS": "0.5",
        "COMFY_MULTI_SWEEP_SECONDS": "0.2",
        "COMFY_MULTI_DEFAULT_USER_CAP": "0",
    }


def kill(pid: int, sig: signal.Signals = signal.SIGKILL) -> None:
    os.kill(pid, sig)


def wait_until(predicate, timeout: float, interval: float = 0.1):  # type: ignore[no-untyped-def]
    """Poll a (sync) predicate until it is truthy; its value, or TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(interval)


def assert_each_run_done_once(
    url: str,
    admin: tuple[str, str],
    people: list[tuple[str, str]],
    runs: dict[str, str],
    within: float = 120,
) -> None:
    """Every acknowledged Run (job id -> owner) finishes, delivers exactly one
    output, and stands in its owner's history."""

    def job(job_id: str) -> dict[str, Any]:
        answer = httpx.get(f"{url}/api/v1/jobs/{job_id}", auth=admin, timeout=10)
        assert answer.status_code == 200, f"acknowledged job {job_id} is gone: {answer.text}"
        return dict(answer.json())

    wait_until(lambda: all(job(j)["state"] == "done" for j in runs), within, 1)
    for job_id, name in runs.items():
        record = job(job_id)
        images = [i for o in record["outputs"].values() for i in o.get("images", [])]
        assert len(images) == 1, f"{job_id} delivered {len(images)} outputs"
        assert record["user"] == name
    for name, password in people:
        history = httpx.get(f"{url}/u/{name}/api/history", auth=(name, password)).json()
        mine = {j for j, who in runs.items() if who == name}
        assert mine <= set(history), f"{name}'s history lost jobs"
