"""The room of bench_room.py for a workshop's length: a burst of Runs every
`--every` seconds, pages reading their queue and fetching outputs in between;
every 30 s a CSV row (gateway and Redis memory, Redis keys, p50/p99 of each
latency, Runs done, errors); at the end a PNG plot.

    .venv/bin/python bench/soak.py --minutes 120 [--csv soak.csv] [--png docs/images/soak.png]
    .venv/bin/python bench/soak.py --from-csv docs/soak.csv --png /tmp/soak.png   # summary again
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import statistics
import time
from pathlib import Path
from typing import Any

from _harness import add_users, platform
from _room import Room, load_average

SAMPLE_S = 30.0


async def soak(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with platform("--workers", str(args.gateways)) as p:
        r = Room(p, args.users, args.workers, args.run_seconds)
        await r.open(add_users(p, args.users))
        started = time.perf_counter()
        until = started + args.minutes * 60

        async def rhythm() -> None:
            while time.perf_counter() < until:
                await r.burst(args.share, args.spread, args.upload_share)
                await r.browse(min(args.every, max(0.0, until - time.perf_counter())))

        work = asyncio.create_task(rhythm())
        with Path(args.csv).open("w", newline="") as out:  # noqa: ASYNC230 (a few rows)
            writer: csv.DictWriter[str] | None = None
            while time.perf_counter() < until:
                await asyncio.sleep(min(SAMPLE_S, max(0.1, until - time.perf_counter())))
                row = {
                    "minute": round((time.perf_counter() - started) / 60, 2),
                    **r.memory(),
                    **r.figures.take(),
                    "errors": len(r.figures.errors),
                    "load_average_1m": load_average(),
                }
                rows.append(row)
                if writer is None:
                    writer = csv.DictWriter(out, fieldnames=list(row))
                    writer.writeheader()
                writer.writerow(row)
                out.flush()
                print(row, flush=True)
        work.cancel()
        await asyncio.gather(work, return_exceptions=True)
        if r.figures.errors:
            print("errors:", r.figures.errors[:10])
        await r.close()
    return rows


def plot(rows: list[dict[str, Any]], png: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [float(row["minute"]) for row in rows]
    fig, (mem, lat) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
    for field, label in (
        ("gateway_rss_mb", "gateway RSS (MB)"),
        ("redis_rss_mb", "Redis RSS (MB)"),
        ("redis_used_mb", "Redis used (MB)"),
    ):
        mem.plot(minutes, [float(row.get(field) or 0) for row in rows], label=label)
    mem.set_ylabel("MB")
    mem.legend()
    mem.grid(alpha=0.3)
    for name in LATENCIES:
        values = [row[f"{name}_p99_ms"] for row in rows]
        points = [(m, float(v)) for m, v in zip(minutes, values, strict=True) if v != ""]
        if points:
            lat.plot(*zip(*points, strict=True), label=f"{name} p99 (ms)")
    lat.set_ylabel("ms")
    lat.set_xlabel("minutes")
    lat.legend()
    lat.grid(alpha=0.3)
    fig.suptitle("comfy-multi soak: 200 participants, 4 stand-in workers, loopback")
    fig.tight_layout()
    fig.savefig(png, dpi=90)


WARM_UP_MIN = 5.0
LATENCIES = ("submit", "status", "fan_out", "first_event")


def summarize(rows: list[dict[str, Any]]) -> list[str]:
    """The two figures the soak exists for: memory trend after warm-up (least
    squares, MB per hour) and p99 drift (median of the 30 s p99s in the first
    against the last quarter of the run, warm-up left out)."""
    warm = [r for r in rows if float(r["minute"]) >= WARM_UP_MIN]
    if len(warm) < 8:
        return ["too short for a trend: run it for 10 minutes or more"]
    lines = []
    for field in ("gateway_rss_mb", "redis_used_mb", "redis_rss_mb"):
        xs = [float(r["minute"]) / 60 for r in warm]
        ys = [float(r[field]) for r in warm]
        mx, my = statistics.fmean(xs), statistics.fmean(ys)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
            (x - mx) ** 2 for x in xs
        )
        lines.append(f"{field}: {ys[0]:.1f} -> {ys[-1]:.1f}, trend {slope:+.2f} MB/hour")
    quarter = len(warm) // 4
    first, last = warm[:quarter], warm[-quarter:]
    for name in LATENCIES:
        before = [float(r[f"{name}_p99_ms"]) for r in first if r[f"{name}_p99_ms"] != ""]
        after = [float(r[f"{name}_p99_ms"]) for r in last if r[f"{name}_p99_ms"] != ""]
        if before and after:
            a, b = statistics.median(before), statistics.median(after)
            lines.append(f"{name} p99: {a:.1f} -> {b:.1f} ms ({(b - a) / a:+.0%})")
    loads = [float(r["load_average_1m"]) for r in warm]
    lines.append(f"load average (1 min) during the run: {min(loads):.1f} to {max(loads):.1f}")
    return lines


def read_csv(path: str) -> list[dict[str, Any]]:
    with Path(path).open(newline="") as f:
        return list(csv.DictReader(f))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float)
    parser.add_argument(
        "--from-csv", help="summarize and plot the CSV of an earlier run instead of running"
    )
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--gateways", type=int, default=1)
    parser.add_argument("--run-seconds", type=float, default=2.0)
    parser.add_argument("--share", type=float, default=0.5)
    parser.add_argument("--spread", type=float, default=5.0)
    parser.add_argument("--upload-share", type=float, default=0.2)
    parser.add_argument("--every", type=float, default=60.0, help="seconds between bursts")
    parser.add_argument("--csv", default="soak.csv")
    parser.add_argument("--png", default="docs/images/soak.png")
    args = parser.parse_args()
    if args.from_csv:
        rows = read_csv(args.from_csv)
    elif args.minutes:
        rows = asyncio.run(soak(args))
    else:
        parser.error("give --minutes M (or --from-csv FILE)")
    if rows:
        plot(rows, args.png)
        print("\n".join(summarize(rows)))
    errors = int(rows[-1]["errors"]) if rows else 0
    print(f"{len(rows)} samples; errors {errors}; plot {args.png}; csv {args.csv}")
    if errors:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
