"""A worker's object_info sent as a gzip bomb: 1 MB of gzip that unpacks to 1 GiB
of zeros, against one gateway process (started here, in a scratch data dir).

    .venv/bin/python bench/bench_gzip_bomb.py

Goal (issue 10): a clear 413 within the unpack budget, other requests answered
meanwhile, and the gateway's RSS within about 100 MB of its idle figure.
Measured: the time to the 413, the slowest GET /health while it was sent, and
the gateway's peak RSS (sampled every 10 ms) against its RSS before.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from pathlib import Path
from typing import Any

import httpx
from _harness import Platform, platform, register_fake_worker, report

GIB = 1024 * 1024 * 1024
MEMBER = 64 * 1024 * 1024


def bomb() -> bytes:
    """gzip of 1 GiB of zeros, as repeated members (quick to build)."""
    return gzip.compress(bytes(MEMBER), 6) * (GIB // MEMBER)


async def measure(p: Platform, token: str, body: bytes) -> dict[str, Any]:
    peak = idle = p.rss_mb()
    async with httpx.AsyncClient(base_url=p.url, timeout=120) as http:
        started = time.perf_counter()
        upload = asyncio.create_task(
            http.put(
                "/worker/v1/object_info",
                params={"digest": "0" * 64},
                content=body,
                headers={"Authorization": f"Bearer {token}", "Content-Encoding": "gzip"},
            )
        )
        slowest = 0.0
        while not upload.done():
            asked = time.perf_counter()
            await http.get("/health")
            slowest = max(slowest, time.perf_counter() - asked)
            peak = max(peak, p.rss_mb())
            await asyncio.sleep(0.01)
        answer = await upload
        took = time.perf_counter() - started
    return {
        "gzip_bytes": len(body),
        "status": answer.status_code,
        "answer_ms": round(took * 1000),
        "slowest_health_ms": round(slowest * 1000),
        "idle_rss_mb": round(idle),
        "peak_rss_mb": round(peak),
    }


def main() -> None:
    body = bomb()
    with platform() as p:
        token = register_fake_worker(p)
        rows = [asyncio.run(measure(p, token, body)) for _ in range(3)]
    report("PUT /worker/v1/object_info: 1 MB of gzip, 1 GiB unpacked", rows)
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "gzip_bomb.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
