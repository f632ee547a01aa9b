"""A workshop room under load: 200 participants with open sockets, bursts of
Runs when the instructor says "now press Run", uploads, output downloads, and
4 stand-in GPU workers taking a realistic time per Run (all on loopback,
through the real worker channel; `comfy-multi up` with its embedded Redis in
a scratch data dir).

Reports submit, status-read, Run-to-first-event (Run pressed until the
participant's socket is told its queue changed), fan-out (a worker's event
POST until it reaches the socket), upload and download latency (p50/p99),
gateway and Redis memory, and errors (must be 0).

    .venv/bin/python bench/bench_room.py [--users 200] [--bursts 2] [--gateways 1]
    .venv/bin/python bench/bench_room.py --capacity      # submit capacity, up --workers 1 and 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from _harness import add_users, platform, register_worker
from _room import Room, load_average
from bench_queue import sign_in as warm_passwords
from bench_queue import submit_load


async def room(args: argparse.Namespace) -> dict[str, Any]:
    with platform("--workers", str(args.gateways)) as p:
        r = Room(p, args.users, args.workers, args.run_seconds)
        await r.open(add_users(p, args.users))
        await asyncio.sleep(2)
        idle = r.memory()
        started = time.perf_counter()
        pressed = 0
        peak: dict[str, Any] = dict(idle)
        for _ in range(args.bursts):
            pressed += await r.burst(args.share, args.spread, args.upload_share)
            # the room waits for its Runs, pages looking at their queue meanwhile
            await r.browse(args.between)
            now = r.memory()
            peak = {k: max(peak[k], now[k]) for k in peak}
        elapsed = time.perf_counter() - started
        runs_done = r.figures.runs_done
        errors = list(r.figures.errors)
        figures = r.figures.take()
        await r.close()
        return {
            "gateways": args.gateways,
            "users": args.users,
            "sockets_open": len(r.people),
            "runs_pressed": pressed,
            "runs_done": runs_done,
            "seconds": round(elapsed, 1),
            "errors": len(errors),
            "first_errors": errors[:5],
            "load_average_1m": load_average(),
            "idle": idle,
            "peak": peak,
            **{k: v for k, v in figures.items() if k != "runs_done"},
        }


async def capacity(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    for gateways in (1, 2):
        with platform("--workers", str(gateways)) as p:
            # with no worker ever registered every submit is a 503
            token = p.cli("worker-token", "create", "bench-gpu").strip().splitlines()[-1]
            await register_worker(p.url, token, "bench-gpu")
            people = add_users(p, args.users)
            await warm_passwords(p.port, people)
            await warm_passwords(p.port, people)  # each process caches its own check
            result = await submit_load(p.port, people, args.users, args.seconds, None)
            result.pop("_ids")
            rows.append({"gateways": gateways, "load_average_1m": load_average(), **result})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--workers", type=int, default=4, help="stand-in GPU workers")
    parser.add_argument("--gateways", type=int, default=1, help="up --workers N")
    parser.add_argument("--run-seconds", type=float, default=2.0, help="mean time of one Run")
    parser.add_argument("--bursts", type=int, default=2)
    parser.add_argument("--share", type=float, default=0.5, help="who presses Run in a burst")
    parser.add_argument("--spread", type=float, default=5.0, help="a burst lasts this long (s)")
    parser.add_argument("--upload-share", type=float, default=0.2)
    parser.add_argument("--between", type=float, default=40.0, help="seconds between bursts")
    parser.add_argument("--capacity", action="store_true", help="measure submits/s for N=1, 2")
    parser.add_argument("--seconds", type=float, default=10.0, help="capacity: per N")
    args = parser.parse_args()
    if args.capacity:
        print(json.dumps(asyncio.run(capacity(args)), indent=2))
        return
    result = asyncio.run(room(args))
    print(json.dumps(result, indent=2))
    if result["errors"]:
        raise SystemExit(f"{result['errors']} errors")


if __name__ == "__main__":
    main()
