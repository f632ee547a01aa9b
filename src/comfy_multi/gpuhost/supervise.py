"""`comfy-multi gpu-host up`: ComfyUI and a worker per GPU, without systemd
(pods, containers). A child that dies is started again after a short pause;
SIGTERM lets the workers finish their jobs, then stops ComfyUI."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from comfy_multi.gpuhost.setup import Layout

logger = logging.getLogger(__name__)

RESTART_PAUSE_S = 3.0
MAX_RESTART_PAUSE_S = 60.0
HEALTHY_AFTER_S = 60.0  # a child that ran this long starts its next pause afresh
WORKER_STOP_GRACE_S = 30 * 60.0
COMFYUI_STOP_GRACE_S = 20.0
POLL_S = 0.5


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path | None = None
    log: Path | None = None
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    pause: float = RESTART_PAUSE_S
    next_start: float = 0.0
    restarts: int = field(default=0)

    def start(self) -> None:
        out = self.log.open("ab") if self.log else None
        self.proc = subprocess.Popen(
            self.argv, env=self.env, cwd=self.cwd, stdout=out, stderr=subprocess.STDOUT
        )
        if out:
            out.close()
        self.started = time.monotonic()
        logger.info("%s started (pid %s)", self.name, self.proc.pid)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def plan(
    layout: Layout,
    *,
    gateway: str,
    token: str,
    comfyui_args: list[str],
    logs_dir: Path,
) -> list[Child]:
    """ComfyUI children first, then their workers."""
    logs_dir.mkdir(parents=True, exist_ok=True)
    base = {k: v for k, v in os.environ.items() if k != "COMFY_MULTI_WORKER_TOKEN"}
    comfys, workers = [], []
    for gpu, port in enumerate(layout.ports()):
        comfys.append(
            Child(
                name=f"comfyui-gpu{gpu}",
                argv=[
                    layout.python,
                    "main.py",
                    "--listen",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--disable-auto-launch",
                    *comfyui_args,
                ],
                env={**base, "CUDA_VISIBLE_DEVICES": str(gpu)},
                cwd=Path(layout.comfyui_dir),
                log=logs_dir / f"comfyui-gpu{gpu}.log",
            )
        )
        worker_env = {
            **base,
            "COMFY_MULTI_GATEWAY_URL": gateway,
            "COMFY_MULTI_WORKER_TOKEN": token,  # in the environment, not the process list
            "COMFY_MULTI_COMFYUI_URL": f"http://127.0.0.1:{port}",
            "COMFY_MULTI_COMFYUI_INPUT_DIR": str(Path(layout.comfyui_dir) / "input"),
        }
        if layout.gpus > 1:
            worker_env.setdefault("COMFY_MULTI_WORKER_NAME", f"{os.uname().nodename}-gpu{gpu}")
        workers.append(
            Child(
                name=f"worker-gpu{gpu}",
                argv=[sys.executable, "-m", "comfy_multi", "worker"],
                env=worker_env,
            )
        )
    return comfys + workers


class Supervisor:
    def __init__(self, children: list[Child]) -> None:
        self.children = children
        self.stopping = threading.Event()

    def request_stop(self, *_: object) -> None:
        self.stopping.set()

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        for child in self.children:
            child.start()
        while not self.stopping.wait(POLL_S):
            self._restart_dead()
        self._stop()
        return 0

    def _restart_dead(self) -> None:
        now = time.monotonic()
        for child in self.children:
            if child.alive() or (child.proc is None and child.next_start > now):
                continue
            if child.proc is not None:
                code = child.proc.returncode
                ran = now - child.started
                child.pause = (
                    RESTART_PAUSE_S
                    if ran > HEALTHY_AFTER_S
                    else min(child.pause * 2, MAX_RESTART_PAUSE_S)
                )
                logger.warning(
                    "%s exited with %s after %.0f s; starting it again in %.0f s",
                    child.name,
                    code,
                    ran,
                    child.pause,
                )
                child.proc = None
                child.next_start = now + child.pause
                child.restarts += 1
                continue
            child.start()

    def _stop(self) -> None:
        workers = [c for c in self.children if c.name.startswith("worker")]
        comfys = [c for c in self.children if c not in workers]
        _terminate(workers, WORKER_STOP_GRACE_S)
        _terminate(comfys, COMFYUI_STOP_GRACE_S)


def _terminate(children: list[Child], grace_s: float) -> None:
    for child in children:
        if child.alive() and child.proc is not None:
            child.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for child in children:
        if child.proc is None:
            continue
        try:
            child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            logger.warning("%s did not stop in %.0f s; killing it", child.name, grace_s)
            child.proc.kill()
            child.proc.wait()
