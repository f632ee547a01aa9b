"""`comfy-multi models ...`: a GPU host's models against the workshop manifest."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from comfy_multi.errors import ConfigError
from comfy_multi.gpuhost.manifest import Manifest, ModelFile, load_manifest
from comfy_multi.gpuhost.models import Outcome, Result, sync_models

models_app = typer.Typer(help="A GPU host's model files.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)

ManifestOpt = Annotated[
    str, typer.Option("--manifest", help="The workshop manifest (a TOML file or an https URL).")
]
ModelsDirOpt = Annotated[
    Path, typer.Option("--models-dir", help="ComfyUI's models/ folder.", file_okay=False)
]


def read_manifest(where: str) -> Manifest:
    try:
        return load_manifest(where)
    except ConfigError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None


class _Bars:
    """Rich progress bars, one per file and one for the whole set; safe to
    advance from the download threads."""

    def __init__(self, progress: Progress, models: list[ModelFile], verb: str) -> None:
        self._progress = progress
        self._lock = threading.Lock()
        total = sum(m.size or 0 for m in models) or None
        self._total = progress.add_task(f"[bold]{verb} {len(models)} files", total=total)
        self._tasks: dict[str, TaskID] = {
            m.target: progress.add_task(m.target, total=m.size) for m in models
        }

    def advance(self, model: ModelFile, n: int) -> None:
        with self._lock:
            self._progress.advance(self._tasks[model.target], n)
            self._progress.advance(self._total, n)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}", justify="left"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


def _summary(results: list[Result]) -> Table:
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("file", overflow="fold")
    table.add_column("state")
    table.add_column("detail", overflow="fold")
    for r in results:
        colour = "yellow" if r.outcome == Outcome.UNVERIFIED else "green" if r.ok else "red"
        table.add_row(r.model.target, f"[{colour}]{r.outcome.value}[/]", r.detail)
    return table


@models_app.command("sync")
def sync_command(
    manifest: ManifestOpt,
    models_dir: ModelsDirOpt,
    check: Annotated[
        bool, typer.Option("--check", help="Only verify what is there; download nothing.")
    ] = False,
    parallel: Annotated[int, typer.Option("--parallel", min=1, max=16)] = 3,
) -> None:
    """Download what is missing or wrong (resumed, verified by sha-256), or --check."""
    spec = read_manifest(manifest)
    if not spec.models:
        console.print("The manifest names no models.")
        return
    verb = "checking" if check else "syncing"
    console.print(
        f"{verb.capitalize()} {len(spec.models)} model files "
        f"({spec.total_bytes / 1e9:.1f} GB) into {models_dir}"
    )
    with _progress() as progress:
        bars = _Bars(progress, spec.models, verb)
        results = sync_models(
            spec.models, models_dir, check_only=check, parallel=parallel, progress=bars.advance
        )
    console.print(_summary(results))
    bad = [r for r in results if not r.ok]
    if bad:
        names = ", ".join(r.model.target for r in bad)
        err.print(f"[bold red]{len(bad)} of {len(results)} files are not right:[/] {names}")
        raise typer.Exit(1)
    console.print(f"[green]All {len(results)} model files are in place and verified.[/]")


gpu_host_app = typer.Typer(
    help="A GPU host: the workshop's ComfyUI, custom nodes and models, and its workers.",
    no_args_is_help=True,
)
HostDirOpt = Annotated[
    Path,
    typer.Option(
        "--dir", help="The GPU host's folder (ComfyUI, venv, units, logs).", file_okay=False
    ),
]
DEFAULT_HOST_DIR = Path("comfy-gpu-host")


@gpu_host_app.command("setup")
def setup_command(
    manifest: ManifestOpt,
    folder: HostDirOpt = DEFAULT_HOST_DIR,
    comfyui_source: Annotated[
        Path | None,
        typer.Option(
            "--comfyui-source",
            help="A local ComfyUI source archive (.tar.gz) or "
            "folder, instead of a git checkout of the manifest's version.",
        ),
    ] = None,
    venv: Annotated[
        Path | None,
        typer.Option(
            "--venv",
            help="Use this existing virtualenv for ComfyUI (default: DIR/venv, made here).",
        ),
    ] = None,
    gpus: Annotated[
        int | None,
        typer.Option("--gpus", min=1, max=64, help="GPUs to serve (default: nvidia-smi's count)."),
    ] = None,
    models_dir: Annotated[
        Path | None,
        typer.Option(
            "--models-dir",
            file_okay=False,
            help="Keep models here (a volume) and link ComfyUI's models/ to it.",
        ),
    ] = None,
    skip_models: Annotated[
        bool, typer.Option("--skip-models", help="Install everything but the models.")
    ] = False,
    parallel: Annotated[int, typer.Option("--parallel", min=1, max=16)] = 3,
) -> None:
    """Install the manifest's ComfyUI, custom nodes and models; write service units."""
    from comfy_multi.gpuhost.setup import setup_host

    spec = read_manifest(manifest)
    say = console.print
    try:
        layout = setup_host(
            spec,
            folder.resolve(),
            comfyui_source=comfyui_source,
            venv=venv,
            gpus=gpus,
            say=say,
            models_dir=models_dir,
        )
    except ConfigError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(1) from None
    if spec.models and not skip_models:
        with _progress() as progress:
            bars = _Bars(progress, spec.models, "syncing")
            results = sync_models(
                spec.models, layout.models_dir, parallel=parallel, progress=bars.advance
            )
        console.print(_summary(results))
        bad = [r for r in results if not r.ok]
        if bad:
            err.print(f"[bold red]{len(bad)} model files are not right;[/] run setup again")
            raise typer.Exit(1)
    console.print(
        f"[green]Ready:[/] ComfyUI in {layout.comfyui_dir}, {layout.gpus} GPU(s), "
        f"units in {folder / 'systemd'}.\n"
        f"Start now:  comfy-multi gpu-host up --dir {folder} --gateway URL --token TOKEN\n"
        f"Or install the units: put the gateway URL and token in {folder / 'worker.env'}, then\n"
        f"  cp {folder / 'systemd'}/*.service /etc/systemd/system/ && systemctl daemon-reload\n"
        f"  systemctl enable --now 'comfy-multi-*-gpu*.service'"
    )


@gpu_host_app.command("up")
def up_command(
    gateway: Annotated[
        str, typer.Option("--gateway", envvar="COMFY_MULTI_GATEWAY_URL", help="Gateway URL.")
    ],
    token: Annotated[
        str,
        typer.Option(
            "--token",
            envvar="COMFY_MULTI_WORKER_TOKEN",
            help="Worker token (prefer the environment variable).",
        ),
    ],
    folder: HostDirOpt = DEFAULT_HOST_DIR,
    comfyui_arg: Annotated[
        list[str] | None,
        typer.Option("--comfyui-arg", help="Extra argument for ComfyUI (repeat), e.g. --cpu."),
    ] = None,
) -> None:
    """Start ComfyUI and a worker per GPU and keep them running (no systemd needed)."""
    from comfy_multi import logs
    from comfy_multi.gpuhost.setup import Layout
    from comfy_multi.gpuhost.supervise import Supervisor, plan

    if not gateway.startswith(("http://", "https://")):
        err.print(f"[bold red]error:[/] --gateway must be an http(s) URL, got {gateway!r}")
        raise typer.Exit(2)
    try:
        layout = Layout.load(folder.resolve())
    except ConfigError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None
    logs.configure("info")
    children = plan(
        layout,
        gateway=gateway.rstrip("/"),
        token=token,
        comfyui_args=comfyui_arg or [],
        logs_dir=folder.resolve() / "logs",
    )
    console.print(
        f"Starting {layout.gpus} ComfyUI + worker pair(s); ComfyUI logs in {folder / 'logs'}"
    )
    raise typer.Exit(Supervisor(children).run())
