"""Worker figures on loopback: dispatch gap, platform overhead, large-output transfer.

Starts its own room: the ComfyUI stand-in (tests/comfyui_standin), `comfy-multi up`
with its embedded Redis, and workers; prints the figures and exits.

    .venv/bin/python bench/bench_worker.py [--jobs 100] [--runs 50] [--size-mb 200]

- Dispatch gap: from the moment the worker sees a job end on ComfyUI
  (`execution_success`) to its POST /prompt of the next job, with a queue of
  `--jobs` short jobs waiting (in-process worker, timed by its own clock).
- Platform overhead: submit (POST /api/v1/jobs) -> the user's websocket shows
  `executed` with the output, minus ComfyUI's own time (`execution_success`
  minus `execution_start` timestamps of that run), one small image at a time.
- Transfer: a `--size-mb` output moved ComfyUI -> worker -> gateway by a worker
  process, its speed as the worker logs it, and the worker's peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import itertools
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
from websockets.asyncio.client import connect

from comfy_multi.worker.job import JobRun
from comfy_multi.worker.outcome import Outcome, Succeeded
from comfy_multi.worker.runner import Worker, WorkerConfig

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.worker import prompts  # noqa: E402

PASSWORD = "bench-pw"
ADMIN = "teacher"
CLI = [sys.executable, "-m", "comfy_multi"]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMFY_MULTI_")}
    env.pop("REDIS_URL", None)
    env["PYTHONUNBUFFERED"] = "1"
    env["COMFY_MULTI_LOG_LEVEL"] = "warning"
    return env


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, proc: subprocess.Popen[bytes], what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.05)
    raise SystemExit(f"{what} did not come up at {url}")


@dataclass
class Room:
    gateway: str
    comfyui: str
    token: str
    data_dir: Path
    procs: list[subprocess.Popen[bytes]]


def _start_standin(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    ready = tmp / "standin.out"
    with ready.open("wb") as out, (tmp / "standin.log").open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.comfyui_standin", "--host", "127.0.0.1", "--port", "0",
             "--data-dir", str(tmp / "comfyui")],
            cwd=ROOT, stdout=out, stderr=err, env=_env(),
        )  # fmt: skip
    deadline = time.monotonic() + 30
    while b"STANDIN_READY" not in ready.read_bytes():
        if time.monotonic() > deadline or proc.poll() is not None:
            raise SystemExit("the ComfyUI stand-in did not start")
        time.sleep(0.05)
    return proc, ready.read_text().split("STANDIN_READY ", 1)[1].split()[0]


def _cli(tmp: Path, *args: str) -> str:
    done = subprocess.run(
        [*CLI, *args], check=True, capture_output=True, text=True, env=_env(), cwd=tmp
    )
    return done.stdout


@contextlib.contextmanager
def room(tmp: Path, comfyui_url: str | None) -> Iterator[Room]:
    """`comfy-multi up` with its embedded Redis, users, a worker token, and a ComfyUI
    (the stand-in unless ``comfyui_url`` names a running one)."""
    data = tmp / "data"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        if comfyui_url is None:
            standin, comfyui_url = _start_standin(tmp)
            procs.append(standin)
        for name, admin in (("alice", False), (ADMIN, True)):
            flags = ["--admin"] if admin else []
            _cli(tmp, "user", "add", name, "--password", PASSWORD, "--data-dir", str(data), *flags)
        created = _cli(tmp, "worker-token", "create", "bench", "--data-dir", str(data))
        token = created.strip().splitlines()[-1].strip()
        port = _free_port()
        with (tmp / "gateway.log").open("wb") as log:
            gateway = subprocess.Popen(
                [*CLI, "up", "--data-dir", str(data), "--port", str(port)],
                stdout=subprocess.DEVNULL, stderr=log, env=_env(), cwd=tmp,
            )  # fmt: skip
        procs.append(gateway)
        gateway_url = f"http://127.0.0.1:{port}"
        _wait_http(f"{gateway_url}/health", gateway, "the gateway")
        yield Room(gateway_url, comfyui_url.rstrip("/"), token, data, procs)
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _summary(values_ms: list[float]) -> str:
    return (
        f"p50 {statistics.median(values_ms):7.2f} ms   p90 {_pct(values_ms, 0.9):7.2f} ms   "
        f"max {max(values_ms):7.2f} ms   (n={len(values_ms)})"
    )


class Finished:
    """Successful runs of the in-process worker, in the order they finished."""

    def __init__(self) -> None:
        self.runs: list[JobRun] = []
        self._added = asyncio.Event()

    def add(self, run: JobRun, outcome: Outcome | None) -> None:
        if isinstance(outcome, Succeeded):
            self.runs.append(run)
            self._added.set()

    async def until(self, count: int, seconds: float) -> None:
        async with asyncio.timeout(seconds):
            while len(self.runs) < count:
                self._added.clear()
                await self._added.wait()


@contextlib.asynccontextmanager
async def in_process_worker(r: Room, finished: Finished) -> AsyncIterator[Worker]:
    """One worker for the timed phases, so its own clock times each job."""
    config = WorkerConfig(gateway_url=r.gateway, token=r.token, comfyui_url=r.comfyui, name="bench")
    worker = Worker(config, on_job_done=finished.add)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(worker.run())
        try:
            yield worker
        finally:
            worker.request_stop()


async def _wait_worker(http: httpx.AsyncClient, name: str) -> None:
    """Until a worker whose id starts with ``name-`` is online (registered)."""
    async with asyncio.timeout(30):
        while True:
            listed = (await http.get("/api/v1/workers", auth=(ADMIN, PASSWORD))).json()
            if any(w["online"] and w["worker_id"].startswith(f"{name}-") for w in listed):
                return
            await asyncio.sleep(0.1)


async def _submit(http: httpx.AsyncClient, prompt: dict[str, Any], **extra: Any) -> str:
    response = await http.post(
        "/api/v1/jobs", json={"prompt": prompt, **extra}, auth=("alice", PASSWORD)
    )
    response.raise_for_status()
    body = response.json()
    return str(body.get("id") or body.get("job_id") or body.get("prompt_id"))


async def dispatch_gap(http: httpx.AsyncClient, finished: Finished, jobs: int) -> None:
    admin = (ADMIN, PASSWORD)
    await http.put("/api/v1/queue/cap", json={"cap": 0}, auth=admin)
    await http.post("/api/v1/queue/pause", auth=admin)
    for i in range(jobs):
        await _submit(http, prompts.empty_saved(color=i + 1))
    before = len(finished.runs)
    await http.post("/api/v1/queue/resume", auth=admin)
    await finished.until(before + jobs, 60 + jobs)
    runs = sorted(finished.runs[before:], key=lambda run: run.timings["posted"])
    gaps, reports, claims = [], [], []
    for prev, nxt in itertools.pairwise(runs):
        gaps.append((nxt.timings["posted"] - prev.timings["finished"]) * 1000)
        reports.append((prev.timings["reported"] - prev.timings["finished"]) * 1000)
        claims.append((nxt.timings["posted"] - prev.timings["reported"]) * 1000)
    print(f"\nDispatch gap, {len(runs)} queued short jobs on one ComfyUI")
    print(f"  {'end seen -> next POST /prompt':32}{_summary(gaps)}")
    print(f"  {'  of which events + complete':32}{_summary(reports)}")
    print(f"  {'  of which claim + POST /prompt':32}{_summary(claims)}")


async def _user_socket(r: Room) -> Any:
    auth = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    ws_url = r.gateway.replace("http://", "ws://") + "/u/alice/ws"
    return await connect(ws_url, additional_headers={"Authorization": f"Basic {auth}"})


async def _one_run(ws: Any, http: httpx.AsyncClient, sid: str, color: int) -> tuple[float, float]:
    """(ms from submit to the user seeing `executed`, ComfyUI's own ms for the run)."""
    started = time.perf_counter()
    job_id = await _submit(http, prompts.empty_saved(color=color), client_id=sid)
    start_ts = success_ts = seen = None
    async with asyncio.timeout(30):
        while success_ts is None or seen is None:
            frame = await ws.recv()
            if isinstance(frame, bytes):
                continue
            message = json.loads(frame)
            data = message.get("data") or {}
            if data.get("prompt_id") != job_id:
                continue
            if message["type"] == "execution_start":
                start_ts = data["timestamp"]
            elif message["type"] == "executed" and seen is None:
                seen = time.perf_counter()
            elif message["type"] == "execution_success":
                success_ts = data["timestamp"]
    comfy = float(success_ts - start_ts) if start_ts is not None else 0.0
    return (seen - started) * 1000, comfy


async def overhead(r: Room, http: httpx.AsyncClient, runs: int) -> None:
    totals, comfy_times = [], []
    ws = await _user_socket(r)
    try:
        sid = json.loads(await ws.recv())["data"]["sid"]
        for i in range(runs + 3):
            total, comfy = await _one_run(ws, http, sid, 1000 + i)
            if i >= 3:  # the first runs warm up connections
                totals.append(total)
                comfy_times.append(comfy)
    finally:
        await ws.close()
    overheads = [t - c for t, c in zip(totals, comfy_times, strict=True)]
    print(f"\nPlatform overhead, {len(totals)} small-image jobs one at a time")
    print(f"  submit -> user sees executed  {_summary(totals)}")
    print(f"  ComfyUI's own time            {_summary(comfy_times)}")
    print(f"  overhead (difference)         {_summary(overheads)}")


async def transfer(r: Room, tmp: Path, size_mb: int) -> None:
    log = tmp / "worker-transfer.log"
    env = _env() | {"COMFY_MULTI_WORKER_TOKEN": r.token, "COMFY_MULTI_LOG_LEVEL": "info"}
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "comfy_multi.worker", "--gateway", r.gateway,
            "--comfyui", r.comfyui, "--name", "bench-transfer",
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    try:
        process = psutil.Process(proc.pid)
        async with httpx.AsyncClient(base_url=r.gateway, timeout=30) as http:
            await _wait_worker(http, "bench-transfer")
            baseline = peak = process.memory_info().rss
            job_id = await _submit(http, prompts.large(size_mb))
            started = time.perf_counter()
            state = "pending"
            while state not in ("done", "failed", "cancelled"):
                peak = max(peak, process.memory_info().rss)
                await asyncio.sleep(0.01)
                job = (await http.get(f"/api/v1/jobs/{job_id}", auth=(ADMIN, PASSWORD))).json()
                state = job["state"]
            elapsed = time.perf_counter() - started
    finally:
        proc.send_signal(signal.SIGTERM)
        await proc.wait()
    moved = re.search(r"moved, ([\d.]+) MiB in ([\d.]+) s \((\d+) MiB/s\)", log.read_text())
    print(f"\nTransfer of a {size_mb} MiB output (job {state})")
    if moved:
        print(f"  ComfyUI /view -> gateway      {moved.group(1)} MiB in {moved.group(2)} s "
              f"= {moved.group(3)} MiB/s")  # fmt: skip
    print(f"  submit -> job done            {elapsed:.2f} s (includes ComfyUI writing the file)")
    print(f"  worker RSS                    baseline {baseline / 2**20:.1f} MiB, "
          f"peak {peak / 2**20:.1f} MiB (+{(peak - baseline) / 2**20:.1f} MiB)")  # fmt: skip


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--keep", type=Path, help="keep logs and data in this folder")
    parser.add_argument(
        "--comfyui",
        metavar="URL",
        help="a running ComfyUI instead of starting the stand-in (the transfer figure "
        "needs the stand-in's StandinLargeOutput node)",
    )
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            tmp = args.keep
        else:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-worker-")))
        r = stack.enter_context(room(tmp, args.comfyui))
        kind = "ComfyUI" if args.comfyui else "ComfyUI stand-in"
        print(f"room: gateway {r.gateway}, {kind} {r.comfyui}, {os.cpu_count()} CPUs")
        finished = Finished()
        async with (
            httpx.AsyncClient(base_url=r.gateway, timeout=30) as http,
            in_process_worker(r, finished),
        ):
            await _wait_worker(http, "bench")
            await _submit(http, prompts.empty_saved(color=0))  # warm-up
            await finished.until(1, 30)
            await dispatch_gap(http, finished, args.jobs)
            await overhead(r, http, args.runs)
        async with httpx.AsyncClient(base_url=r.comfyui) as comfy:
            large = (await comfy.get("/object_info/StandinLargeOutput")).json()
        if large:
            await transfer(r, tmp, args.size_mb)
        else:
            print("\nTransfer: skipped, this ComfyUI has no StandinLargeOutput node")


if __name__ == "__main__":
    asyncio.run(main())
