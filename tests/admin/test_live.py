"""The dashboard's websocket: the snapshot, live updates, and coalescing."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin

from comfy_multi.admin.live import FLUSH_INTERVAL_S, ROOM_PERIOD_S
from tests.admin.helpers import Dashboard, ScriptedWorker, basic, open_dashboard, submit, ws_url
from tests.conftest import Gateway, Person

Clients = dict[str, httpx.AsyncClient]
StartWorker = Callable[[str], Awaitable[ScriptedWorker]]


async def test_snapshot_shows_the_room(
    gateway: Gateway, people: dict[str, Person], clients: Clients, workers: StartWorker
) -> None:
    await workers("gpu-a")
    for name in ("alice", "bob", "alice"):
        await submit(clients[name])
    dash = await open_dashboard(gateway, people["teacher"])
    try:
        first = dash.messages[0]
        assert first["t"] == "snapshot"
        assert first["me"] == {"name": "teacher", "admin": True}
        # fair mode: alice, bob, then alice's second job
        assert dash.users_of(dash.pending) == ["alice", "bob", "alice"]
        assert dash.config["mode"] == "fair"
        assert dash.config["paused"] is False
        assert [w["worker_id"] for w in dash.workers] == ["gpu-a"]
        assert dash.workers[0]["models_count"] == 2
        rows = {u["name"]: u for u in dash.room["users"]}
        assert rows["alice"]["pending"] == 2
        assert rows["bob"]["pending"] == 1
        assert rows["alice"]["last_active_ms"] is not None
        assert rows["carol"]["last_active_ms"] is None
    finally:
        await dash.socket.close()


async def test_jobs_appear_start_progress_and_finish_live(
    dashboard: Dashboard, clients: Clients, workers: StartWorker
) -> None:
    worker = await workers("gpu-a")
    await dashboard.until(lambda d: d.workers)
    job = await submit(clients["alice"])
    await dashboard.until(lambda d: d.pending == [job["id"]])
    assert dashboard.jobs[job["id"]]["user"] == "alice"
    assert dashboard.jobs[job["id"]]["cls"] == 5

    claimed = await worker.claim()
    assert claimed is not None
    await dashboard.until(lambda d: d.running == [job["id"]] and not d.pending)
    assert dashboard.jobs[job["id"]]["worker"] == "gpu-a"
    await dashboard.until(
        lambda d: d.workers[0]["state"] == "busy" and d.workers[0]["current_job"] == job["id"]
    )

    await worker.progress(claimed, 3, 10)
    await dashboard.until(lambda d: d.progress.get(job["id"]) == {"value": 3, "max": 10})

    await worker.complete(claimed)
    await dashboard.until(lambda d: d.finished == [job["id"]] and not d.running)
    row = dashboard.jobs[job["id"]]
    assert row["state"] == "done"
    assert row["finished_ms"] >= row["started_ms"] >= row["queued_ms"]
    await dashboard.until(lambda d: d.workers[0]["jobs_done"] == 1)


async def test_failure_reason_reaches_the_dashboard(
    dashboard: Dashboard, clients: Clients, workers: StartWorker
) -> None:
    worker = await workers("gpu-a")
    job = await submit(clients["bob"])
    claimed = await worker.claim()
    assert claimed is not None
    await worker.fail(claimed, "CUDA out of memory")
    await dashboard.until(lambda d: d.finished == [job["id"]])
    assert dashboard.jobs[job["id"]]["state"] == "failed"
    assert dashboard.jobs[job["id"]]["error"] == "SaveImage: CUDA out of memory"
    await dashboard.until(lambda d: d.workers and d.workers[0]["failures"] == 1)


async def test_actions_through_the_api_show_up(
    dashboard: Dashboard, clients: Clients, workers: StartWorker
) -> None:
    await workers("gpu-a")
    jobs = [await submit(clients[name]) for name in ("alice", "alice", "bob", "carol")]
    await dashboard.until(lambda d: len(d.pending) == 4)
    admin = clients["teacher"]

    last = jobs[-1]["id"]
    assert (await admin.post(f"/api/v1/jobs/{last}/front")).status_code == 200
    await dashboard.until(lambda d: d.pending[0] == last)

    assert (await admin.post(f"/api/v1/jobs/{jobs[0]['id']}/cancel")).status_code == 200
    await dashboard.until(lambda d: jobs[0]["id"] not in d.pending)
    assert dashboard.jobs[jobs[0]["id"]]["state"] == "cancelled"

    r = await admin.post(f"/api/v1/jobs/{jobs[2]['id']}/class", json={"priority_class": 2})
    assert r.status_code == 200
    await dashboard.until(lambda d: d.pending[0] == jobs[2]["id"])
    assert dashboard.jobs[jobs[2]["id"]]["cls"] == 2

    assert (await admin.post("/api/v1/queue/pause")).status_code == 200
    await dashboard.until(lambda d: d.config["paused"] is True)
    assert (await admin.put("/api/v1/queue/mode", json={"mode": "fifo"})).status_code == 200
    await dashboard.until(lambda d: d.config["mode"] == "fifo")

    r = await admin.post("/api/v1/broadcast", json={"message": "lunch break"})
    assert r.status_code == 204
    await dashboard.until(lambda d: d.config["broadcast"] == "lunch break")


async def test_order_matches_the_scheduler(
    dashboard: Dashboard, clients: Clients, workers: StartWorker
) -> None:
    worker = await workers("gpu-a")
    for name in ("alice", "alice", "alice", "bob", "carol", "bob"):
        await submit(clients[name])
    await dashboard.until(lambda d: len(d.pending) == 6)
    predicted = list(dashboard.pending)
    claimed = []
    while (job := await worker.claim()) is not None:
        claimed.append(job.job_id)
        await worker.complete(job)
    assert claimed == predicted


async def test_room_changes_without_events_arrive_on_request(
    dashboard: Dashboard, clients: Clients
) -> None:
    admin = clients["teacher"]
    assert (await admin.put("/api/v1/users/bob/cap", json={"cap": 3})).status_code == 200
    r = await admin.post("/api/v1/users", json={"name": "dave"})
    assert r.status_code == 201
    await dashboard.refresh("room")

    def bob_cap(d: Dashboard) -> bool:
        users = {u["name"]: u for u in d.room["users"]}
        return "dave" in users and users["bob"]["cap"] == 3

    await dashboard.until(bob_cap)


async def test_bursts_are_coalesced(
    dashboard: Dashboard, clients: Clients, workers: StartWorker
) -> None:
    await workers("gpu-a")
    await dashboard.until(lambda d: d.workers)
    before = len(dashboard.messages)
    client = clients["alice"]
    for _ in range(15):
        await submit(client)
    await dashboard.until(lambda d: len(d.pending) == 15)
    updates = dashboard.messages[before:]
    # 15 submissions, each a round trip: far fewer updates than events
    assert len(updates) < 15
    gaps = [b["now"] - a["now"] for a, b in itertools.pairwise(updates)]
    assert all(gap >= FLUSH_INTERVAL_S * 1000 * 0.8 for gap in gaps), gaps


@pytest.mark.parametrize("who", ["alice", None])
async def test_socket_refuses_all_but_admins(
    gateway: Gateway, people: dict[str, Person], who: str | None
) -> None:
    headers = {"Authorization": basic(people[who])} if who else {}
    with pytest.raises(InvalidStatus) as refused:
        async with connect(ws_url(gateway), additional_headers=headers):
            pass
    assert refused.value.response.status_code == 403


async def test_socket_refuses_another_origin(gateway: Gateway, people: dict[str, Person]) -> None:
    headers = {"Authorization": basic(people["teacher"])}
    with pytest.raises(InvalidStatus) as refused:
        async with connect(
            ws_url(gateway), additional_headers=headers, origin=Origin("http://evil.example")
        ):
            pass
    assert refused.value.response.status_code == 403


@pytest.mark.slow
async def test_open_participant_pages_show_as_online(
    gateway: Gateway, people: dict[str, Person], dashboard: Dashboard
) -> None:
    def pages(d: Dashboard) -> dict[str, int]:
        return {u["name"]: u["pages"] for u in d.room["users"]}

    assert pages(dashboard)["alice"] == 0
    url = gateway.url.replace("http://", "ws://") + "/u/alice/ws"
    headers = {"Authorization": basic(people["alice"])}
    async with connect(url, additional_headers=headers), connect(url, additional_headers=headers):
        # nothing announces a page opening: the room is re-read every few seconds
        await dashboard.until(lambda d: pages(d)["alice"] == 2, within=ROOM_PERIOD_S + 5)
        assert pages(dashboard)["bob"] == 0
    await dashboard.until(lambda d: pages(d)["alice"] == 0, within=ROOM_PERIOD_S + 5)
