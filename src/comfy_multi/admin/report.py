"""`comfy-multi report`: what the day looked like, per person and per GPU.

The figures come from the job records still in Redis (they live
COMFY_MULTI_JOB_TTL_DAYS). Definitions, so the numbers can be checked:

- wait: from queued to (the last) start, for jobs that started;
- run: from start to end for jobs that ended on a GPU (done, failed, or
  cancelled while running); the sum is that person's GPU time;
- GPU share: a person's GPU time over everyone's;
- GPU busy share: GPU time over (report window x GPUs that ran a job), the
  window running from the first job queued to the last job ended;
- a GPU is a worker's name (`--name`, else its token's): a worker restarted
  under the same name is the same GPU. Its done / failed / busy figures are the
  dashboard's own counters, so a job lost with a killed worker counts as that
  GPU's failure, as it does on the dashboard;
- peak people: the most people with a job waiting or running at one moment.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from redis.asyncio import Redis

from comfy_multi.admin.snapshot import error_text
from comfy_multi.queue import records
from comfy_multi.queue.models import Job, JobState
from comfy_multi.queue.workers import WorkerInfo

FIELDS = ("id", "user", "state", "cls", "seq", "queued_ms", "started_ms", "finished_ms")
FIELDS_MORE = ("attempts", "worker", "error")
READ_BATCH = 1000
TOP_ERRORS = 5


@dataclass
class Figures:
    """Counts and times of a set of jobs (one person's, or everyone's)."""

    name: str
    done: int = 0
    failed: int = 0
    cancelled: int = 0
    unfinished: int = 0
    waits: list[float] = field(default_factory=list)  # seconds
    runs: list[float] = field(default_factory=list)  # seconds
    gpu_share: float | None = None

    @property
    def jobs(self) -> int:
        return self.done + self.failed + self.cancelled + self.unfinished

    @property
    def gpu_seconds(self) -> float:
        return sum(self.runs)

    @property
    def wait_mean(self) -> float | None:
        return statistics.fmean(self.waits) if self.waits else None

    @property
    def wait_median(self) -> float | None:
        return statistics.median(self.waits) if self.waits else None

    @property
    def wait_max(self) -> float | None:
        return max(self.waits) if self.waits else None

    @property
    def run_mean(self) -> float | None:
        return statistics.fmean(self.runs) if self.runs else None

    def add(self, job: Job) -> None:
        if job.state == JobState.DONE:
            self.done += 1
        elif job.state == JobState.FAILED:
            self.failed += 1
        elif job.state == JobState.CANCELLED:
            self.cancelled += 1
        else:
            self.unfinished += 1
        wait, run = wait_seconds(job), run_seconds(job)
        if wait is not None:
            self.waits.append(wait)
        if run is not None:
            self.runs.append(run)

    def as_row(self) -> dict[str, object]:
        def r(x: float | None) -> float | None:
            return None if x is None else round(x, 2)

        return {
            "name": self.name,
            "jobs": self.jobs,
            "done": self.done,
            "failed": self.failed,
            "cancelled": self.cancelled,
            "unfinished": self.unfinished,
            "wait_mean_s": r(self.wait_mean),
            "wait_median_s": r(self.wait_median),
            "wait_max_s": r(self.wait_max),
            "run_mean_s": r(self.run_mean),
            "gpu_s": r(self.gpu_seconds),
            "gpu_share": r(self.gpu_share),
        }


@dataclass
class GpuFigures:
    worker_id: str  # the GPU's name: restarts of one worker are one GPU
    jobs: int = 0
    failed: int = 0
    busy_seconds: float = 0.0
    busy_share: float | None = None
    processes: int = 1  # worker processes seen under this name (restarts)


PROCESS_SUFFIX = re.compile(r"-[0-9a-f]{4}$")


def gpu_name(worker_id: str) -> str:
    """`gpu-1-3f2a` -> `gpu-1`: the suffix only tells one run of a worker from the next."""
    return PROCESS_SUFFIX.sub("", worker_id) or worker_id


def peak_people(jobs: Iterable[Job]) -> int:
    """The most people with a job waiting or running at the same moment."""
    spans: dict[str, list[tuple[int, int]]] = {}
    for job in jobs:
        end = job.finished_ms if job.finished_ms is not None else 2**62  # still open
        spans.setdefault(job.user, []).append((job.queued_ms, end))
    events: list[tuple[int, int]] = []
    for user_spans in spans.values():  # a person counts once, however many jobs they have
        merged: list[list[int]] = []
        for start, end in sorted(user_spans):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        for start, end in merged:
            events += [(start, 1), (end, -1)]
    peak = current = 0
    for _, step in sorted(events, key=lambda e: (e[0], e[1])):  # an end before a start
        current += step
        peak = max(peak, current)
    return peak


@dataclass
class Report:
    start_ms: int | None
    end_ms: int | None
    people: list[Figures]
    total: Figures
    gpus: list[GpuFigures]
    busy_share: float | None
    errors: list[tuple[str, int]]  # most common failure reasons
    peak_people: int = 0
    uptime_seconds: float | None = None  # how long the room has served (None: unknown)

    @property
    def window_seconds(self) -> float:
        return (self.end_ms - self.start_ms) / 1000 if self.start_ms and self.end_ms else 0.0


def wait_seconds(job: Job) -> float | None:
    if job.started_ms is None:
        return None
    return max(0, job.started_ms - job.queued_ms) / 1000


def run_seconds(job: Job) -> float | None:
    """GPU time: only jobs that ended while on a GPU (a requeued job that was
    then cancelled in the queue has no worker left)."""
    if job.started_ms is None or job.finished_ms is None:
        return None
    on_gpu = job.state in (JobState.DONE, JobState.FAILED) or (
        job.state == JobState.CANCELLED and job.worker
    )
    return max(0, job.finished_ms - job.started_ms) / 1000 if on_gpu else None


def _gpus_of_workers(workers: list[WorkerInfo]) -> dict[str, GpuFigures]:
    gpus: dict[str, GpuFigures] = {}
    for w in workers:
        name = gpu_name(w.worker_id)
        gpu = gpus.get(name)
        if gpu is None:
            gpu = gpus[name] = GpuFigures(name, processes=0)
        gpu.processes += 1
        gpu.jobs += w.jobs_done
        gpu.failed += w.failures
        gpu.busy_seconds += w.busy_ms / 1000
    return {n: g for n, g in gpus.items() if g.jobs or g.failed or g.busy_seconds}


def summarize(
    jobs: Iterable[Job],
    workers: list[WorkerInfo] | None = None,
    uptime_seconds: float | None = None,
) -> Report:
    """The report's numbers from a set of jobs, and the GPUs' from the workers'
    own counters when given (pure: no Redis, no clock)."""
    jobs = sorted(jobs, key=lambda j: j.queued_ms)
    people: dict[str, Figures] = {}
    gpus: dict[str, GpuFigures] = {}
    total = Figures("everyone")
    errors: Counter[str] = Counter()
    for job in jobs:
        people.setdefault(job.user, Figures(job.user)).add(job)
        total.add(job)
        run = run_seconds(job)
        if run is not None and job.worker and workers is None:
            name = gpu_name(job.worker)
            gpu = gpus.setdefault(name, GpuFigures(name))
            gpu.jobs += 1
            gpu.failed += job.state == JobState.FAILED
            gpu.busy_seconds += run
        if job.state == JobState.FAILED:
            errors[error_text(job.error) or "unknown"] += 1
    start = jobs[0].queued_ms if jobs else None
    ends = [j.finished_ms for j in jobs if j.finished_ms]
    end = max(ends) if ends else None
    window = (end - start) / 1000 if start and end and end > start else 0.0
    for figures in people.values():
        figures.gpu_share = figures.gpu_seconds / total.gpu_seconds if total.gpu_seconds else None
    if workers is not None:
        gpus = _gpus_of_workers(workers)
    for gpu in gpus.values():
        gpu.busy_share = gpu.busy_seconds / window if window else None
    gpu_seconds = sum(g.busy_seconds for g in gpus.values())
    busy = gpu_seconds / (window * len(gpus)) if window and gpus else None
    return Report(
        start_ms=start,
        end_ms=end,
        people=sorted(people.values(), key=lambda f: f.name),
        total=total,
        gpus=sorted(gpus.values(), key=lambda g: g.worker_id),
        busy_share=busy,
        errors=errors.most_common(TOP_ERRORS),
        peak_people=peak_people(jobs),
        uptime_seconds=uptime_seconds,
    )


async def gather_jobs(redis: Redis, since_ms: int | None = None) -> list[Job]:
    """The jobs on record (queued at or after `since_ms`), without their prompts."""
    ids = sorted(await records.all_job_ids(redis))
    names = [*FIELDS, *FIELDS_MORE]
    jobs = []
    for i in range(0, len(ids), READ_BATCH):
        rows = await records.job_fields(redis, ids[i : i + READ_BATCH], names)
        for values in rows:
            h = {k: str(v) for k, v in zip(names, values, strict=True) if v is not None}
            if all(k in h for k in FIELDS[:5]):
                job = Job.from_hash(h)
                if since_ms is None or job.queued_ms >= since_ms:
                    jobs.append(job)
    return jobs
