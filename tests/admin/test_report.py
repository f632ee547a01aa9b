"""The day-after report: its numbers from a known job set, and its files."""

from __future__ import annotations

import csv
import json
import zipfile
from pathlib import Path

import pytest

from comfy_multi.admin.report import run_seconds, summarize, wait_seconds
from comfy_multi.admin.report_out import write_figures, zip_outputs
from comfy_multi.queue.models import Job, JobState

T0 = 1_700_000_000_000  # ms; every time below is an offset from it


def job(
    job_id: str,
    user: str,
    state: JobState,
    queued: float,
    started: float | None = None,
    finished: float | None = None,
    worker: str | None = None,
    error: dict[str, str] | None = None,
) -> Job:
    def at(seconds: float | None) -> int | None:
        return None if seconds is None else T0 + int(seconds * 1000)

    return Job(
        id=job_id,
        user=user,
        state=state,
        cls=5,
        seq=1,
        queued_ms=T0 + int(queued * 1000),
        started_ms=at(started),
        finished_ms=at(finished),
        worker=worker,
        error=error,
        attempts=1 if started is not None else 0,
    )


# A 100-second afternoon on two GPUs:
#   alice: done (waited 10, ran 20), done (waited 0, ran 30), failed (waited 5, ran 5)
#   bob:   done (waited 40, ran 10), cancelled while running (waited 20, ran 15)
#   carol: cancelled while waiting (never started), still waiting
JOBS = [
    job("a1", "alice", JobState.DONE, 0, 10, 30, "gpu-1"),
    job("a2", "alice", JobState.DONE, 30, 30, 60, "gpu-1"),
    job("a3", "alice", JobState.FAILED, 60, 65, 70, "gpu-1", {"exception_message": "OOM"}),
    job("b1", "bob", JobState.DONE, 0, 40, 50, "gpu-2"),
    job("b2", "bob", JobState.CANCELLED, 60, 80, 95, "gpu-2"),
    job("c1", "carol", JobState.CANCELLED, 10, None, 100),
    job("c2", "carol", JobState.PENDING, 90),
]


def test_wait_and_run_of_one_job() -> None:
    assert wait_seconds(JOBS[0]) == 10
    assert run_seconds(JOBS[0]) == 20
    assert wait_seconds(JOBS[5]) is None  # cancelled before it started
    assert run_seconds(JOBS[5]) is None
    assert run_seconds(JOBS[4]) == 15  # cancelled on the GPU still used it
    requeued_then_cancelled = job("x", "bob", JobState.CANCELLED, 0, 10, 50, worker=None)
    assert run_seconds(requeued_then_cancelled) is None


def test_per_person_figures() -> None:
    report = summarize(JOBS)
    people = {f.name: f for f in report.people}
    assert list(people) == ["alice", "bob", "carol"]

    alice = people["alice"]
    assert (alice.jobs, alice.done, alice.failed, alice.cancelled) == (3, 2, 1, 0)
    assert alice.waits == [10, 0, 5]
    assert alice.wait_mean == 5
    assert alice.wait_median == 5
    assert alice.wait_max == 10
    assert alice.gpu_seconds == 55
    assert alice.run_mean == pytest.approx(55 / 3)

    bob = people["bob"]
    assert (bob.jobs, bob.done, bob.cancelled) == (2, 1, 1)
    assert bob.wait_mean == 30
    assert bob.gpu_seconds == 25

    carol = people["carol"]
    assert (carol.jobs, carol.cancelled, carol.unfinished) == (2, 1, 1)
    assert carol.waits == []
    assert carol.wait_mean is None
    assert carol.gpu_seconds == 0

    # GPU time 55 + 25 = 80 s
    assert alice.gpu_share == pytest.approx(55 / 80)
    assert bob.gpu_share == pytest.approx(25 / 80)
    assert carol.gpu_share == 0


def test_totals_gpus_and_failures() -> None:
    report = summarize(JOBS)
    assert report.total.jobs == 7
    assert report.total.done == 3
    assert report.total.failed == 1
    assert report.total.cancelled == 2
    assert report.total.gpu_seconds == 80
    # window: first queued (0 s) to last ended (100 s)
    assert report.window_seconds == 100
    gpus = {g.worker_id: g for g in report.gpus}
    assert gpus["gpu-1"].jobs == 3
    assert gpus["gpu-1"].failed == 1
    assert gpus["gpu-1"].busy_seconds == 55
    assert gpus["gpu-1"].busy_share == pytest.approx(0.55)
    assert gpus["gpu-2"].busy_seconds == 25
    # 80 GPU-seconds over 100 s on 2 GPUs
    assert report.busy_share == pytest.approx(0.4)
    assert report.errors == [("OOM", 1)]


def test_no_jobs() -> None:
    report = summarize([])
    assert report.people == []
    assert report.total.jobs == 0
    assert report.busy_share is None
    assert report.window_seconds == 0


def test_figures_files(tmp_path: Path) -> None:
    report = summarize(JOBS)
    written = write_figures(report, JOBS, tmp_path)
    assert sorted(p.name for p in written) == ["jobs.csv", "people.csv", "report.json"]
    with (tmp_path / "people.csv").open() as fh:
        rows = {r["name"]: r for r in csv.DictReader(fh)}
    assert rows["alice"]["gpu_s"] == "55.0"
    assert rows["everyone"]["jobs"] == "7"
    with (tmp_path / "jobs.csv").open() as fh:
        assert sum(1 for _ in csv.DictReader(fh)) == 7
    summary = json.loads((tmp_path / "report.json").read_text())
    assert summary["gpu_busy_share"] == pytest.approx(0.4)
    assert summary["failures"] == [{"reason": "OOM", "count": 1}]


def test_outputs_zip_per_person(tmp_path: Path) -> None:
    users = tmp_path / "users"
    (users / "alice" / "output" / "portraits").mkdir(parents=True)
    (users / "alice" / "output" / "a_00001_.png").write_bytes(b"png-1")
    (users / "alice" / "output" / "portraits" / "p_00001_.png").write_bytes(b"png-2")
    (users / "alice" / "output" / "half.png.part").write_bytes(b"still uploading")
    (users / "alice" / "input").mkdir()
    (users / "alice" / "input" / "cat.png").write_bytes(b"not an output")
    (users / "bob" / "output").mkdir(parents=True)  # nothing to take home
    out = tmp_path / "handout"

    archives = zip_outputs(users, out)

    assert [(a.user, a.files, a.bytes) for a in archives] == [("alice", 2, 10)]
    with zipfile.ZipFile(out / "alice.zip") as zf:
        assert sorted(zf.namelist()) == ["alice/a_00001_.png", "alice/portraits/p_00001_.png"]
        assert zf.read("alice/portraits/p_00001_.png") == b"png-2"
    assert not (out / "bob.zip").exists()


def test_peak_people_counts_each_person_once() -> None:
    from comfy_multi.admin.report import peak_people

    jobs = [
        job("a1", "alice", JobState.DONE, 0, 1, 10),
        job("a2", "alice", JobState.DONE, 5, 11, 20),  # alice twice at once is one person
        job("b1", "bob", JobState.DONE, 8, 20, 30),
        job("c1", "carol", JobState.DONE, 30, 31, 40),  # starts as bob ends: not together
    ]
    assert peak_people(jobs) == 2


def test_restarts_of_one_worker_are_one_gpu() -> None:
    from comfy_multi.admin.report import gpu_name

    assert gpu_name("gpu-1-3f2a") == gpu_name("gpu-1-09bc") == "gpu-1"
    assert gpu_name("studio-a") == "studio-a"


def test_tables_never_cut_a_name() -> None:
    from comfy_multi.admin.report_out import report_lines

    long_name = "maximilian.von-hohenzollern"
    jobs = [*JOBS, job("z", long_name, JobState.DONE, 0, 1, 2, worker="gpu-1")]
    lines = report_lines(summarize(jobs))
    assert any(line.startswith(long_name + "  ") for line in lines)
    assert all(len(line) <= 80 for line in lines), lines
    assert "…" not in "\n".join(lines)
