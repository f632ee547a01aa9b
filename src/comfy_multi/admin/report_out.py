"""Where the report goes: tables in the terminal, and a directory the instructor
names with the figures (CSV, JSON) and a zip of each person's outputs."""

from __future__ import annotations

import csv
import json
import logging
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from comfy_multi.admin.report import Figures, Report, run_seconds, wait_seconds
from comfy_multi.queue.models import Job

logger = logging.getLogger(__name__)

PARTIAL_SUFFIX = ".part"  # uploads still being written


@dataclass
class Archive:
    user: str
    path: Path
    files: int
    bytes: int


def _s(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.1f}s"
    return f"{seconds / 60:.1f}m"


def _pct(share: float | None) -> str:
    return "-" if share is None else f"{share * 100:.0f}%"


def _when(ms: int | None) -> str:
    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M") if ms else "-"


def _figures_row(f: Figures) -> list[str]:
    return [
        f.name,
        str(f.jobs),
        str(f.done),
        str(f.failed),
        str(f.cancelled),
        _s(f.wait_mean),
        _s(f.wait_median),
        _s(f.wait_max),
        _s(f.run_mean),
        _s(f.gpu_seconds),
        _pct(f.gpu_share),
    ]


def render(console: Console, report: Report) -> None:
    if not report.total.jobs:
        console.print("No jobs on record for this period.")
        return
    period = f"from {_when(report.start_ms)} to {_when(report.end_ms)}"
    console.print(
        f"[bold]{report.total.jobs}[/] jobs {period}; "
        f"{len(report.gpus)} GPU(s) busy {_pct(report.busy_share)} of that time"
    )
    people = Table(
        "person", "jobs", "done", "failed", "cancelled", "wait avg", "wait median", "wait max",
        "run avg", "GPU time", "GPU share", title="per person",
    )  # fmt: skip
    for f in report.people:
        people.add_row(*_figures_row(f))
    people.add_row(*_figures_row(report.total), style="bold")
    console.print(people)
    gpus = Table("worker", "jobs", "failed", "busy", "busy share", title="per GPU worker")
    for g in report.gpus:
        gpus.add_row(
            g.worker_id, str(g.jobs), str(g.failed), _s(g.busy_seconds), _pct(g.busy_share)
        )
    console.print(gpus)
    if report.errors:
        errors = Table("failures", "reason", title="most common failures")
        for reason, n in report.errors:
            errors.add_row(str(n), reason)
        console.print(errors)


def write_figures(report: Report, jobs: list[Job], out: Path) -> list[Path]:
    """people.csv, jobs.csv and report.json in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    rows = [f.as_row() for f in [*report.people, report.total]]
    people = out / "people.csv"
    with people.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["name"])
        writer.writeheader()
        writer.writerows(rows)
    per_job = out / "jobs.csv"
    with per_job.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(
            ["job", "user", "state", "class", "queued", "wait_s", "run_s", "attempts", "worker"]
        )
        for j in jobs:
            wait, run = wait_seconds(j), run_seconds(j)
            w.writerow([
                j.id, j.user, j.state.value, j.cls, _when(j.queued_ms),
                "" if wait is None else f"{wait:.2f}", "" if run is None else f"{run:.2f}",
                j.attempts, j.worker or "",
            ])  # fmt: skip
    summary = out / "report.json"
    summary.write_text(
        json.dumps(
            {
                "start_ms": report.start_ms,
                "end_ms": report.end_ms,
                "gpu_busy_share": report.busy_share,
                "people": rows,
                "gpus": [g.__dict__ for g in report.gpus],
                "failures": [{"reason": r, "count": n} for r, n in report.errors],
            },
            indent=2,
        )
    )
    return [people, per_job, summary]


def zip_outputs(users_dir: Path, out: Path, since_ms: int | None = None) -> list[Archive]:
    """`<out>/<user>.zip` of each person's output folder (files changed since
    `since_ms` when given). People with nothing to take home get no zip."""
    out.mkdir(parents=True, exist_ok=True)
    archives = []
    folders = sorted(users_dir.glob("*/output")) if users_dir.is_dir() else []
    for folder in folders:
        user = folder.parent.name
        files = [
            p
            for p in sorted(folder.rglob("*"))
            if p.is_file()
            and not p.name.endswith(PARTIAL_SUFFIX)
            and (since_ms is None or p.stat().st_mtime * 1000 >= since_ms)
        ]
        if not files:
            continue
        target = out / f"{user}.zip"
        partial = target.with_name(target.name + PARTIAL_SUFFIX)
        size = 0
        # images and videos are compressed already: store them as they are
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_STORED) as zf:
            for p in files:
                zf.write(p, arcname=f"{user}/{p.relative_to(folder)}")
                size += p.stat().st_size
        partial.replace(target)
        logger.info("outputs of %s: %s files in %s", user, len(files), target)
        archives.append(Archive(user, target, len(files), size))
    return archives
