"""A real ComfyUI for the test session, built once per machine by scripts/comfyui.

`COMFYUI_URL` points the tests at a ComfyUI already running; otherwise the session
starts the cached build on a free loopback port, with its input, output, temp and
user folders (and an in-memory database) in the session's temp folder, so runs never
see each other's files. Every subfolder of tests/comfyui_custom_nodes/ is loaded as a
custom node, the place for small test nodes (and their web extensions).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
CUSTOM_NODES = Path(__file__).resolve().parent / "comfyui_custom_nodes"
STARTUP_TIMEOUT_S = 240.0  # a cold start imports torch: 10-60 s, more on a busy machine
STOP_TIMEOUT_S = 15.0
LOG_ENV = "REAL_COMFYUI_LOG"  # the log of the ComfyUI this run started, for errors
NO_COMFYUI = (
    "no real ComfyUI: set COMFYUI_SRC to a ComfyUI source archive (.tar.gz) or folder "
    "and run ./scripts/test (or set COMFYUI_URL to a running one)"
)


def built_comfyui() -> Path | None:
    """The folder holding main.py: $COMFY_MULTI_COMFYUI_DIR, or the cached build."""
    given = os.environ.get("COMFY_MULTI_COMFYUI_DIR")
    if given:
        return Path(given)
    check = subprocess.run(
        ["bash", str(ROOT / "scripts" / "comfyui"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    if check.returncode != 0 or not check.stdout.strip():
        return None
    return Path(check.stdout.strip().splitlines()[-1])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RealComfyUI:
    """One ComfyUI process on loopback: `launch`, then `stop`."""

    def __init__(self, folder: Path, workdir: Path) -> None:
        self.folder = folder
        self.python = folder.parent / "venv" / "bin" / "python"
        self.workdir = workdir
        self.port = _free_port()
        self.log_path = workdir / "comfyui.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _base_directory(self) -> Path:
        """A private base folder: our folders, and links to the test custom nodes."""
        base = self.workdir / "base"
        for sub in ("input", "output", "temp", "user", "models", "custom_nodes"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        # a fresh ComfyUI makes input/3d on its first /object_info; made up front,
        # the first answers agree with every later one
        (base / "input" / "3d").mkdir(exist_ok=True)
        # ComfyUI's own custom nodes (SaveImageWebsocket), then the tests' ones
        for own in sorted((self.folder / "custom_nodes").iterdir()):
            if own.suffix == ".py" or (own.is_dir() and not own.name.startswith((".", "_"))):
                (base / "custom_nodes" / own.name).symlink_to(own)
        if CUSTOM_NODES.is_dir():
            for node in sorted(CUSTOM_NODES.iterdir()):
                if node.is_dir() and not node.name.startswith((".", "_")):
                    (base / "custom_nodes" / node.name).symlink_to(node)
        return base

    def launch(self) -> RealComfyUI:
        """Start the process; `wait_ready` tells when it answers."""
        base = self._base_directory()
        args = [
            str(self.python),
            "main.py",
            "--cpu",
            "--listen",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--disable-auto-launch",
            "--base-directory",
            str(base),
            "--input-directory",
            str(base / "input"),
            "--output-directory",
            str(base / "output"),
            "--temp-directory",
            str(base / "temp"),
            "--user-directory",
            str(base / "user"),
            "--database-url",
            "sqlite:///:memory:",
        ]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                args, cwd=self.folder, stdout=log, stderr=subprocess.STDOUT, env=_env()
            )
        return self

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT_S)


_never_answered: set[str] = set()


def wait_ready(url: str, timeout: float = STARTUP_TIMEOUT_S) -> None:
    """Until GET /system_stats answers; the log's tail in the error when it never does."""
    if url in _never_answered:
        raise RuntimeError(f"the real ComfyUI at {url} did not answer (see the first error)")
    _never_answered.add(url)  # until it answers: a timeout mid-wait counts as no answer
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/system_stats", timeout=2).status_code == 200:
                _never_answered.discard(url)
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    log = Path(os.environ.get(LOG_ENV, "/nonexistent"))
    tail = log.read_text(errors="replace")[-4000:] if log.is_file() else ""
    raise RuntimeError(f"the real ComfyUI at {url} did not answer in {timeout:.0f} s\n{tail}")


def may_need(args: list[str], markexpr: str) -> bool:
    """Whether the selected tests can reach for `comfyui_url`: not when the marker
    expression leaves comfyui tests out, nor when no file named uses the fixture."""
    if "not comfyui" in markexpr:
        return False
    users = [p for p in Path(__file__).parent.rglob("test_*.py") if "comfyui_url" in p.read_text()]
    paths = [Path(a.split("::", 1)[0]).resolve() for a in args] or [Path.cwd() / "tests"]
    return any(u == p or p in u.parents for u in users for p in paths)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMFY_MULTI_", "VIRTUAL_ENV"))}
    env["PYTHONUNBUFFERED"] = "1"
    return env
