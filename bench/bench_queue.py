"""Submit throughput and latency, and status-read latency, against one gateway
process with the embedded Redis (both started here, in a scratch data dir).

    .venv/bin/python bench/bench_queue.py [--seconds 10]

Goals (issue 3): >= 1,000 submits/s, and p99 submit < 50 ms at 200 clients;
p99 status read < 20 ms. Three measurements:

- capacity: 20 and 200 connections each submitting back to back (closed
  loop): the most the gateway does per second. Latency here is mostly time
  spent waiting behind the other clients (200 in flight / throughput).
- room: 200 clients together offering 1,000 submits/s at random moments
  (open loop, each ~5/s): the latency a person sees when the room is busy.
- status: 20 clients together reading their own job (state and place in the
  queue) 200 times a second, with a full room waiting (200 people x 20 jobs),
  and again with tens of thousands of jobs waiting.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from pathlib import Path
from typing import Any

import orjson
from _harness import (
    PROMPT,
    Conn,
    add_users,
    basic,
    percentiles,
    platform,
    register_fake_worker,
    report,
)

BODY = orjson.dumps({"prompt": PROMPT})


async def sign_in(port: int, people: list[tuple[str, str]]) -> None:
    """A password is checked (argon2) once, then cached: do that before measuring."""
    conns = [Conn(port, basic(person)) for person in people]
    await asyncio.gather(*(c.open() for c in conns))
    await asyncio.gather(*(c.request("GET", "/api/v1/me") for c in conns))
    await asyncio.gather(*(c.close() for c in conns))


async def submit_load(
    port: int, people: list[tuple[str, str]], clients: int, seconds: float, rate: float | None
) -> dict[str, Any]:
    """`rate` None: back to back; else total submits/s offered at random moments."""
    conns = [Conn(port, basic(people[i % len(people)])) for i in range(clients)]
    await asyncio.gather(*(c.open() for c in conns))
    latencies: list[float] = []
    errors = 0
    job_ids: list[str] = []  # the first client's, for the status reads
    started = time.monotonic()
    stop = started + seconds
    rng = random.Random(1)

    async def client(conn: Conn) -> None:
        nonlocal errors
        next_at = time.monotonic() + (rng.expovariate(rate / clients) if rate else 0)
        while next_at < stop:
            if rate:
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            t0 = time.perf_counter()
            status, body = await conn.request("POST", "/api/v1/jobs", BODY)
            latencies.append(time.perf_counter() - t0)
            if status != 201:
                errors += 1
            elif conn is conns[0]:
                job_ids.append(orjson.loads(body)["id"])
            next_at = next_at + rng.expovariate(rate / clients) if rate else time.monotonic()

    await asyncio.gather(*(client(c) for c in conns))
    elapsed = time.monotonic() - started
    await asyncio.gather(*(c.close() for c in conns))
    return {
        "clients": clients,
        "offered_per_s": rate or "max",
        "submits": len(latencies),
        "per_s": round(len(latencies) / elapsed),
        **percentiles(latencies),
        "errors": errors,
        "_ids": job_ids,
    }


async def status_load(
    port: int,
    person: tuple[str, str],
    job_ids: list[str],
    clients: int,
    seconds: float,
    rate: float,
) -> dict[str, Any]:
    """`clients` connections together reading `rate` times a second at random moments."""
    conns = [Conn(port, basic(person)) for _ in range(clients)]
    await asyncio.gather(*(c.open() for c in conns))
    latencies: list[float] = []
    stop = time.monotonic() + seconds
    rng = random.Random(2)

    async def client(i: int, conn: Conn) -> None:
        n = i
        next_at = time.monotonic() + rng.expovariate(rate / clients)
        while next_at < stop:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            t0 = time.perf_counter()
            status, body = await conn.request("GET", f"/api/v1/jobs/{job_ids[n % len(job_ids)]}")
            latencies.append(time.perf_counter() - t0)
            assert status == 200, status
            assert "position" in orjson.loads(body)
            n += clients
            next_at += rng.expovariate(rate / clients)

    await asyncio.gather(*(client(i, c) for i, c in enumerate(conns)))
    await asyncio.gather(*(c.close() for c in conns))
    return {
        "clients": clients,
        "offered_per_s": rate,
        "reads": len(latencies),
        **percentiles(latencies),
    }


async def fill(port: int, people: list[tuple[str, str]], per_user: int) -> list[str]:
    """Queue `per_user` jobs for everyone; returns the first person's job ids."""
    conns = [Conn(port, basic(person)) for person in people]
    await asyncio.gather(*(c.open() for c in conns))

    async def queue_for(conn: Conn) -> list[str]:
        replies = [await conn.request("POST", "/api/v1/jobs", BODY) for _ in range(per_user)]
        return [orjson.loads(body)["id"] for _, body in replies]

    ids = await asyncio.gather(*(queue_for(c) for c in conns))
    await asyncio.gather(*(c.close() for c in conns))
    return ids[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    results: dict[str, Any] = {"capacity": [], "room": [], "status": []}
    with platform() as p:
        register_fake_worker(p)
        people = add_users(p, 200)
        asyncio.run(sign_in(p.port, people))
        # a full room first: 200 people at the default cap of 20 waiting jobs each
        own = asyncio.run(fill(p.port, people, 20))
        reads = asyncio.run(status_load(p.port, people[0], own, 20, args.seconds, 200.0))
        results["status"].append({"pending_jobs": 200 * 20, **reads})
        for clients in (20, 200):
            row = asyncio.run(submit_load(p.port, people, clients, args.seconds, None))
            row.pop("_ids")
            results["capacity"].append(row)
        row = asyncio.run(submit_load(p.port, people, 200, args.seconds, 1000.0))
        own = row.pop("_ids")
        results["room"].append(row)
        pending = 4000 + sum(r["submits"] for r in results["capacity"] + results["room"])
        reads = asyncio.run(status_load(p.port, people[0], own, 20, args.seconds, 200.0))
        results["status"].append({"pending_jobs": pending, **reads})
        results["gateway_rss_mb"] = round(p.rss_mb(), 1)
    report("capacity: POST /api/v1/jobs back to back", results["capacity"])
    report("room: 200 clients offering 1,000 submits/s", results["room"])
    report("status read: GET /api/v1/jobs/{id} (own job, with its place)", results["status"])
    print(f"\ngateway RSS after the run: {results['gateway_rss_mb']} MB")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "queue.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
