"""Real processes for end-to-end runs: the ComfyUI stand-in and `comfy-multi worker`.

Shared by the participant API tests and the browser tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import FAST_HASHING_ENV, wait_for

ROOT = Path(__file__).resolve().parents[2]
NODE_DEFS = ROOT / "tests" / "comfyui_standin" / "node_defs.json"
START_TIMEOUT_S = 30.0
STANDIN = (sys.executable, "-m", "tests.comfyui_standin", "--host", "127.0.0.1", "--port", "0")
WORKER = (sys.executable, "-m", "comfy_multi", "worker")


def node_defs() -> dict[str, Any]:
    """The stand-in's object_info: the model-free nodes of a real ComfyUI."""
    defs: dict[str, Any] = json.loads(NODE_DEFS.read_text())
    return defs


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMFY_MULTI_")}
    env.pop("REDIS_URL", None)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(FAST_HASHING_ENV)
    env.update(extra)
    return env


@dataclass
class Proc:
    proc: subprocess.Popen[bytes]
    log: Path
    url: str = ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


CUSTOM_NODES = ROOT / "tests" / "comfyui_custom_nodes"


def start_standin(data_dir: Path, log: Path, *, custom_nodes: Path | None = None) -> Proc:
    """`python -m tests.comfyui_standin`, ready when it prints its URL."""
    extra = ["--custom-nodes", str(custom_nodes)] if custom_nodes else []
    data_dir.mkdir(parents=True, exist_ok=True)
    ready = log.with_suffix(".stdout")
    with ready.open("wb") as out, log.open("ab") as err:
        proc = subprocess.Popen(
            [*STANDIN, "--data-dir", str(data_dir), "--speed", "0", *extra],
            cwd=ROOT,
            stdout=out,
            stderr=err,
            env=clean_env(),
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        for line in ready.read_text(errors="replace").splitlines():
            if line.startswith("STANDIN_READY "):
                return Proc(proc, log, line.split(" ", 1)[1].strip())
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"the ComfyUI stand-in did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)


def start_worker(
    gateway_url: str, token: str, comfyui_url: str, log: Path, name: str = "gpu-1"
) -> Proc:
    """`comfy-multi worker` beside the stand-in, as an instructor starts it."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [*WORKER, "--gateway", gateway_url, "--comfyui", comfyui_url, "--name", name],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=clean_env(COMFY_MULTI_WORKER_TOKEN=token),
        )
    return Proc(proc, log)


async def wait_worker_online(http: httpx.AsyncClient, admin: tuple[str, str]) -> None:
    """Until the gateway lists an online worker (the admin's view)."""

    async def online() -> bool:
        workers = (await http.get("/api/v1/workers", auth=admin)).json()
        return any(w.get("online") for w in workers)

    await wait_for(online, timeout=START_TIMEOUT_S, interval=0.1)
