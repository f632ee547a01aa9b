"""/metrics: gauges read from the queue, histograms folded once per finished job."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from comfy_multi.queue import tallies
from tests.admin.helpers import ScriptedWorker, basic, submit
from tests.conftest import Gateway, Person

Clients = dict[str, httpx.AsyncClient]
StartWorker = Callable[[str], Awaitable[ScriptedWorker]]


async def scrape(gateway: Gateway) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with gateway.client() as client:
        r = await client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


async def test_queue_gauges(gateway: Gateway, clients: Clients, workers: StartWorker) -> None:
    worker = await workers("gpu-a")
    await workers("gpu-b")
    for name in ("alice", "bob", "carol"):
        await submit(clients[name])
    await submit(clients["teacher"])  # the instructor queues in class 1
    assert (await scrape(gateway))[("comfy_multi_queue_depth", (("class", "1"),))] == 1
    claimed = await worker.claim()
    assert claimed is not None
    assert claimed.user == "teacher"  # class 1 goes first
    m = await scrape(gateway)
    assert value(m, "comfy_multi_queue_depth", **{"class": "5"}) == 3
    assert value(m, "comfy_multi_queue_depth", **{"class": "1"}) == 0
    assert value(m, "comfy_multi_queue_depth", **{"class": "0"}) == 0
    assert value(m, "comfy_multi_jobs", state="pending") == 3
    assert value(m, "comfy_multi_jobs", state="running") == 1
    assert value(m, "comfy_multi_workers_online") == 2
    assert value(m, "comfy_multi_workers", state="busy") == 1
    assert value(m, "comfy_multi_workers", state="idle") == 1
    assert value(m, "comfy_multi_users") == 4
    assert value(m, "comfy_multi_queue_paused") == 0
    # the runtime's own metrics come along
    assert any(name == "python_gc_objects_collected_total" for name, _ in m)


async def test_finished_jobs_fold_into_histograms_once(
    gateway: Gateway, clients: Clients, workers: StartWorker
) -> None:
    worker = await workers("gpu-a")
    for name in ("alice", "bob", "carol"):
        await submit(clients[name])
    done = await worker.claim()
    assert done is not None
    await worker.complete(done)
    failed = await worker.claim()
    assert failed is not None
    await worker.fail(failed)
    cancelled = await worker.claim()
    assert cancelled is not None
    r = await clients["teacher"].post(f"/api/v1/jobs/{cancelled.job_id}/cancel")
    assert r.status_code == 200

    # two replicas scraping at once must not count a job twice
    first, second = await asyncio.gather(scrape(gateway), scrape(gateway))
    again = await scrape(gateway)
    for m in (first, second, again):
        assert value(m, "comfy_multi_jobs_finished_total", state="done") == 1
        assert value(m, "comfy_multi_jobs_finished_total", state="failed") == 1
        assert value(m, "comfy_multi_jobs_finished_total", state="cancelled") == 1
        # all three started, so all three waited; only done and failed "ran"
        assert value(m, "comfy_multi_job_wait_seconds_count") == 3
        assert value(m, "comfy_multi_job_run_seconds_count") == 2
        assert value(m, "comfy_multi_job_run_seconds_bucket", le="+Inf") == 2
        assert value(m, "comfy_multi_job_wait_seconds_bucket", le="60.0") == 3


async def test_websocket_clients(
    gateway: Gateway, people: dict[str, Person], dashboard: Any
) -> None:
    url = gateway.url.replace("http://", "ws://") + "/u/bob/ws"
    async with connect(url, additional_headers={"Authorization": basic(people["bob"])}):
        m = await scrape(gateway)
    assert value(m, "comfy_multi_websocket_clients", kind="admin") == 1
    assert value(m, "comfy_multi_websocket_clients", kind="participant") == 1


def test_histogram_buckets() -> None:
    t = tallies.Tallies()
    t.add_job("done", queued=0 + 1, started=1_501, done=4_501)  # waited 1.5 s, ran 3 s
    t.add_job("failed", queued=1, started=30_001, done=30_101)  # waited 30 s, ran 0.1 s
    t.add_job("cancelled", queued=1, started=None, done=5_000)  # never started
    assert t.finished == {"done": 1, "failed": 1, "cancelled": 1}
    wait = dict(t.wait.cumulative())
    assert wait[1.0] == 0
    assert wait[2.0] == 1
    assert wait[30.0] == 2
    assert t.wait.count == 2
    assert t.wait.total == 31.5
    run = dict(t.run.cumulative())
    assert run[0.5] == 1
    assert run[5.0] == 2
    assert t.run.total == 3.1
    round_trip = tallies.Tallies.from_hash({k: str(v) for k, v in t.increments().items()})
    assert round_trip.wait.counts == t.wait.counts
    assert round_trip.run.total == t.run.total
    assert round_trip.finished == t.finished
