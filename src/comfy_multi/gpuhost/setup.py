"""`comfy-multi gpu-host setup`: one folder with the manifest's ComfyUI, custom
nodes, models and service units. Every step checks what is already there, so
running it again does only what is missing."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from comfy_multi.errors import ConfigError
from comfy_multi.gpuhost.manifest import CustomNode, Manifest

logger = logging.getLogger(__name__)

LAYOUT_FILE = "gpu-host.json"
FIRST_COMFYUI_PORT = 8188
GIT_TIMEOUT_S = 600.0
PIP_TIMEOUT_S = 3600.0
MAX_NODE_ARCHIVE_BYTES = 2_000_000_000  # unpacked; the largest real node packs are far smaller

Say = Callable[[str], None]


@dataclass
class Layout:
    """What `setup` made, read back by `up`."""

    comfyui_dir: str
    python: str
    gpus: int
    first_port: int = FIRST_COMFYUI_PORT

    @property
    def models_dir(self) -> Path:
        return Path(self.comfyui_dir) / "models"

    def ports(self) -> list[int]:
        return [self.first_port + i for i in range(self.gpus)]

    def save(self, folder: Path) -> None:
        (folder / LAYOUT_FILE).write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, folder: Path) -> Layout:
        path = folder / LAYOUT_FILE
        try:
            return cls(**json.loads(path.read_text()))
        except FileNotFoundError:
            raise ConfigError(
                f"{folder} is not set up: run `comfy-multi gpu-host setup --manifest FILE "
                f"--dir {folder}` first"
            ) from None
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{path} is damaged ({exc}); run setup again") from None


def _run(cmd: list[str], what: str, cwd: Path | None = None, timeout: float = GIT_TIMEOUT_S) -> str:
    try:
        done = subprocess.run(
            cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError:
        raise ConfigError(f"{what}: `{cmd[0]}` is not installed") from None
    except subprocess.TimeoutExpired:
        raise ConfigError(f"{what}: gave up after {timeout:.0f} s") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise ConfigError(f"{what} failed: {' | '.join(tail) or f'exit {done.returncode}'}")
    return done.stdout.strip()


def _git_head(repo: Path) -> str | None:
    if not (repo / ".git").exists():
        return None
    try:
        return _run(["git", "rev-parse", "HEAD"], "git rev-parse", cwd=repo)
    except ConfigError:
        return None


def _git_checkout(url: str, rev: str, dest: Path, what: str, say: Say) -> bool:
    """Clone `url` into `dest` at `rev`; False when it was there already."""
    if dest.exists() and _git_head(dest) is not None:
        wanted = (
            _run(["git", "rev-parse", f"{rev}^{{commit}}"], what, cwd=dest)
            if _has_rev(dest, rev)
            else None
        )
        if wanted and wanted == _git_head(dest):
            return False
        say(f"{what}: moving to {rev}")
        _run(["git", "fetch", "--tags", "origin"], f"{what}: git fetch", cwd=dest)
    elif dest.exists():
        raise ConfigError(f"{dest} exists and is not a git checkout; move it away first")
    else:
        say(f"{what}: cloning {url}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        _run(["git", "clone", "--quiet", url, str(dest)], f"{what}: git clone")
    _run(["git", "-c", "advice.detachedHead=false", "checkout", "--quiet", rev], what, cwd=dest)
    return True


def _has_rev(repo: Path, rev: str) -> bool:
    done = subprocess.run(
        ["git", "cat-file", "-e", f"{rev}^{{commit}}"], cwd=repo, capture_output=True, check=False
    )
    return done.returncode == 0


def _source_digest(source: Path) -> str:
    if source.is_dir():
        return "dir:" + str(source.resolve())
    digest = hashlib.sha256()
    with source.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def install_comfyui(manifest: Manifest, folder: Path, source: Path | None, say: Say) -> Path:
    """ComfyUI at the manifest's version: from a local source archive or
    folder when given, else a git checkout."""
    dest = folder / "ComfyUI"
    if source is None:
        _git_checkout(manifest.comfyui.git, manifest.comfyui.version, dest, "ComfyUI", say)
        return dest
    if not source.exists():
        raise ConfigError(f"--comfyui-source {source} does not exist")
    stamp = folder / ".comfyui-source"
    digest = _source_digest(source)
    if dest.is_dir() and stamp.is_file() and stamp.read_text() == digest:
        return dest
    say(f"ComfyUI: unpacking {source.name}")
    shutil.rmtree(dest, ignore_errors=True)
    if source.is_dir():
        shutil.copytree(source, dest, symlinks=True, ignore=shutil.ignore_patterns(".git"))
    else:
        unpack = folder / ".unpack"
        shutil.rmtree(unpack, ignore_errors=True)
        with tarfile.open(source) as archive:
            archive.extractall(unpack, filter="data")
        inner = [p for p in unpack.iterdir() if p.is_dir()]
        if len(inner) != 1 or not (inner[0] / "main.py").is_file():
            raise ConfigError(f"{source} does not hold one ComfyUI folder with main.py")
        inner[0].rename(dest)
        shutil.rmtree(unpack)
    stamp.write_text(digest)
    return dest


def install_custom_nodes(manifest: Manifest, comfyui: Path, say: Say) -> list[Path]:
    """Each custom node at its pinned commit (or registry version)."""
    folders = []
    for node in manifest.custom_nodes:
        dest = comfyui / "custom_nodes" / node.folder
        if node.git:
            _git_checkout(node.git, str(node.rev), dest, f"custom node {node.folder}", say)
        else:
            _install_from_registry(node, dest, say)
        folders.append(dest)
    return folders


def registry_url() -> str:
    """The Comfy registry's API; a mirror or a test server through the environment."""
    return os.environ.get("COMFY_MULTI_REGISTRY_URL", "https://api.comfy.org").rstrip("/")


def _install_from_registry(node: CustomNode, dest: Path, say: Say) -> None:
    import io

    import httpx

    stamp = dest / ".registry-version"
    if stamp.is_file() and stamp.read_text() == node.version:
        return
    say(f"custom node {node.folder}: {node.registry} {node.version} from the Comfy registry")
    api = f"{registry_url()}/nodes/{node.registry}/install"
    try:
        info = httpx.get(api, params={"version": node.version}, timeout=60).raise_for_status()
        archive = httpx.get(info.json()["downloadUrl"], timeout=600, follow_redirects=True)
        archive.raise_for_status()
    except (httpx.HTTPError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"custom node {node.registry} {node.version}: {exc}") from None
    # unpacked beside its place and moved in whole: a bad archive leaves the old install
    unpack = dest.with_name(f".{dest.name}.unpacking")
    shutil.rmtree(unpack, ignore_errors=True)
    try:
        with zipfile.ZipFile(io.BytesIO(archive.content)) as z:
            _check_archive(z, f"custom node {node.registry} {node.version}")
            z.extractall(unpack)
    except zipfile.BadZipFile:
        raise ConfigError(
            f"custom node {node.registry} {node.version}: the registry sent no zip archive"
        ) from None
    (unpack / stamp.name).write_text(str(node.version))
    shutil.rmtree(dest, ignore_errors=True)
    unpack.rename(dest)


def _check_archive(archive: zipfile.ZipFile, what: str) -> None:
    total = 0
    for member in archive.infolist():
        if member.filename.startswith("/") or ".." in Path(member.filename).parts:
            raise ConfigError(f"{what}: unsafe path {member.filename!r} in its archive")
        total += member.file_size
    if total > MAX_NODE_ARCHIVE_BYTES:
        raise ConfigError(
            f"{what}: unpacks to {total / 1e9:.1f} GB, over the "
            f"{MAX_NODE_ARCHIVE_BYTES / 1e9:.0f} GB a custom node may take"
        )


def ensure_venv(folder: Path, venv: Path | None, say: Say) -> Path:
    """The Python that runs ComfyUI: an existing virtualenv, or one made here."""
    target = venv or folder / "venv"
    python = target / "bin" / "python"
    if not python.exists():
        if venv is not None:
            raise ConfigError(f"--venv {venv} has no bin/python")
        say(f"making a virtualenv in {target}")
        _run([sys.executable, "-m", "venv", str(target)], "python -m venv")
    return python


def install_requirements(python: Path, files: list[Path], stamp_dir: Path, say: Say) -> None:
    """pip install each requirements file once per content (and again when it changes)."""
    for req in files:
        if not req.is_file():
            continue
        digest = hashlib.sha256(req.read_bytes()).hexdigest()[:16]
        stamp = stamp_dir / f".pip-{digest}"
        if stamp.exists():
            continue
        say(f"installing {req.parent.name}/{req.name}")
        _run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
                str(req),
            ],
            f"pip install -r {req}",
            timeout=PIP_TIMEOUT_S,
        )
        stamp.touch()


def count_gpus() -> int:
    """NVIDIA GPUs on this host (at least one service pair is written)."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return 1
    return max(1, sum(1 for line in out.splitlines() if line.startswith("GPU ")))


def _comfy_multi_command() -> str:
    beside = Path(sys.executable).parent / "comfy-multi"
    return str(beside) if beside.exists() else f"{sys.executable} -m comfy_multi"


COMFYUI_UNIT = """\
# ComfyUI on GPU {gpu}, for comfy-multi. Written by `comfy-multi gpu-host setup`.
[Unit]
Description=ComfyUI on GPU {gpu} (port {port})
After=network-online.target

[Service]
WorkingDirectory={comfyui}
Environment=CUDA_VISIBLE_DEVICES={gpu}
ExecStart={python} main.py --listen 127.0.0.1 --port {port} --disable-auto-launch
Restart=always
RestartSec=3

[Install]
WantedBy=multi-user.target
"""

WORKER_UNIT = """\
# The comfy-multi worker for the ComfyUI on GPU {gpu}. Written by `comfy-multi gpu-host setup`.
# {env_file} holds COMFY_MULTI_GATEWAY_URL and COMFY_MULTI_WORKER_TOKEN.
[Unit]
Description=comfy-multi worker for GPU {gpu}
After=network-online.target comfy-multi-comfyui-gpu{gpu}.service
Wants=network-online.target

[Service]
EnvironmentFile={env_file}
Environment=COMFY_MULTI_COMFYUI_URL=http://127.0.0.1:{port}
Environment=COMFY_MULTI_COMFYUI_INPUT_DIR={comfyui}/input
{name_line}ExecStart={command} worker
# first SIGTERM: finish the running job, then exit; systemd waits that long
KillSignal=SIGTERM
TimeoutStopSec=30min
Restart=always
RestartSec=3

[Install]
WantedBy=multi-user.target
"""

ENV_TEMPLATE = """\
# Filled in by the operator (kept 0600). The token comes from the app host:
#   comfy-multi worker-token create gpu-1
COMFY_MULTI_GATEWAY_URL=https://workshop.example.org
COMFY_MULTI_WORKER_TOKEN=
"""


def write_units(folder: Path, layout: Layout) -> list[Path]:
    """A ComfyUI + worker systemd unit pair per GPU, under `folder/systemd/`."""
    units = folder / "systemd"
    units.mkdir(exist_ok=True)
    env_file = folder / "worker.env"
    if not env_file.exists():
        env_file.touch(mode=0o600)
        env_file.write_text(ENV_TEMPLATE)
    written = []
    for gpu, port in enumerate(layout.ports()):
        values = {
            "gpu": gpu,
            "port": port,
            "comfyui": layout.comfyui_dir,
            "python": layout.python,
            "env_file": env_file,
            "command": _comfy_multi_command(),
            "name_line": f"Environment=COMFY_MULTI_WORKER_NAME=%H-gpu{gpu}\n"
            if layout.gpus > 1
            else "",
        }
        for name, text in (
            (f"comfy-multi-comfyui-gpu{gpu}.service", COMFYUI_UNIT),
            (f"comfy-multi-worker-gpu{gpu}.service", WORKER_UNIT),
        ):
            path = units / name
            path.write_text(text.format(**values))
            written.append(path)
    return written


def link_models_dir(comfyui: Path, models_dir: Path, say: Say) -> None:
    """Make ComfyUI/models the given folder (a volume, a shared disk), keeping
    ComfyUI's own placeholder files there."""
    inside = comfyui / "models"
    if inside.is_symlink() and inside.resolve() == models_dir.resolve():
        return
    models_dir.mkdir(parents=True, exist_ok=True)
    if inside.is_dir() and not inside.is_symlink():
        for entry in inside.iterdir():
            target = models_dir / entry.name
            if not target.exists():
                shutil.move(str(entry), str(target))
        shutil.rmtree(inside)
    elif inside.is_symlink():
        inside.unlink()
    inside.symlink_to(models_dir.resolve(), target_is_directory=True)
    say(f"ComfyUI's models/ is {models_dir}")


def setup_host(
    manifest: Manifest,
    folder: Path,
    *,
    comfyui_source: Path | None,
    venv: Path | None,
    gpus: int | None,
    say: Say,
    models_dir: Path | None = None,
) -> Layout:
    """Everything but the models, which the caller syncs with its progress bars."""
    folder.mkdir(parents=True, exist_ok=True)
    comfyui = install_comfyui(manifest, folder, comfyui_source, say)
    if models_dir is not None:
        link_models_dir(comfyui, models_dir, say)
    nodes = install_custom_nodes(manifest, comfyui, say)
    python = ensure_venv(folder, venv, say)
    install_requirements(
        python,
        [comfyui / "requirements.txt", *(n / "requirements.txt" for n in nodes)],
        folder,
        say,
    )
    layout = Layout(comfyui_dir=str(comfyui), python=str(python), gpus=gpus or count_gpus())
    layout.save(folder)
    write_units(folder, layout)
    return layout
