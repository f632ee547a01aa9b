"""A real ComfyUI (scripts/comfyui's CPU build) for the media tests, with the
custom nodes of tests/comfyui_custom_nodes loaded and private folders.

Started once per test module; skipped with a reason when no build exists.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.comfy.procs import CUSTOM_NODES, ROOT

START_TIMEOUT_S = 180.0  # first start compiles .pyc files; the machine may be busy


@dataclass
class RealComfyUI:
    url: str
    base: Path  # holds input/, output/, temp/, custom_nodes/
    log: Path


def comfyui_folder() -> Path | None:
    found = subprocess.run(
        [str(ROOT / "scripts" / "comfyui"), "--check"], capture_output=True, text=True, check=False
    )
    return Path(found.stdout.strip()) if found.returncode == 0 and found.stdout.strip() else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def real_comfyui(base: Path) -> Iterator[RealComfyUI]:
    folder = comfyui_folder()
    if folder is None:
        pytest.skip("no real ComfyUI built: run scripts/comfyui once")
    for sub in ("input", "output", "temp", "custom_nodes", "user"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    for package in CUSTOM_NODES.iterdir():
        if (package / "__init__.py").is_file():
            (base / "custom_nodes" / package.name).symlink_to(package)
    port = free_port()
    log = base / "comfyui.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                str(folder.parent / "venv" / "bin" / "python"),
                "main.py",
                "--cpu",
                "--listen",
                "127.0.0.1",
                "--port",
                str(port),
                "--disable-auto-launch",
                "--base-directory",
                str(base),
            ],
            cwd=folder,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"ComfyUI exited:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/system_stats", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"ComfyUI did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield RealComfyUI(url, base, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
