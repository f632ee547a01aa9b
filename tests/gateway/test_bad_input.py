"""Bad requests get a clear 4xx, and the gateway keeps serving afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from comfy_multi.worker.channel import Channel

from ..conftest import Gateway, Person
from .conftest import PROMPT


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b'{"prompt": {}, "surprise": 1}', 422, "surprise"),
        (b'{"extra_data": {}}', 422, "prompt"),
        (b'{"prompt": {"1": {"class_type": "Nope"}}}', 400, "node Nope does not exist"),
        (b'{"prompt": {"1": {"class_type": "EmptyImage"}}}', 400, "Prompt has no outputs"),
        (
            b'{"prompt": ' + str(PROMPT).replace("'", '"').encode() + b', "priority_class": 42}',
            400,
            "0 (most urgent) to 9",
        ),
        (
            b'{"prompt": ' + str(PROMPT).replace("'", '"').encode() + b', "priority_class": 1}',
            403,
            "only the instructor",
        ),
    ],
)
async def test_bad_submits(
    gateway: Gateway,
    people: dict[str, Person],
    channel: Channel,
    body: bytes,
    status: int,
    says: str,
) -> None:
    async with gateway.client(auth=people["alice"].auth) as alice:
        r = await alice.post(
            "/api/v1/jobs", content=body, headers={"Content-Type": "application/json"}
        )
        assert r.status_code == status, r.text
        assert says in r.text
        assert (await alice.post("/api/v1/jobs", json={"prompt": PROMPT})).status_code == 201


async def test_huge_bodies_are_refused_before_reading(
    gateway: Gateway, people: dict[str, Person]
) -> None:
    huge = b'{"prompt": {"x": "' + b"a" * (gateway.settings.max_body_bytes + 10) + b'"}}'
    async with gateway.client(auth=people["alice"].auth) as alice:
        r = await alice.post(
            "/api/v1/jobs", content=huge, headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 413
        assert "bytes allowed" in r.json()["message"]

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
            for _ in range(10):
                yield b"a" * (gateway.settings.max_body_bytes // 5)

        r = await alice.post(
            "/api/v1/jobs", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 413
        assert (await alice.get("/api/v1/me")).status_code == 200


async def test_no_worker_yet_is_explained(gateway: Gateway, people: dict[str, Person]) -> None:
    async with gateway.client(auth=people["alice"].auth) as alice:
        r = await alice.post("/api/v1/jobs", json={"prompt": PROMPT})
    assert r.status_code == 503
    assert "No GPU worker has connected yet" in r.json()["message"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/users"),
        ("POST", "/api/v1/queue/pause"),
        ("POST", "/api/v1/queue/resume"),
        ("PUT", "/api/v1/queue/mode"),
        ("PUT", "/api/v1/queue/cap"),
        ("POST", "/api/v1/users"),
        ("DELETE", "/api/v1/users/bob"),
        ("POST", "/api/v1/users/bob/password"),
        ("PUT", "/api/v1/users/bob/cap"),
        ("POST", "/api/v1/users/bob/cancel-pending"),
        ("GET", "/api/v1/workers"),
        ("POST", "/api/v1/workers/fake-1/drain"),
        ("POST", "/api/v1/broadcast"),
        ("POST", "/api/v1/jobs/some-id/front"),
        ("POST", "/api/v1/jobs/some-id/class"),
    ],
)
async def test_admin_routes_need_the_admin_role(
    gateway: Gateway, people: dict[str, Person], method: str, path: str
) -> None:
    async with gateway.client() as nobody:
        assert (await nobody.request(method, path, json={})).status_code == 401
    async with gateway.client(auth=people["alice"].auth) as alice:
        r = await alice.request(method, path, json={})
        assert r.status_code == 403
        assert "instructor" in r.json()["message"]


async def test_bad_credentials_and_unknown_things(
    gateway: Gateway, people: dict[str, Person]
) -> None:
    async with gateway.client(auth=("alice", "wrong")) as wrong:
        r = await wrong.get("/api/v1/me")
        assert r.status_code == 401
        assert r.json()["message"] == "Wrong name or password"
    async with gateway.client(headers={"Authorization": "Basic !!!"}) as garbled:
        assert (await garbled.get("/api/v1/me")).status_code == 401
    async with gateway.client(auth=people["teacher"].auth) as teacher:
        r = await teacher.get("/api/v1/jobs/not-a-job")
        assert r.status_code == 404
        assert "does not exist" in r.json()["message"]
        r = await teacher.post("/api/v1/users", json={"name": "Bad Name!"})
        assert r.status_code == 400
        assert "not a usable name" in r.json()["message"]
        r = await teacher.post("/api/v1/users", json={"name": "alice"})
        assert r.status_code == 409
        r = await teacher.put("/api/v1/queue/mode", json={"mode": "random"})
        assert r.status_code == 422
        assert "mode" in r.json()["message"]
        r = await teacher.get("/api/v1/jobs?limit=0")
        assert r.status_code == 422
        assert (await teacher.get("/nowhere")).status_code == 404
