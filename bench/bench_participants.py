"""Participants' websockets under load: gateway memory and event fan-out latency.

Starts its own room (`comfy-multi up` with its embedded Redis, in a scratch
data dir), signs in `--users` participants through POST /api/v1/login, opens
one /u/<name>/ws per participant (as the page does: feature flags, then the
extension's hello), queues one job per participant with that socket's sid as
client_id, and has `--workers` fake GPU workers claim the jobs through the
real worker channel and relay ComfyUI `progress` events at a steady
`--rate` in total (one POST per event, as a live worker relays them).

Reports the gateway's RSS (idle with every socket open, and the peak while
events stream) and the latency of each event from just before the worker's
POST to its arrival on the participant's socket (p50/p95/p99); for
comparison also the worker's own POST round trip (`worker_post`): an event
usually reaches the browser before the worker has its 204.

    .venv/bin/python bench/bench_participants.py [--users 200] [--rate 200] [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from _harness import (
    PROMPT,
    Conn,
    Platform,
    add_users,
    percentiles,
    platform,
    register_worker,
)
from websockets.asyncio.client import ClientConnection, connect

LOGIN_CONCURRENCY = 4  # argon2 runs in the gateway's threads; more only queues


@dataclass
class Participant:
    name: str
    cookie: str
    port: int
    ws: ClientConnection | None = None
    link: Conn | None = None
    sid: str = ""
    received: int = 0


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    posts: list[float] = field(default_factory=list)  # the worker's POST, sent to answered
    sent: int = 0
    peak_rss_mb: float = 0.0
    stray: int = 0  # an event on a socket it was not meant for: must stay 0


async def sign_in(p: Platform, people: list[tuple[str, str]]) -> list[Participant]:
    gate = asyncio.Semaphore(LOGIN_CONCURRENCY)

    async def one(name: str, password: str) -> Participant:
        # a client of its own: a shared cookie jar would send the previous
        # person's cookie, and signing in ends the session it carries
        async with gate, httpx.AsyncClient(base_url=p.url, timeout=120) as http:
            r = await http.post("/api/v1/login", json={"name": name, "password": password})
            r.raise_for_status()
            return Participant(name, r.cookies["cm_session"], p.port)

    return list(await asyncio.gather(*(one(n, pw) for n, pw in people)))


async def open_socket(p: Platform, who: Participant) -> None:
    url = f"ws://127.0.0.1:{p.port}/u/{who.name}/ws"
    headers = {"Cookie": f"cm_session={who.cookie}", "Origin": p.url}
    who.ws = await connect(url, additional_headers=headers, max_queue=None)
    greeting = json.loads(await who.ws.recv())
    who.sid = greeting["data"]["sid"]
    await who.ws.send(
        json.dumps({"type": "feature_flags", "data": {"supports_preview_metadata": True}})
    )
    await who.ws.send(json.dumps({"type": "comfy_multi.hello", "data": {}}))


async def listen(who: Participant, stats: Stats) -> None:
    assert who.ws is not None
    async for frame in who.ws:
        now = time.perf_counter()
        if isinstance(frame, bytes):
            continue
        message = orjson.loads(frame)
        data = message.get("data") or {}
        if message["type"] == "progress" and "sent" in data:
            if data.get("user") != who.name:
                stats.stray += 1
            stats.latencies.append(now - data["sent"])
            who.received += 1


async def queue_job(who: Participant) -> None:
    if who.link is None:
        who.link = Conn(who.port, f"Cookie: cm_session={who.cookie}")
    status, body = await who.link.post(
        f"/u/{who.name}/api/prompt", {"prompt": PROMPT, "client_id": who.sid}
    )
    assert status == 200, body


async def register_workers(p: Platform, count: int) -> list[Conn]:
    token = p.cli("worker-token", "create", "bench-gpus").strip().splitlines()[-1]
    for i in range(count):
        await register_worker(p.url, token, f"bench-{i}")
    # the measured loop uses the lean client: it must cost less than the server
    return [Conn(p.port, f"Authorization: Bearer {token}") for _ in range(count)]


async def run_worker(
    link: Conn,
    index: int,
    people: dict[str, Participant],
    interval: float,
    per_job: int,
    until: float,
    stats: Stats,
) -> None:
    """Claim a job, relay `per_job` progress events one POST each, complete;
    then its participant queues another, so every socket keeps a job flowing."""
    worker_id = f"bench-{index}"
    tick = time.perf_counter()
    while time.perf_counter() < until:
        status, raw = await link.post(
            "/worker/v1/claim", {"worker_id": worker_id, "wait_seconds": 5}
        )
        if status == 204:
            continue
        job = orjson.loads(raw)
        lease = (str(job["lease_token"]), worker_id)
        events_url = f"/worker/v1/jobs/{job['job_id']}/events"
        for step in range(per_job):
            tick = max(
                tick + interval, time.perf_counter() - interval
            )  # steady, no catch-up bursts
            delay = tick - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            data = {"prompt_id": job["job_id"], "node": "2", "value": step + 1, "max": per_job}
            sent = time.perf_counter()
            data.update(user=job["user"], sent=sent)
            await link.post(events_url, {"events": [{"type": "progress", "data": data}]}, lease)
            stats.posts.append(time.perf_counter() - sent)
            stats.sent += 1
        await link.post(f"/worker/v1/jobs/{job['job_id']}/complete", {"outputs": {}}, lease)
        await queue_job(people[job["user"]])


async def watch_memory(p: Platform, stats: Stats, until: float) -> None:
    while time.perf_counter() < until:
        stats.peak_rss_mb = max(stats.peak_rss_mb, p.rss_mb())
        await asyncio.sleep(0.25)


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    with platform() as p:
        people = await sign_in(p, add_users(p, args.users))
        for who in people:
            await open_socket(p, who)
        stats = Stats()
        listeners = [asyncio.create_task(listen(who, stats)) for who in people]
        await asyncio.sleep(2)  # let the greetings and place messages settle before measuring
        idle_rss = p.rss_mb()
        workers = await register_workers(p, args.workers)
        for who in people:
            await queue_job(who)
        by_name = {who.name: who for who in people}
        start = time.perf_counter()
        gateway_cpu, own_cpu = cpu_seconds(p.process.pid), time.process_time()
        until = start + args.seconds
        interval = args.workers / args.rate
        tasks = [
            asyncio.create_task(
                run_worker(w, i, by_name, interval, args.events_per_job, until, stats)
            )
            for i, w in enumerate(workers)
        ]
        tasks.append(asyncio.create_task(watch_memory(p, stats, until)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
        gateway_cpu = cpu_seconds(p.process.pid) - gateway_cpu
        own_cpu = time.process_time() - own_cpu
        await asyncio.sleep(1)  # the last events in flight
        for task in listeners:
            task.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)
        for who in people:
            assert who.ws is not None
            await who.ws.close()
        for w in workers:
            await w.close()
        for who in people:
            if who.link is not None:
                await who.link.close()
        return {
            "users": args.users,
            "sockets_open": sum(1 for w in people if w.ws is not None),
            "events_sent": stats.sent,
            "events_received": len(stats.latencies),
            "rate_per_s": round(stats.sent / elapsed, 1),
            "participants_reached": sum(1 for w in people if w.received),
            "stray_events": stats.stray,
            "gateway_cpu_pct": round(100 * gateway_cpu / elapsed, 1),
            "load_generator_cpu_pct": round(100 * own_cpu / elapsed, 1),
            "load_average_1m": round(os.getloadavg()[0], 2),
            "rss_idle_mb": round(idle_rss, 1),
            "rss_peak_mb": round(max(stats.peak_rss_mb, idle_rss), 1),
            **percentiles(stats.latencies),
            "worker_post": percentiles(stats.posts),
        }


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--workers", type=int, default=8, help="fake GPU workers relaying events")
    parser.add_argument(
        "--rate", type=float, default=200.0, help="events per second, all workers together"
    )
    parser.add_argument("--events-per-job", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0)
    result = asyncio.run(bench(parser.parse_args()))
    print(json.dumps(result, indent=2))
    goal_rss, goal_p99 = 200.0, 20.0
    print(
        f"\nRSS peak {result['rss_peak_mb']} MB (goal < {goal_rss:.0f}), "
        f"fan-out p50 {result['p50_ms']} ms / p99 {result['p99_ms']} ms (goal p99 < {goal_p99:.0f})"
    )


if __name__ == "__main__":
    main()
