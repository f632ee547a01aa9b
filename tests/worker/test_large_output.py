"""A 200 MB output travels ComfyUI -> worker -> gateway streamed, in bounded memory."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from tests.worker import prompts
from tests.worker.conftest import Room, StandIn, Workers

SIZE_MB = 200
RSS_GROWTH_LIMIT = 64 * 1024 * 1024  # what the worker may add while moving the file


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@pytest.mark.slow
async def test_a_200_mb_output_is_delivered_with_bounded_worker_memory(
    room: Room, standin: StandIn, workers: Workers, dump_logs: Callable[[], str]
) -> None:
    worker = workers.start(standin.url)
    await room.wait_workers(1)
    process = psutil.Process(worker.proc.pid)
    baseline = process.memory_info().rss
    peak = baseline
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            with contextlib.suppress(psutil.Error):
                peak = max(peak, process.memory_info().rss)
            await asyncio.sleep(0.01)

    sampler = asyncio.create_task(sample())
    try:
        job_id = await room.submit(prompts.large(SIZE_MB))
        job = await room.wait_state(job_id, within=120)
    finally:
        done.set()
        await sampler

    assert job["state"] == "done", job
    (item,) = job["outputs"]["1"]["images"]
    assert item["type"] == "output"
    assert item["subfolder"] == "video"
    stored = room.user_dir("alice", "output") / item["subfolder"] / item["filename"]
    # on the GPU host it sits in alice's own folder (worker/saves.py)
    original = standin.output_dir / "cm-people" / "alice" / "video" / item["filename"]
    assert stored.stat().st_size == SIZE_MB * 1024 * 1024
    assert await asyncio.to_thread(_sha256, stored) == await asyncio.to_thread(_sha256, original)
    growth = peak - baseline
    print(f"worker RSS: baseline {baseline / 2**20:.1f} MiB, peak {peak / 2**20:.1f} MiB")
    assert growth < RSS_GROWTH_LIMIT, f"worker RSS grew by {growth / 2**20:.1f} MiB"
