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
from comfy_multi.gpuhost.models import Result, sync_models

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
        colour = "green" if r.ok else "red"
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
