"""Storage has bounds: ended prompts are dropped, each person has a budget of
stored prompt bytes, a full Redis answers 503, and the data dir is private."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
import redis

from comfy_multi.settings import Settings
from comfy_multi.store import keys
from comfy_multi.store.embedded import EmbeddedRedis
from comfy_multi.worker.channel import Channel

from ..conftest import Gateway, Person, wait_for
from .conftest import PROMPT

BUDGET = 6000
PAD = "x" * 2500  # extra_data carries the workflow; this makes each job ~2.6 kB


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"prompt_keep_minutes": 0.02, "prompt_budget_bytes": BUDGET})


def _job(note: str = PAD) -> dict[str, Any]:
    return {"prompt": PROMPT, "extra_data": {"extra_pnginfo": {"workflow": note}}}


async def test_ended_jobs_lose_their_prompt_but_keep_their_record(
    gateway: Gateway, people: dict[str, Person], channel: Channel, aredis: Any
) -> None:
    async with gateway.client(auth=people["alice"].auth) as alice:
        job = (await alice.post("/api/v1/jobs", json=_job())).json()
        assert await aredis.hexists(keys.job(job["id"]), "prompt")
        await alice.post(f"/api/v1/jobs/{job['id']}/cancel")

        async def dropped() -> bool:
            return not await aredis.hexists(keys.job(job["id"]), "prompt")

        await wait_for(dropped, timeout=15)
        assert not await aredis.hexists(keys.job(job["id"]), "extra_data")
        kept = await alice.get(f"/api/v1/jobs/{job['id']}")
        assert kept.status_code == 200
        assert kept.json()["state"] == "cancelled"
        history = await alice.get("/u/alice/api/history")
        assert history.status_code == 200


async def test_stored_prompt_bytes_have_a_per_person_budget(
    gateway: Gateway, people: dict[str, Person], channel: Channel, aredis: Any
) -> None:
    async with gateway.client(auth=people["alice"].auth) as alice:
        first = (await alice.post("/api/v1/jobs", json=_job())).json()
        assert (await alice.post("/api/v1/jobs", json=_job())).status_code == 201
        over = await alice.post("/api/v1/jobs", json=_job())
        assert over.status_code == 413, over.text
        assert "budget" in over.json()["message"]
        # ComfyUI's own route answers the same
        r = await alice.post("/u/alice/api/prompt", json=_job())
        assert r.status_code == 413, r.text
        # someone else is not held up by alice's budget
        async with gateway.client(auth=people["bob"].auth) as bob:
            assert (await bob.post("/api/v1/jobs", json=_job())).status_code == 201
        # a cancelled job's prompt counts until it is dropped, then frees room
        await alice.post(f"/api/v1/jobs/{first['id']}/cancel")

        async def room_again() -> bool:
            r = await alice.post("/api/v1/jobs", json=_job())
            return r.status_code == 201

        assert await wait_for(room_again, timeout=15, interval=0.3)


async def test_a_full_store_answers_503_and_evicts_nothing(
    gateway: Gateway, people: dict[str, Person], channel: Channel, redis_url: str
) -> None:
    admin = redis.Redis.from_url(redis_url)
    assert admin.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
    users_before = admin.scard(keys.USERS)
    async with gateway.client(auth=people["alice"].auth) as alice:
        assert (await alice.get("/api/v1/me")).status_code == 200  # signed in and remembered
        used = int(admin.info("memory")["used_memory"])
        admin.config_set("maxmemory", str(max(1, used // 2)))  # less than in use: full
        try:
            r = await alice.post("/api/v1/jobs", json=_job("small"))
            assert r.status_code == 503, r.text
            assert r.json()["error"] == "store_full"
            assert "memory limit" in r.json()["message"]
            assert (await alice.get("/api/v1/jobs")).status_code == 200  # reads still work
        finally:
            admin.config_set("maxmemory", "0")
            admin.close()
    assert redis.Redis.from_url(redis_url).scard(keys.USERS) == users_before


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_people_files_and_the_data_dir_are_private(
    gateway: Gateway, people: dict[str, Person]
) -> None:
    async with gateway.client(auth=people["alice"].auth) as alice:
        r = await alice.post("/u/alice/api/userdata/workflows%2Fmine.json", content=b"{}")
        assert r.status_code == 200, r.text
    data = Path(gateway.settings.data_dir)
    written = data / "users" / "alice" / "userdata" / "workflows" / "mine.json"
    assert _mode(written) == 0o600
    for folder in (data, data / "users", data / "users" / "alice", written.parent):
        assert _mode(folder) == 0o700, folder


def test_embedded_redis_has_a_memory_limit_and_a_private_aof(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "redis", maxmemory_mb=32)
    server.start(adopt=False)
    try:
        client = redis.Redis.from_url(server.url)
        assert client.config_get("maxmemory")["maxmemory"] == str(32 * 1024 * 1024)
        assert client.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
        client.set("x", "y")
        client.close()
        files = [p for p in (tmp_path / "redis").rglob("*") if p.is_file()]
        assert any("appendonly" in p.name for p in files)
        for path in files:
            assert _mode(path) & 0o077 == 0, path
        assert _mode(tmp_path / "redis") == 0o700
    finally:
        server.stop()
