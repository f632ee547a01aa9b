"""The platform API end to end over HTTP: submit, see, cancel, steer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from comfy_multi.worker.channel import Channel

from ..conftest import Gateway, Person
from .conftest import PROMPT


async def test_submit_list_get_and_cancel(
    gateway: Gateway, people: dict[str, Person], channel: Channel
) -> None:
    async with gateway.client(auth=people["alice"].auth) as alice:
        r = await alice.post("/api/v1/jobs", json={"prompt": PROMPT})
        assert r.status_code == 201, r.text
        job = r.json()
        assert job["state"] == "pending"
        assert job["cls"] == 5
        assert job["user"] == "alice"
        r = await alice.get(f"/api/v1/jobs/{job['id']}")
        assert r.json()["position"] == 0
        assert r.json()["prompt"] == PROMPT
        listed = (await alice.get("/api/v1/jobs")).json()
        assert [j["id"] for j in listed["jobs"]] == [job["id"]]
        r = await alice.post(f"/api/v1/jobs/{job['id']}/cancel")
        assert r.json()["cancelled"] is True
        assert r.json()["job"]["state"] == "cancelled"
        r = await alice.post(f"/api/v1/jobs/{job['id']}/cancel")
        assert r.json()["cancelled"] is False


async def test_instructor_jobs_go_first(
    gateway: Gateway, people: dict[str, Person], channel: Channel
) -> None:
    async with (
        gateway.client(auth=people["alice"].auth) as alice,
        gateway.client(auth=people["teacher"].auth) as teacher,
    ):
        await alice.post("/api/v1/jobs", json={"prompt": PROMPT})
        demo = (await teacher.post("/api/v1/jobs", json={"prompt": PROMPT})).json()
        assert demo["cls"] == 1
        claimed = await channel.claim(0)
        assert claimed is not None
        assert claimed.job_id == demo["id"]


async def test_participants_see_only_their_own(
    gateway: Gateway, people: dict[str, Person], channel: Channel
) -> None:
    async with (
        gateway.client(auth=people["alice"].auth) as alice,
        gateway.client(auth=people["bob"].auth) as bob,
        gateway.client(auth=people["teacher"].auth) as teacher,
    ):
        a = (await alice.post("/api/v1/jobs", json={"prompt": PROMPT})).json()
        b = (await bob.post("/api/v1/jobs", json={"prompt": PROMPT})).json()
        assert [j["id"] for j in (await bob.get("/api/v1/jobs")).json()["jobs"]] == [b["id"]]
        assert [j["id"] for j in (await bob.get("/api/v1/jobs?user=alice")).json()["jobs"]] == [
            b["id"]
        ]
        for method, path in (("GET", ""), ("POST", "/cancel")):
            r = await bob.request(method, f"/api/v1/jobs/{a['id']}{path}")
            assert r.status_code == 404
            assert "does not exist" in r.json()["message"]
        queue = (await bob.get("/api/v1/queue")).json()
        assert [j["id"] for j in queue["pending"]] == [b["id"]]
        assert queue["pending_total"] == 2
        everyone = (await teacher.get("/api/v1/jobs")).json()["jobs"]
        assert {j["id"] for j in everyone} == {a["id"], b["id"]}
        assert (await alice.get(f"/api/v1/jobs/{a['id']}")).status_code == 200


async def test_admin_steers_the_queue(
    gateway: Gateway, people: dict[str, Person], channel: Channel
) -> None:
    async with (
        gateway.client(auth=people["teacher"].auth) as teacher,
        gateway.client(auth=people["alice"].auth) as alice,
        gateway.client(auth=people["bob"].auth) as bob,
    ):
        first = (await alice.post("/api/v1/jobs", json={"prompt": PROMPT})).json()
        second = (await bob.post("/api/v1/jobs", json={"prompt": PROMPT})).json()
        r = await teacher.post(f"/api/v1/jobs/{second['id']}/front")
        assert r.status_code == 200, r.text
        order = [j["id"] for j in (await teacher.get("/api/v1/queue")).json()["pending"]]
        assert order == [second["id"], first["id"]]
        r = await teacher.post(f"/api/v1/jobs/{second['id']}/class", json={"priority_class": 8})
        assert r.json()["cls"] == 8
        order = [j["id"] for j in (await teacher.get("/api/v1/queue")).json()["pending"]]
        assert order == [first["id"], second["id"]]
        assert (await teacher.post("/api/v1/queue/pause")).json()["paused"] is True
        assert await channel.claim(0) is None
        assert (await teacher.post("/api/v1/queue/resume")).json()["paused"] is False
        assert (await teacher.put("/api/v1/queue/mode", json={"mode": "fifo"})).json()[
            "mode"
        ] == "fifo"
        r = await teacher.put("/api/v1/users/alice/cap", json={"cap": 1})
        assert r.status_code == 200
        r = await alice.post("/api/v1/jobs", json={"prompt": PROMPT})
        assert r.status_code == 429
        assert r.json()["message"] == (
            "You already have 1 job waiting, the most allowed per person. "
            "Wait for it to finish, or cancel it."
        )
        r = await teacher.post("/api/v1/users/alice/cancel-pending")
        assert r.json() == {"cancelled": 1}


async def test_users_and_workers_admin(
    gateway: Gateway, people: dict[str, Person], channel: Channel
) -> None:
    async with gateway.client(auth=people["teacher"].auth) as teacher:
        r = await teacher.post("/api/v1/users", json={"name": "dave"})
        assert r.status_code == 201
        password = r.json()["password"]
        async with gateway.client(auth=("dave", password)) as dave:
            assert (await dave.get("/api/v1/me")).json() == {"name": "dave", "admin": False}
        r = await teacher.post("/api/v1/users/dave/password", json={})
        assert r.json()["password"] != password
        async with gateway.client(auth=("dave", password)) as dave:
            assert (await dave.get("/api/v1/me")).status_code == 401
        removed = await teacher.delete("/api/v1/users/dave")
        assert removed.status_code == 200, removed.text
        assert removed.json()["summary"].startswith("removed dave")
        assert "dave" not in [u["name"] for u in (await teacher.get("/api/v1/users")).json()]
        workers = (await teacher.get("/api/v1/workers")).json()
        assert [w["worker_id"] for w in workers] == ["fake-1"]
        assert workers[0]["state"] == "idle"
        r = await teacher.post("/api/v1/workers/fake-1/drain", json={"drain": True})
        assert r.json()["draining"] is True


async def test_login_sets_a_session_cookie(gateway: Gateway, people: dict[str, Person]) -> None:
    async with gateway.client() as browser:
        r = await browser.post("/api/v1/login", json={"name": "alice", "password": "nope"})
        assert r.status_code == 401
        r = await browser.post("/api/v1/login", json={"name": "alice", "password": "alice-pw"})
        assert r.status_code == 200
        assert r.json()["home"] == "/u/alice/"
        assert (await browser.get("/api/v1/me")).json()["name"] == "alice"
        await browser.post("/api/v1/logout")
        browser.cookies.clear()
        assert (await browser.get("/api/v1/me")).status_code == 401


async def test_api_tokens_and_openapi(gateway: Gateway, people: dict[str, Person]) -> None:
    async with gateway.client(auth=people["bob"].auth) as bob:
        token = (await bob.post("/api/v1/tokens")).json()["token"]
    async with gateway.client(headers={"Authorization": f"Bearer {token}"}) as script:
        assert (await script.get("/api/v1/me")).json()["name"] == "bob"
        spec: dict[str, Any] = (await script.get("/api/v1/openapi.json")).json()
    assert "/api/v1/jobs" in spec["paths"]
    assert not any(p.startswith("/worker") for p in spec["paths"])


async def test_health(gateway: Gateway, channel: Channel) -> None:
    async with gateway.client() as anyone:
        body = (await anyone.get("/health")).json()
    assert body["status"] == "ok"
    assert body["workers_online"] == 1


@pytest.mark.slow
async def test_a_room_pressing_run_in_the_same_second(
    gateway: Gateway, aredis: Any, channel: Channel
) -> None:
    """Twenty people submit three jobs each at once: nothing is lost, and the
    first twenty dispatched belong to twenty different people."""
    from comfy_multi.services.users import UserStore
    from tests.conftest import TEST_HASHER

    store = UserStore(aredis, hasher=TEST_HASHER)
    names = [f"p{i:02d}" for i in range(20)]
    for name in names:
        await store.add(name, "pw-" + name)

    async def press_run(name: str) -> list[str]:
        async with gateway.client(auth=(name, "pw-" + name)) as c:
            replies = await asyncio.gather(
                *(c.post("/api/v1/jobs", json={"prompt": PROMPT}) for _ in range(3))
            )
        assert [r.status_code for r in replies] == [201, 201, 201]
        return [r.json()["id"] for r in replies]

    ids = [i for batch in await asyncio.gather(*(press_run(n) for n in names)) for i in batch]
    assert len(set(ids)) == 60
    owners = []
    while (job := await channel.claim(0)) is not None:
        owners.append(job.user)
        await channel.complete(job, {}, {})
    assert len(owners) == 60
    assert sorted(owners[:20]) == names
    assert sorted(owners[20:40]) == names
