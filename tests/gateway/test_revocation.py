"""Revocation holds at once: sign-out, password change, removal, token and
worker-token revocation, against the real gateway and Redis."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import httpx

from comfy_multi.services.users import UserStore
from comfy_multi.worker.channel import Channel

from ..conftest import Gateway, Person, ServerThread, wait_for
from .conftest import PROMPT


async def _signed_in_cookie(gateway: Gateway, person: Person) -> str:
    async with gateway.client() as browser:
        r = await browser.post(
            "/api/v1/login", json={"name": person.name, "password": person.password}
        )
        assert r.status_code == 200, r.text
        cookie = browser.cookies.get("cm_session")
        assert cookie
        return cookie


async def _me(gateway: Gateway, **kw: Any) -> int:
    async with gateway.client(**kw) as client:
        return (await client.get("/api/v1/me")).status_code


async def test_sign_out_ends_the_session_for_a_copied_cookie(
    gateway: Gateway, people: dict[str, Person]
) -> None:
    cookie = await _signed_in_cookie(gateway, people["alice"])
    assert await _me(gateway, cookies={"cm_session": cookie}) == 200
    async with gateway.client(cookies={"cm_session": cookie}) as browser:
        assert (await browser.post("/api/v1/logout")).status_code == 204
    assert await _me(gateway, cookies={"cm_session": cookie}) == 401
    # the page at /logout ends its session too
    cookie = await _signed_in_cookie(gateway, people["alice"])
    async with gateway.client(cookies={"cm_session": cookie}) as browser:
        assert (await browser.get("/logout")).status_code == 200
    assert await _me(gateway, cookies={"cm_session": cookie}) == 401


async def test_password_change_ends_sessions_api_tokens_and_basic_on_every_process(
    gateway: Gateway, people: dict[str, Person]
) -> None:
    alice = people["alice"]
    second = ServerThread(gateway.settings).start()  # another gateway process on the same Redis
    try:
        other = Gateway(second.url, gateway.settings, second)
        cookie = await _signed_in_cookie(gateway, alice)
        async with gateway.client(auth=alice.auth) as basic:
            token = (await basic.post("/api/v1/tokens", json={})).json()["token"]
        bearer = {"Authorization": f"Bearer {token}"}
        for gw in (gateway, other):  # every credential works, and Basic is now cached
            assert await _me(gw, cookies={"cm_session": cookie}) == 200
            assert await _me(gw, headers=bearer) == 200
            assert await _me(gw, auth=alice.auth) == 200
        async with gateway.client(auth=people["teacher"].auth) as teacher:
            r = await teacher.post("/api/v1/users/alice/password", json={"password": "new-pw"})
            assert r.status_code == 200
        for gw in (gateway, other):
            assert await _me(gw, cookies={"cm_session": cookie}) == 401
            assert await _me(gw, headers=bearer) == 401
            assert await _me(gw, auth=alice.auth) == 401
            assert await _me(gw, auth=("alice", "new-pw")) == 200
    finally:
        second.stop()


async def test_api_tokens_are_listed_revoked_and_expire(
    gateway: Gateway, people: dict[str, Person]
) -> None:
    async with gateway.client(auth=people["alice"].auth) as alice:
        made = await alice.post("/api/v1/tokens", json={"label": "notebook"})
        assert made.status_code == 201, made.text
        keep = (await alice.post("/api/v1/tokens", json={"label": "cron"})).json()
        listed = (await alice.get("/api/v1/tokens")).json()
        assert [t["label"] for t in listed] == ["notebook", "cron"]
        assert all("token" not in t for t in listed)  # only ids, never the secret
        gone = await alice.delete(f"/api/v1/tokens/{made.json()['id']}")
        assert gone.status_code == 200, gone.text
        assert [t["id"] for t in (await alice.get("/api/v1/tokens")).json()] == [keep["id"]]
        # someone else's tokens are not a participant's to see
        assert (await alice.get("/api/v1/tokens?user=bob")).status_code == 403
        short = (await alice.post("/api/v1/tokens", json={"expires_days": 1 / 86_400})).json()
        assert short["expires_ms"] is not None
    assert await _me(gateway, headers={"Authorization": f"Bearer {made.json()['token']}"}) == 401
    assert await _me(gateway, headers={"Authorization": f"Bearer {keep['token']}"}) == 200
    short_auth = {"Authorization": f"Bearer {short['token']}"}
    assert await wait_for(lambda: _gone(gateway, short_auth), timeout=10)
    async with gateway.client(auth=people["teacher"].auth) as teacher:
        theirs = (await teacher.get("/api/v1/tokens?user=alice")).json()
        assert [t["id"] for t in theirs] == [keep["id"]]
        assert (await teacher.delete(f"/api/v1/tokens/{keep['id']}?user=alice")).status_code == 200
    assert await _me(gateway, headers={"Authorization": f"Bearer {keep['token']}"}) == 401


async def _gone(gateway: Gateway, headers: dict[str, str]) -> bool:
    return await _me(gateway, headers=headers) == 401


async def test_removed_person_loses_every_credential_and_a_new_one_starts_empty(
    gateway: Gateway, people: dict[str, Person], channel: Channel, aredis: Any
) -> None:
    alice = people["alice"]
    cookie = await _signed_in_cookie(gateway, alice)
    async with gateway.client(auth=alice.auth) as client:
        token = (await client.post("/api/v1/tokens", json={})).json()["token"]
        r = await client.post("/u/alice/api/userdata/workflows%2Fmine.json", content=b"{}")
        assert r.status_code == 200, r.text
        assert (await client.post("/api/v1/jobs", json={"prompt": PROMPT})).status_code == 201
        done = (await client.post("/api/v1/jobs", json={"prompt": PROMPT})).json()
        await client.post(f"/api/v1/jobs/{done['id']}/cancel")
    sign_in_link = await UserStore(aredis).create_signin_token("alice")

    async with gateway.client(auth=people["teacher"].auth) as teacher:
        r = await teacher.delete("/api/v1/users/alice")
        assert r.status_code == 200, r.text
        removed = r.json()
    assert removed["jobs_cancelled"] == 1
    assert removed["jobs_deleted"] == 2
    assert removed["sessions"] >= 1
    assert removed["api_tokens"] == 1
    assert removed["files"] == "deleted"
    assert "removed alice" in removed["summary"]

    await UserStore(aredis).add("alice", "alice-pw")  # a new person, same name and password
    assert await _me(gateway, cookies={"cm_session": cookie}) == 401
    assert await _me(gateway, headers={"Authorization": f"Bearer {token}"}) == 401
    async with gateway.client() as browser:
        used = await browser.get(f"/signin/{sign_in_link}", follow_redirects=False)
        assert used.status_code == 410
    async with gateway.client(auth=("alice", "alice-pw")) as new:
        assert (await new.get("/api/v1/jobs")).json()["total"] == 0
        r = await new.get("/u/alice/api/userdata/workflows%2Fmine.json")
        assert r.status_code == 404
        assert (await new.get("/u/alice/api/history")).json() == {}


async def test_removal_can_archive_the_files(gateway: Gateway, people: dict[str, Person]) -> None:
    async with gateway.client(auth=people["bob"].auth) as bob:
        r = await bob.post("/u/bob/api/userdata/notes.txt", content=b"keep me")
        assert r.status_code == 200, r.text
    async with gateway.client(auth=people["teacher"].auth) as teacher:
        removed = (await teacher.delete("/api/v1/users/bob?archive=true")).json()
    assert removed["files"] == "archived"
    kept = Path(gateway.settings.data_dir) / removed["archived_to"] / "userdata" / "notes.txt"
    assert kept.read_bytes() == b"keep me"
    assert not (Path(gateway.settings.users_dir) / "bob").exists()


async def test_a_revoked_worker_token_stops_at_its_next_request(
    gateway: Gateway, channel: Channel, worker_token: str, aredis: Any
) -> None:
    assert await channel.claim(0) is None  # works, and any cache is warm
    await UserStore(aredis).revoke_worker_token("gpu-test")
    async with gateway.client(headers={"Authorization": f"Bearer {worker_token}"}) as client:
        r = await client.post("/worker/v1/claim", json={"worker_id": "fake-1", "wait_seconds": 0})
    assert r.status_code == 401


async def test_basic_credentials_with_bad_base64_are_refused_plainly(gateway: Gateway) -> None:
    bad = base64.b64encode(b"\xff\xfe:x").decode()
    for value in ("%%%", bad):
        async with httpx.AsyncClient(base_url=gateway.url) as client:
            r = await client.get("/api/v1/me", headers={"Authorization": f"Basic {value}"})
        assert r.status_code == 401
        assert "Basic" in r.json()["message"]
