"""`/metrics` in Prometheus' text format, read from Redis at scrape time.

Gauges (queue depth, jobs, workers) come straight from the queue's own
structures, so every replica reports the same room; websocket clients are this
replica's. No metric carries a user name.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from fastapi import APIRouter, Response
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from starlette.requests import Request

from comfy_multi.admin.live import dashboards
from comfy_multi.admin.snapshot import open_pages
from comfy_multi.queue import room, tallies
from comfy_multi.services.auth import PlatformDep
from comfy_multi.services.platform import Platform

router = APIRouter(include_in_schema=False)

WORKER_STATES = ("idle", "busy", "draining", "offline")


@dataclass
class RoomValues:
    depth: dict[int, int]
    running: int
    paused: bool
    workers: dict[str, int]
    sockets_admin: int
    sockets_participant: int
    users: int
    done: tallies.Tallies


async def read_values(
    platform: Platform, admin_sockets: int, participant_sockets: int
) -> RoomValues:
    await tallies.fold(platform.redis)
    workers = dict.fromkeys(WORKER_STATES, 0)
    for w in await platform.workers.list():
        workers[w.state] = workers.get(w.state, 0) + 1
    return RoomValues(
        depth=await platform.views.depth(),
        running=await room.running_count(platform.redis),
        paused=(await platform.queue.config()).paused,
        workers=workers,
        sockets_admin=admin_sockets,
        sockets_participant=participant_sockets,
        users=await room.user_count(platform.redis),
        done=await tallies.read(platform.redis),
    )


def _le(bound: float) -> str:
    text: str = floatToGoString(bound)  # type: ignore[no-untyped-call]
    return text


def _histogram(name: str, doc: str, hist: tallies.Histogram) -> HistogramMetricFamily:
    buckets = [(_le(bound), float(n)) for bound, n in hist.cumulative()]
    return HistogramMetricFamily(name, doc, buckets=buckets, sum_value=hist.total)


class RoomCollector(Collector):
    """One scrape's values, already read from Redis (collectors are synchronous)."""

    def __init__(self, values: RoomValues) -> None:
        self.v = values

    def collect(self) -> Iterator[Metric]:
        v = self.v
        depth = GaugeMetricFamily(
            "comfy_multi_queue_depth", "Jobs waiting, per priority class", labels=["class"]
        )
        for cls in room.CLASSES:
            depth.add_metric([str(cls)], v.depth.get(cls, 0))
        yield depth
        yield GaugeMetricFamily(
            "comfy_multi_queue_paused", "1 while dispatch is paused", value=int(v.paused)
        )
        jobs = GaugeMetricFamily("comfy_multi_jobs", "Jobs not yet finished", labels=["state"])
        jobs.add_metric(["pending"], sum(v.depth.values()))
        jobs.add_metric(["running"], v.running)
        yield jobs
        finished = CounterMetricFamily(
            "comfy_multi_jobs_finished", "Jobs finished, by final state", labels=["state"]
        )
        for state, n in v.done.finished.items():
            finished.add_metric([state], n)
        yield finished
        yield _histogram(
            "comfy_multi_job_wait_seconds", "From queued to (last) started", v.done.wait
        )
        yield _histogram(
            "comfy_multi_job_run_seconds", "From started to done or failed", v.done.run
        )
        workers = GaugeMetricFamily("comfy_multi_workers", "GPU workers by state", labels=["state"])
        for state, n in v.workers.items():
            workers.add_metric([state], n)
        yield workers
        online = sum(n for state, n in v.workers.items() if state != "offline")
        yield GaugeMetricFamily("comfy_multi_workers_online", "GPU workers online", value=online)
        sockets = GaugeMetricFamily(
            "comfy_multi_websocket_clients",
            "Open websockets on this gateway: participants' pages and admin dashboards",
            labels=["kind"],
        )
        sockets.add_metric(["admin"], v.sockets_admin)
        sockets.add_metric(["participant"], v.sockets_participant)
        yield sockets
        yield GaugeMetricFamily("comfy_multi_users", "User accounts", value=v.users)


def exposition(values: RoomValues) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RoomCollector(values))
    # the default registry adds the process and Python runtime metrics
    return generate_latest(REGISTRY) + generate_latest(registry)


@router.get("/metrics")
async def metrics(request: Request, platform: PlatformDep) -> Response:
    pages = sum(open_pages(request)().values())
    values = await read_values(platform, dashboards(request.app).open, pages)
    return Response(exposition(values), media_type=CONTENT_TYPE_LATEST)
