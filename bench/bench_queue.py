"""Submit throughput and latency at 20 and 200 concurrent clients, and
status-read latency, against one gateway process with the embedded Redis.

    .venv/bin/python bench/bench_queue.py [--seconds 10]

Goals (issue 3): >= 1,000 submits/s and p99 submit < 50 ms at 200 clients;
p99 status read < 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

import orjson
from _harness import PROMPT, Conn, add_users, percentiles, platform, register_fake_worker, report

BODY = orjson.dumps({"prompt": PROMPT})


async def submit_load(
    port: int, people: list[tuple[str, str]], clients: int, seconds: float
) -> dict[str, Any]:
    conns = [Conn(port, people[i % len(people)]) for i in range(clients)]
    await asyncio.gather(*(c.open() for c in conns))
    latencies: list[float] = []
    errors = 0
    job_ids: list[str] = []  # user000's, for the status reads
    stop = time.monotonic() + seconds

    async def client(conn: Conn) -> None:
        nonlocal errors
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            status, body = await conn.request("POST", "/api/v1/jobs", BODY)
            latencies.append(time.perf_counter() - t0)
            if status != 201:
                errors += 1
            elif conn is conns[0] and len(job_ids) < 1000:
                job_ids.append(orjson.loads(body)["id"])

    started = time.monotonic()
    await asyncio.gather(*(client(c) for c in conns))
    elapsed = time.monotonic() - started
    await asyncio.gather(*(c.close() for c in conns))
    return {
        "clients": clients,
        "submits": len(latencies),
        "per_s": round(len(latencies) / elapsed),
        **percentiles(latencies),
        "errors": errors,
        "_ids": job_ids,
    }


async def status_load(
    port: int, people: list[tuple[str, str]], job_ids: list[str], clients: int, seconds: float
) -> dict[str, Any]:
    conns = [Conn(port, people[0]) for _ in range(clients)]
    await asyncio.gather(*(c.open() for c in conns))
    latencies: list[float] = []
    stop = time.monotonic() + seconds

    async def client(i: int, conn: Conn) -> None:
        n = i
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            status, _ = await conn.request("GET", f"/api/v1/jobs/{job_ids[n % len(job_ids)]}")
            latencies.append(time.perf_counter() - t0)
            assert status == 200, status
            n += clients

    await asyncio.gather(*(client(i, c) for i, c in enumerate(conns)))
    await asyncio.gather(*(c.close() for c in conns))
    return {"clients": clients, "reads": len(latencies), **percentiles(latencies)}


async def sign_in(port: int, people: list[tuple[str, str]]) -> None:
    """A password is checked (argon2) once, then cached: do that before measuring."""
    conns = [Conn(port, person) for person in people]
    await asyncio.gather(*(c.open() for c in conns))
    await asyncio.gather(*(c.request("GET", "/api/v1/me") for c in conns))
    await asyncio.gather(*(c.close() for c in conns))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    with platform() as p:
        register_fake_worker(p)
        people = add_users(p, 20)
        asyncio.run(sign_in(p.port, people))
        results: dict[str, Any] = {"submit": [], "status": []}
        own_ids: list[str] = []
        for clients in (20, 200):
            row = asyncio.run(submit_load(p.port, people, clients, args.seconds))
            ids = row.pop("_ids")
            own_ids = own_ids or ids
            results["submit"].append(row)
        # user000's own jobs, read by user000 while thousands are pending
        reads = asyncio.run(status_load(p.port, people, own_ids, 20, args.seconds))
        results["status"].append(reads)
        results["gateway_rss_mb"] = round(p.rss_mb(), 1)
    report("submit (POST /api/v1/jobs)", results["submit"])
    report("status read (GET /api/v1/jobs/{id}, own job, with position)", results["status"])
    print(f"\ngateway RSS after the run: {results['gateway_rss_mb']} MB")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "queue.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
