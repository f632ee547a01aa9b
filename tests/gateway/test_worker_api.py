"""The worker channel: tokens, long-poll claims, fencing, files, heartbeats."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx

from comfy_multi.services.users import UserStore

from ..conftest import Gateway, Person, wait_for
from .conftest import PROMPT, FakeWorker


async def test_only_worker_tokens_open_the_channel(
    gateway: Gateway, people: dict[str, Person]
) -> None:
    async with gateway.client(auth=people["teacher"].auth) as teacher:
        r = await teacher.post("/worker/v1/claim", json={"worker_id": "x"})
        assert r.status_code == 401
    async with gateway.client(headers={"Authorization": "Bearer cmw_forged"}) as forged:
        r = await forged.post("/worker/v1/claim", json={"worker_id": "x"})
        assert r.status_code == 401
        assert "worker token" in r.json()["message"]


async def test_unregistered_worker_is_told_to_register(gateway: Gateway, worker_token: str) -> None:
    async with gateway.client(headers={"Authorization": f"Bearer {worker_token}"}) as client:
        r = await client.post("/worker/v1/claim", json={"worker_id": "ghost"})
        assert r.status_code == 404
        assert "not registered" in r.json()["message"]


async def test_long_poll_answers_when_a_job_arrives(
    gateway: Gateway, people: dict[str, Person], fake_worker: FakeWorker
) -> None:
    started = time.monotonic()
    claim = asyncio.create_task(fake_worker.claim(wait=20))
    await asyncio.sleep(0.3)
    assert not claim.done()
    async with gateway.client(auth=people["alice"].auth) as alice:
        job = (await alice.post("/api/v1/jobs", json={"prompt": PROMPT})).json()
    got = await asyncio.wait_for(claim, timeout=5)
    assert got is not None
    assert got["job_id"] == job["id"]
    assert got["prompt"] == PROMPT
    assert time.monotonic() - started < 5


async def test_empty_long_poll_times_out_with_204(fake_worker: FakeWorker) -> None:
    started = time.monotonic()
    assert await fake_worker.claim(wait=0.5) is None
    assert 0.4 < time.monotonic() - started < 5


async def test_job_lifecycle_and_fencing(
    gateway: Gateway, people: dict[str, Person], fake_worker: FakeWorker
) -> None:
    async with gateway.client(auth=people["alice"].auth) as alice:
        job_id = (await alice.post("/api/v1/jobs", json={"prompt": PROMPT})).json()["id"]
        job = await fake_worker.claim()
        assert job is not None
        lease = fake_worker.lease(job)
        w = fake_worker.client
        r = await w.post(
            f"/worker/v1/jobs/{job_id}/events",
            json={"events": [{"type": "progress", "data": {"value": 1, "max": 2}}]},
            headers=lease,
        )
        assert r.status_code == 204
        r = await w.put(
            f"/worker/v1/jobs/{job_id}/outputs?filename=ComfyUI_00001_.png",
            content=b"\x89PNG-bytes",
            headers=lease,
        )
        assert r.json() == {"filename": "ComfyUI_00001_.png", "subfolder": "", "type": "output"}
        again = await w.put(
            f"/worker/v1/jobs/{job_id}/outputs?filename=ComfyUI_00001_.png",
            content=b"other",
            headers=lease,
        )
        assert again.json()["filename"] == "ComfyUI_00001__1.png"  # never overwrites
        out = Path(gateway.settings.users_dir / "alice" / "output" / "ComfyUI_00001_.png")
        assert out.read_bytes() == b"\x89PNG-bytes"  # noqa: ASYNC240
        bad = {**lease, "X-Lease-Token": job["lease_token"] + "x"}
        r = await w.post(f"/worker/v1/jobs/{job_id}/complete", json={"outputs": {}}, headers=bad)
        assert r.status_code == 409
        assert r.json()["error"] == "lease_lost"
        outputs = {
            "2": {"images": [{"filename": "ComfyUI_00001_.png", "subfolder": "", "type": "output"}]}
        }
        assert (await fake_worker.complete(job, outputs)).status_code == 204
        assert (await fake_worker.complete(job, outputs)).status_code == 409
        done = (await alice.get(f"/api/v1/jobs/{job_id}")).json()
        assert done["state"] == "done"
        assert done["outputs"] == outputs


async def test_cancel_reaches_the_worker_through_heartbeat(
    gateway: Gateway, people: dict[str, Person], fake_worker: FakeWorker
) -> None:
    async with gateway.client(auth=people["alice"].auth) as alice:
        job_id = (await alice.post("/api/v1/jobs", json={"prompt": PROMPT})).json()["id"]
        job = await fake_worker.claim()
        assert job is not None
        await alice.post(f"/api/v1/jobs/{job_id}/cancel")
    r = await fake_worker.client.post(
        "/worker/v1/heartbeat",
        json={
            "worker_id": "fake-1",
            "jobs": [{"job_id": job_id, "lease_token": job["lease_token"]}],
        },
    )
    assert r.json() == {"cancel": [job_id], "lease_lost": [job_id], "drain": False}
    r = await fake_worker.client.post(
        f"/worker/v1/jobs/{job_id}/events", json={"events": []}, headers=fake_worker.lease(job)
    )
    assert r.status_code == 409
    assert "cancelled" in r.json()["message"]


async def test_inputs_are_served_only_for_the_job(
    gateway: Gateway, people: dict[str, Person], fake_worker: FakeWorker
) -> None:
    folder = gateway.settings.users_dir / "alice" / "input"
    folder.mkdir(parents=True)
    (folder / "cat.png").write_bytes(b"cat")
    (folder / "secret.png").write_bytes(b"secret")
    prompt = {
        **PROMPT,
        "3": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "x": "cat.png"}},
    }
    async with gateway.client(auth=people["alice"].auth) as alice:
        job_id = (await alice.post("/api/v1/jobs", json={"prompt": prompt})).json()["id"]
    job = await fake_worker.claim()
    assert job is not None
    assert job["inputs"] == [
        {"filename": "cat.png", "subfolder": "", "type": "input", "ref": "cat.png"}
    ]
    w, lease = fake_worker.client, fake_worker.lease(job)
    r = await w.get(f"/worker/v1/jobs/{job_id}/inputs?filename=cat.png", headers=lease)
    assert r.content == b"cat"
    r = await w.get(f"/worker/v1/jobs/{job_id}/inputs?filename=secret.png", headers=lease)
    assert r.status_code == 404
    r = await w.get(
        f"/worker/v1/jobs/{job_id}/inputs?filename=cat.png",
        headers={**lease, "X-Lease-Token": "0"},
    )
    assert r.status_code == 409


async def test_output_size_limit(
    gateway: Gateway, people: dict[str, Person], worker_token: str
) -> None:
    gateway.settings.max_output_bytes = 1000  # read per request
    async with httpx.AsyncClient(
        base_url=gateway.url, headers={"Authorization": f"Bearer {worker_token}"}
    ) as c:
        worker = FakeWorker(c, "small")
        await worker.register()
        async with gateway.client(auth=people["alice"].auth) as alice:
            await alice.post("/api/v1/jobs", json={"prompt": PROMPT})
        job = await worker.claim()
        assert job is not None
        r = await c.put(
            f"/worker/v1/jobs/{job['job_id']}/outputs?filename=big.bin",
            content=b"x" * 5000,
            headers=worker.lease(job),
        )
        assert r.status_code == 413
        assert not any((gateway.settings.users_dir / "alice" / "output").glob("big*"))


async def test_worker_shows_offline_when_silent(
    gateway: Gateway, people: dict[str, Person], fake_worker: FakeWorker
) -> None:
    async with gateway.client(auth=people["teacher"].auth) as teacher:

        async def offline() -> bool:
            workers = (await teacher.get("/api/v1/workers")).json()
            return bool(workers[0]["state"] == "offline")

        await wait_for(offline, timeout=10)


async def test_a_stopping_gateway_ends_long_polls_at_once(
    gateway: Gateway, fake_worker: FakeWorker
) -> None:
    """A restart must not wait for idle workers' long-polls to time out."""
    claim = asyncio.create_task(fake_worker.claim(wait=30))
    await asyncio.sleep(0.3)
    started = time.monotonic()
    await asyncio.to_thread(gateway.server.stop)
    assert await asyncio.wait_for(claim, timeout=5) is None  # 204, not a cancelled request
    assert time.monotonic() - started < 2.5


async def test_re_registering_keeps_the_nodes_until_the_new_ones_arrive(
    gateway: Gateway, people: dict[str, Person], fake_worker: FakeWorker
) -> None:
    """Between a new registration and its object_info upload, participants can
    still queue with the worker's previous node definitions."""
    import hashlib

    import orjson

    from .conftest import OBJECT_INFO

    bigger = {**OBJECT_INFO, "ImageInvert": {**OBJECT_INFO["EmptyImage"], "name": "ImageInvert"}}
    body = orjson.dumps(bigger)
    digest = hashlib.sha256(body).hexdigest()
    r = await fake_worker.client.post(
        "/worker/v1/register",
        json={"worker_id": "fake-1", "object_info_digest": digest, "nodes": list(bigger)},
    )
    assert r.json()["need_object_info"] is True
    async with gateway.client(auth=people["alice"].auth) as alice:
        assert (await alice.post("/api/v1/jobs", json={"prompt": PROMPT})).status_code == 201
        put = await fake_worker.client.put(f"/worker/v1/object_info?digest={digest}", content=body)
        assert put.status_code == 204
        info = (await alice.get("/u/alice/api/object_info")).json()
        assert "ImageInvert" in info


async def test_lease_tokens_are_random_strings(
    gateway: Gateway, people: dict[str, Person], fake_worker: FakeWorker
) -> None:
    async with gateway.client(auth=people["alice"].auth) as alice:
        for _ in range(2):
            await alice.post("/api/v1/jobs", json={"prompt": PROMPT})
    first, second = await fake_worker.claim(), await fake_worker.claim()
    assert first is not None
    assert second is not None
    tokens = {first["lease_token"], second["lease_token"]}
    assert len(tokens) == 2
    assert all(isinstance(t, str) and len(t) >= 20 for t in tokens)  # 16 random bytes
    assert not any(t.isdigit() for t in tokens)


async def test_a_lease_belongs_to_the_worker_that_claimed(
    gateway: Gateway, people: dict[str, Person], fake_worker: FakeWorker, aredis: Any
) -> None:
    """Another worker token that learns a job's id and lease token still cannot
    send its events, upload into its user's folder, finish it or fail it."""
    other_token = await UserStore(aredis).create_worker_token("gpu-other")
    async with gateway.client(auth=people["alice"].auth) as alice:
        job_id = (await alice.post("/api/v1/jobs", json={"prompt": PROMPT})).json()["id"]
    job = await fake_worker.claim()
    assert job is not None
    async with gateway.client(headers={"Authorization": f"Bearer {other_token}"}) as client:
        rogue = FakeWorker(client, "rogue-1")
        await rogue.register()
        stolen = rogue.lease(job)  # the first worker's job id and token, the rogue's own id
        calls = [
            ("POST", f"/worker/v1/jobs/{job_id}/events", {"json": {"events": []}}),
            (
                "PUT",
                f"/worker/v1/jobs/{job_id}/outputs?filename=planted.png",
                {"content": b"planted"},
            ),
            ("PUT", f"/worker/v1/jobs/{job_id}/preview", {"content": b"x"}),
            ("GET", f"/worker/v1/jobs/{job_id}/inputs?filename=cat.png", {}),
            ("POST", f"/worker/v1/jobs/{job_id}/complete", {"json": {"outputs": {}}}),
            ("POST", f"/worker/v1/jobs/{job_id}/fail", {"json": {"error": {"type": "x"}}}),
            ("POST", f"/worker/v1/jobs/{job_id}/release", {}),
        ]
        for method, url, kw in calls:
            r = await client.request(method, url, headers=stolen, **kw)
            assert r.status_code == 409, (url, r.text)
            assert r.json()["error"] == "lease_lost"
            assert "another worker holds it" in r.json()["message"]
        beat = await client.post(
            "/worker/v1/heartbeat",
            json={
                "worker_id": "rogue-1",
                "jobs": [{"job_id": job_id, "lease_token": job["lease_token"]}],
            },
        )
        assert beat.json()["lease_lost"] == [job_id]
    assert not (gateway.settings.users_dir / "alice" / "output" / "planted.png").exists()
    async with gateway.client(auth=people["alice"].auth) as alice:
        assert (await alice.get(f"/api/v1/jobs/{job_id}")).json()["state"] == "running"
    assert (await fake_worker.complete(job)).status_code == 204


async def test_a_job_call_without_the_worker_id_is_refused(
    gateway: Gateway, people: dict[str, Person], fake_worker: FakeWorker
) -> None:
    async with gateway.client(auth=people["alice"].auth) as alice:
        job_id = (await alice.post("/api/v1/jobs", json={"prompt": PROMPT})).json()["id"]
    job = await fake_worker.claim()
    assert job is not None
    r = await fake_worker.client.post(
        f"/worker/v1/jobs/{job_id}/complete",
        json={"outputs": {}},
        headers={"X-Lease-Token": job["lease_token"]},
    )
    assert r.status_code == 422, r.text
    assert "X-Worker-Id" in r.json()["message"]
