"""The room's feedback in the report: one summary line, each answer, and a CSV."""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from comfy_multi.queue.feedback import Given


def summary_line(answers: list[Given]) -> str:
    if not answers:
        return "Feedback: no answers (ask the room from the dashboard at the end)"
    average = sum(a.rating for a in answers) / len(answers)
    plural = "answer" if len(answers) == 1 else "answers"
    return f"Feedback: {len(answers)} {plural}, average {average:.1f} of 5"


def render_feedback(console: Console, answers: list[Given]) -> None:
    console.print(summary_line(answers))
    if not answers:
        return
    table = Table("person", "rating", "comment", title="feedback")
    for a in answers:
        table.add_row(a.user, f"{a.rating} of 5", a.comment)
    console.print(table)


def write_feedback(answers: list[Given], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "feedback.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["person", "rating", "comment", "answered_at"])
        for a in answers:
            when = datetime.fromtimestamp(a.at_ms / 1000).isoformat(timespec="seconds")
            writer.writerow([a.user, a.rating, a.comment, when])
    return path
