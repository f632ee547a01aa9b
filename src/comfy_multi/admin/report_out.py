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

from comfy_multi.admin.report import Figures, Report, run_seconds, wait_seconds
from comfy_multi.queue.models import Job
from comfy_multi.wording import plural

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


def _hours(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


def plain_table(title: str, headers: list[str], rows: list[list[str]]) -> list[str]:
    """A table as plain lines: every column as wide as its widest cell, so no
    name is ever cut, in a terminal of any width or piped to a file. The first
    column is left-aligned, figures right-aligned."""
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    return [title, line(headers), *(line(r) for r in rows)]


def _counts_row(f: Figures) -> list[str]:
    return [f.name, str(f.jobs), str(f.done), str(f.failed), str(f.cancelled), str(f.unfinished)]


def _times_row(f: Figures) -> list[str]:
    return [
        f.name,
        _s(f.wait_mean),
        _s(f.wait_median),
        _s(f.wait_max),
        _s(f.run_mean),
        _s(f.gpu_seconds),
        _pct(f.gpu_share),
    ]


def report_lines(report: Report) -> list[str]:
    """The report as a person reads it: short lines, narrow tables (80 columns)."""
    if not report.total.jobs:
        return ["No jobs on record for this period."]
    window = f" ({_hours(report.window_seconds)})" if report.window_seconds else ""
    gpus = plural(len(report.gpus), "GPU")
    lines = [
        f"{plural(report.total.jobs, 'job')} from {_when(report.start_ms)} "
        f"to {_when(report.end_ms)}{window}.",
        f"Room up for {_hours(report.uptime_seconds)}; at most "
        f"{plural(report.peak_people, 'person', 'people')} at once; "
        f"{gpus} busy {_pct(report.busy_share)} of the time.",
        "",
    ]
    everyone = [*report.people, report.total]
    lines += plain_table(
        "Jobs per person",
        ["person", "jobs", "done", "failed", "cancelled", "open"],
        [_counts_row(f) for f in everyone],
    )
    lines.append("")
    lines += plain_table(
        "Times per person",
        ["person", "wait avg", "median", "max", "run avg", "GPU time", "share"],
        [_times_row(f) for f in everyone],
    )
    lines.append("")
    lines += plain_table(
        "GPUs (the dashboard's counts; a job lost with its worker is a failure)",
        ["GPU", "done", "failed", "busy", "share", "restarts"],
        [
            [
                g.worker_id,
                str(g.jobs),
                str(g.failed),
                _s(g.busy_seconds),
                _pct(g.busy_share),
                str(g.processes - 1),
            ]
            for g in report.gpus
        ],
    )
    if report.errors:
        lines.append("")
        lines += plain_table(
            "Most common failures",
            ["jobs", "reason"],
            [[str(n), reason] for reason, n in report.errors],
        )
    return lines


def render(console: Console, report: Report) -> None:
    for line in report_lines(report):
        console.print(line, markup=False, highlight=False, soft_wrap=True)


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
                "peak_people": report.peak_people,
                "uptime_s": report.uptime_seconds,
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
