"""The worker channel: tokens, long-poll claims, fencing, files, heartbeats.

The worker's side is played by the real channel client; raw requests appear
only where a test sends what no honest worker would.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import re
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from comfy_multi.errors import LeaseLost, NotFound, TooLarge, Unauthorized
from comfy_multi.queue.workers import WorkerRegistry
from comfy_multi.services.users import UserStore
from comfy_multi.wire import InputRef, Registration
from comfy_multi.worker.channel import Channel
from comfy_multi.worker.errors import GatewayRejected

from ..channel import register, worker_channel
from ..conftest import Gateway, Person, wait_for
from .conftest import OBJECT_INFO, PROMPT


async def submit(gateway: Gateway, person: Person, prompt: dict[str, Any] = PROMPT) -> str:
    async with gateway.client(auth=person.auth) as client:
        r = await client.post("/api/v1/jobs", json={"prompt": prompt})
        assert r.status_code == 201, r.text
        return str(r.json()["id"])


async def test_only_worker_tokens_open_the_channel(
    gateway: Gateway, people: dict[str, Person]
) -> None:
    async with gateway.client(auth=people["teacher"].auth) as teacher:  # a user's Basic auth
        r = await teacher.post("/worker/v1/claim", json={"worker_id": "x"})
        assert r.status_code == 401
    async with worker_channel(gateway.url, "cmw_forged", "x") as forged:
        with pytest.raises(Unauthorized, match="worker token"):
            await forged.claim(0)


async def test_unregistered_worker_is_told_to_register(gateway: Gateway, worker_token: str) -> None:
    async with worker_channel(gateway.url, worker_token, "ghost") as ghost:
        with pytest.raises(NotFound, match="not registered"):
            await ghost.claim(0)


async def test_long_poll_answers_when_a_job_arrives(
    gateway: Gateway, people: dict[str, Person], channel: Channel
) -> None:
    started = time.monotonic()
    claim = asyncio.create_task(channel.claim(20))
    await asyncio.sleep(0.3)
    assert not claim.done()
    job_id = await submit(gateway, people["alice"])
    got = await asyncio.wait_for(claim, timeout=5)
    assert got is not None
    assert got.job_id == job_id
    assert got.prompt == PROMPT
    assert got.user == "alice"
    assert time.monotonic() - started < 5


async def test_empty_long_poll_times_out_with_204(channel: Channel) -> None:
    started = time.monotonic()
    assert await channel.claim(0.5) is None
    assert 0.4 < time.monotonic() - started < 5


async def test_job_lifecycle_and_fencing(
    gateway: Gateway, people: dict[str, Person], channel: Channel
) -> None:
    job_id = await submit(gateway, people["alice"])
    job = await channel.claim(0)
    assert job is not None
    assert job.job_id == job_id
    await channel.post_events(job, [])
    stored = await channel.put_output(
        job,
        filename="ComfyUI_00001_.png",
        subfolder="",
        kind="output",
        content=b"\x89PNG-bytes",
        size=None,
    )
    assert stored.model_dump() == {
        "filename": "ComfyUI_00001_.png",
        "subfolder": "",
        "type": "output",
    }
    again = await channel.put_output(
        job, filename="ComfyUI_00001_.png", subfolder="", kind="output", content=b"x", size=None
    )
    assert again.filename == "ComfyUI_00001__1.png"  # never overwrites
    out = Path(gateway.settings.users_dir / "alice" / "output" / "ComfyUI_00001_.png")
    assert out.read_bytes() == b"\x89PNG-bytes"  # noqa: ASYNC240
    forged = job.model_copy(update={"lease_token": job.lease_token + "x"})
    with pytest.raises(LeaseLost):
        await channel.complete(forged, {}, {})
    outputs = {"2": {"images": [stored.model_dump()]}}
    await channel.complete(job, outputs, {})
    with pytest.raises(LeaseLost):
        await channel.complete(job, outputs, {})
    async with gateway.client(auth=people["alice"].auth) as alice:
        done = (await alice.get(f"/api/v1/jobs/{job_id}")).json()
    assert done["state"] == "done"
    assert done["outputs"] == outputs


async def test_cancel_reaches_the_worker_through_heartbeat(
    gateway: Gateway, people: dict[str, Person], channel: Channel
) -> None:
    job_id = await submit(gateway, people["alice"])
    job = await channel.claim(0)
    assert job is not None
    async with gateway.client(auth=people["alice"].auth) as alice:
        await alice.post(f"/api/v1/jobs/{job_id}/cancel")
    answer = await channel.heartbeat([job])
    assert answer.cancel == [job_id]
    assert answer.lease_lost == [job_id]
    assert answer.drain is False
    with pytest.raises(LeaseLost, match="cancelled"):
        await channel.post_events(job, [])
    await channel.cancelled(job)  # the worker's confirmation is accepted


async def test_inputs_are_served_only_for_the_job(
    gateway: Gateway, people: dict[str, Person], channel: Channel
) -> None:
    folder = gateway.settings.users_dir / "alice" / "input"
    folder.mkdir(parents=True)
    (folder / "cat.png").write_bytes(b"cat")
    (folder / "secret.png").write_bytes(b"secret")
    load_image = {
        "input": {"required": {"image": [[], {"image_upload": True}]}},
        "output": ["IMAGE", "MASK"],
        "output_node": False,
        "name": "LoadImage",
    }
    await register(channel, {**OBJECT_INFO, "LoadImage": load_image})  # names files: upload COMBO
    prompt = {
        **PROMPT,
        "4": {"class_type": "LoadImage", "inputs": {"image": "cat.png"}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["4", 0]}},
    }
    await submit(gateway, people["alice"], prompt)
    job = await channel.claim(0)
    assert job is not None
    assert job.inputs == [InputRef(filename="cat.png", subfolder="", type="input", ref="cat.png")]
    async with channel.input_file(job, job.inputs[0]) as response:
        assert b"".join([chunk async for chunk in channel.chunks(response)]) == b"cat"
    secret = InputRef(filename="secret.png", ref="secret.png")
    with pytest.raises(NotFound, match="not one of this job's input files"):
        async with channel.input_file(job, secret):
            pass
    forged = job.model_copy(update={"lease_token": "0"})
    with pytest.raises(LeaseLost):
        async with channel.input_file(forged, job.inputs[0]):
            pass


async def test_output_size_limit(
    gateway: Gateway, people: dict[str, Person], channel: Channel
) -> None:
    gateway.settings.max_output_bytes = 1000  # read per request
    await submit(gateway, people["alice"])
    job = await channel.claim(0)
    assert job is not None
    with pytest.raises(TooLarge):
        await channel.put_output(
            job, filename="big.bin", subfolder="", kind="output", content=b"x" * 5000, size=None
        )
    assert not any((gateway.settings.users_dir / "alice" / "output").glob("big*"))


async def test_worker_shows_offline_when_silent(
    gateway: Gateway, people: dict[str, Person], channel: Channel
) -> None:
    async with gateway.client(auth=people["teacher"].auth) as teacher:

        async def offline() -> bool:
            workers = (await teacher.get("/api/v1/workers")).json()
            return bool(workers[0]["state"] == "offline")

        await wait_for(offline, timeout=10)


async def test_a_stopping_gateway_ends_long_polls_at_once(
    gateway: Gateway, channel: Channel
) -> None:
    """A restart must not wait for idle workers' long-polls to time out."""
    claim = asyncio.create_task(channel.claim(30))
    await asyncio.sleep(0.3)
    started = time.monotonic()
    await asyncio.to_thread(gateway.server.stop)
    assert await asyncio.wait_for(claim, timeout=5) is None  # 204, not a cancelled request
    assert time.monotonic() - started < 2.5


async def test_re_registering_keeps_the_nodes_until_the_new_ones_arrive(
    gateway: Gateway, people: dict[str, Person], channel: Channel
) -> None:
    """Between a new registration and its object_info upload, participants can
    still queue with the worker's previous node definitions."""
    bigger = {**OBJECT_INFO, "ImageInvert": {**OBJECT_INFO["EmptyImage"], "name": "ImageInvert"}}
    body = orjson.dumps(bigger)
    digest = hashlib.sha256(body).hexdigest()
    answer = await channel.register(
        Registration(worker_id="fake-1", object_info_digest=digest, nodes=list(bigger))
    )
    assert answer.need_object_info is True
    await submit(gateway, people["alice"])
    await channel.put_object_info(digest, body)
    async with gateway.client(auth=people["alice"].auth) as alice:
        info = (await alice.get("/u/alice/api/object_info")).json()
    assert "ImageInvert" in info


# --- a worker id belongs to its token ---------------------------------------------


async def test_a_worker_id_belongs_to_the_token_that_registered_it(
    gateway: Gateway, people: dict[str, Person], channel: Channel, aredis: Any
) -> None:
    other_token = await UserStore(aredis).create_worker_token("gpu-other")
    job_id = await submit(gateway, people["alice"])
    async with worker_channel(gateway.url, other_token, "fake-1") as impostor:
        for call in (
            lambda: register(impostor, OBJECT_INFO),
            lambda: impostor.claim(0),
            lambda: impostor.heartbeat([]),
        ):
            with pytest.raises(GatewayRejected) as refused:
                await call()
            assert refused.value.status == 409
            assert "belongs to another worker token" in str(refused.value)
    job = await channel.claim(0)  # the job is still there for its rightful worker
    assert job is not None
    assert job.job_id == job_id
    async with gateway.client(auth=people["teacher"].auth) as teacher:
        workers = (await teacher.get("/api/v1/workers")).json()
    assert [(w["worker_id"], w["name"]) for w in workers] == [("fake-1", "gpu-test")]


async def test_a_forgotten_worker_id_is_free_again(
    gateway: Gateway, people: dict[str, Person], channel: Channel, aredis: Any
) -> None:
    other_token = await UserStore(aredis).create_worker_token("gpu-other")
    await WorkerRegistry(aredis, gateway.settings).forget("fake-1")
    async with worker_channel(gateway.url, other_token, "fake-1", OBJECT_INFO) as successor:
        assert await successor.claim(0) is None
    with pytest.raises(GatewayRejected, match="belongs to another worker token"):
        await channel.claim(0)


async def test_an_unknown_worker_id_is_not_found_for_heartbeats(
    gateway: Gateway, worker_token: str
) -> None:
    async with worker_channel(gateway.url, worker_token, "nobody") as nobody:
        with pytest.raises(NotFound, match="not registered"):
            await nobody.heartbeat([])


# --- object_info bodies a worker should never send ---------------------------------


def zeros_gzip(unpacked: int, member: int = 64 * 1024 * 1024) -> bytes:
    """gzip of ``unpacked`` zero bytes, as repeated members (quick to build)."""
    return gzip.compress(bytes(member), 6) * (unpacked // member)


def peak_rss_kib(reset: bool = False) -> int:
    """This process's peak RSS (the gateway runs in it); ``reset`` starts a new peak."""
    if reset:
        Path("/proc/self/clear_refs").write_text("5")
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+)", status).group(1))


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
async def test_a_gzip_bomb_is_refused_quickly_without_the_memory(
    gateway: Gateway, worker_token: str
) -> None:
    """1 MB of gzip that unpacks to 1 GiB: 413 once the budget is passed, while
    other requests keep being answered and memory stays near the budget."""
    bomb = zeros_gzip(1024 * 1024 * 1024)
    assert len(bomb) < 1_100_000
    budget = gateway.settings.max_object_info_bytes
    auth = {"Authorization": f"Bearer {worker_token}"}
    async with gateway.client(headers=auth) as worker, gateway.client() as anyone:
        assert (await anyone.get("/health")).status_code == 200  # warm
        before = peak_rss_kib(reset=True)
        started = time.monotonic()
        upload = asyncio.create_task(
            worker.put(
                "/worker/v1/object_info",
                params={"digest": "0" * 64},
                content=bomb,
                headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
            )
        )
        slowest = 0.0
        while True:
            asked = time.monotonic()
            assert (await anyone.get("/health")).status_code == 200
            slowest = max(slowest, time.monotonic() - asked)
            if upload.done():
                break
            await asyncio.sleep(0.02)
        answer = await upload
        took = time.monotonic() - started
        grew_mib = (peak_rss_kib() - before) / 1024
    assert answer.status_code == 413, answer.text
    assert f"unpacks to more than the {budget:,} bytes allowed" in answer.json()["message"]
    assert took < 5, f"the refusal took {took:.1f} s"
    assert slowest < 1.0, f"/health took {slowest:.2f} s meanwhile"
    assert grew_mib < budget / 2**20 + 100, f"peak RSS grew {grew_mib:.0f} MiB"


@pytest.mark.parametrize(
    ("body", "encoding", "status", "says"),
    [
        (b"not gzip at all", "gzip", 400, "bject_info is not valid gzip"),
        (gzip.compress(b'{"a": 1}' * 1000, mtime=0)[:-20], "gzip", 400, "cut short"),
        (gzip.compress(b'{"a": 1}', mtime=0) + b"trailing", "gzip", 400, "not valid gzip"),
        (b'{"a": 1}', "br", 400, "plain or gzip"),
        (gzip.compress(b"[1, 2]", mtime=0), "gzip", 400, "does not match its digest"),
    ],
    ids=["not-gzip", "cut-short", "trailing-junk", "brotli", "wrong-digest"],
)
async def test_malformed_object_info_bodies_get_a_clear_400(
    gateway: Gateway, worker_token: str, body: bytes, encoding: str, status: int, says: str
) -> None:
    auth = {"Authorization": f"Bearer {worker_token}", "Content-Encoding": encoding}
    async with gateway.client(headers=auth) as worker:
        r = await worker.put("/worker/v1/object_info", params={"digest": "0" * 64}, content=body)
    assert r.status_code == status, r.text
    assert says in r.json()["message"]


async def test_an_object_info_past_a_small_budget_is_refused(
    gateway: Gateway, worker_token: str
) -> None:
    gateway.settings.max_object_info_bytes = 1000  # read per request
    body = orjson.dumps({"Node": {"x": "y" * 2000}})
    auth = {"Authorization": f"Bearer {worker_token}"}
    async with gateway.client(headers=auth) as worker:
        packed = gzip.compress(body)
        r = await worker.put(
            "/worker/v1/object_info",
            params={"digest": hashlib.sha256(body).hexdigest()},
            content=packed,
            headers={"Content-Encoding": "gzip"},
        )
        assert r.status_code == 413, r.text
        assert "unpacks to more than the 1,000 bytes allowed" in r.json()["message"]


# --- a lease belongs to the worker that claimed ----------------------------------


async def test_lease_tokens_are_random_strings(
    gateway: Gateway, people: dict[str, Person], channel: Channel
) -> None:
    for _ in range(2):
        await submit(gateway, people["alice"])
    first, second = await channel.claim(0), await channel.claim(0)
    assert first is not None
    assert second is not None
    tokens = {first.lease_token, second.lease_token}
    assert len(tokens) == 2
    assert all(len(t) >= 20 and not t.isdigit() for t in tokens)  # 16 random bytes


async def test_a_lease_belongs_to_the_worker_that_claimed(
    gateway: Gateway, people: dict[str, Person], channel: Channel, aredis: Any
) -> None:
    """Another worker token that learns a job's id and lease token still cannot
    send its events, upload into its user's folder, finish it or fail it."""
    other_token = await UserStore(aredis).create_worker_token("gpu-other")
    job_id = await submit(gateway, people["alice"])
    job = await channel.claim(0)
    assert job is not None
    async with worker_channel(gateway.url, other_token, "rogue-1") as rogue:
        await register(rogue, OBJECT_INFO)
    stolen = {"X-Lease-Token": job.lease_token, "X-Worker-Id": "rogue-1"}
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", f"/worker/v1/jobs/{job_id}/events", {"json": {"events": []}}),
        ("PUT", f"/worker/v1/jobs/{job_id}/outputs?filename=planted.png", {"content": b"p"}),
        ("PUT", f"/worker/v1/jobs/{job_id}/preview", {"content": b"x"}),
        ("GET", f"/worker/v1/jobs/{job_id}/inputs?filename=cat.png", {}),
        ("POST", f"/worker/v1/jobs/{job_id}/complete", {"json": {"outputs": {}}}),
        ("POST", f"/worker/v1/jobs/{job_id}/fail", {"json": {"error": {"type": "x"}}}),
        ("POST", f"/worker/v1/jobs/{job_id}/release", {}),
    ]
    async with gateway.client(headers={"Authorization": f"Bearer {other_token}"}) as client:
        for method, url, kw in calls:
            r = await client.request(method, url, headers=stolen, **kw)
            assert r.status_code == 409, (url, r.text)
            assert r.json()["error"] == "lease_lost"
    assert not (gateway.settings.users_dir / "alice" / "output" / "planted.png").exists()
    async with gateway.client(auth=people["alice"].auth) as alice:
        assert (await alice.get(f"/api/v1/jobs/{job_id}")).json()["state"] == "running"
    await channel.complete(job, {}, {})  # the rightful worker still finishes it
