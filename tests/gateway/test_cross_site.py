"""Cookie-authenticated state changes from another site are refused everywhere;
token, Basic and script callers are not affected."""

from __future__ import annotations

from ..conftest import Gateway, Person

FOREIGN = "http://127.0.0.1:1"  # another port of the same host: "same-site" to SameSite=Lax


async def _cookie(gateway: Gateway, person: Person) -> str:
    async with gateway.client() as browser:
        r = await browser.post(
            "/api/v1/login", json={"name": person.name, "password": person.password}
        )
        assert r.status_code == 200, r.text
        return str(browser.cookies["cm_session"])


async def _paused(gateway: Gateway, person: Person) -> bool:
    async with gateway.client(auth=person.auth) as client:
        return bool((await client.get("/api/v1/queue")).json()["paused"])


async def test_a_foreign_page_cannot_steer_the_room_with_the_instructors_cookie(
    gateway: Gateway, people: dict[str, Person]
) -> None:
    teacher = people["teacher"]
    cookie = await _cookie(gateway, teacher)
    async with gateway.client(cookies={"cm_session": cookie}) as browser:
        for headers in (
            {"Origin": FOREIGN},
            {"Origin": "null"},
            {"Sec-Fetch-Site": "same-site"},
            {"Sec-Fetch-Site": "cross-site"},
        ):
            r = await browser.post("/api/v1/queue/pause", headers=headers)
            assert r.status_code == 403, (headers, r.text)
            assert "cross-site" in r.json()["message"]
        assert not await _paused(gateway, teacher)
        r = await browser.post(
            "/api/v1/users", json={"name": "mallory"}, headers={"Origin": FOREIGN}
        )
        assert r.status_code == 403
        # from the gateway's own page it works
        own = {"Origin": gateway.url, "Sec-Fetch-Site": "same-origin"}
        assert (await browser.post("/api/v1/queue/pause", headers=own)).status_code == 200
        assert await _paused(gateway, teacher)


async def test_participant_workspace_and_sign_in_refuse_foreign_origins(
    gateway: Gateway, people: dict[str, Person]
) -> None:
    cookie = await _cookie(gateway, people["alice"])
    async with gateway.client(cookies={"cm_session": cookie}) as browser:
        r = await browser.post(
            "/u/alice/api/settings/Comfy.Test", json="x", headers={"Origin": FOREIGN}
        )
        assert r.status_code == 403
        r = await browser.post("/api/v1/logout", headers={"Sec-Fetch-Site": "cross-site"})
        assert r.status_code == 403
        assert (await browser.get("/api/v1/me")).status_code == 200  # still signed in
    async with gateway.client() as browser:  # signing someone in from another site
        r = await browser.post(
            "/api/v1/login",
            json={"name": "alice", "password": "alice-pw"},
            headers={"Origin": FOREIGN},
        )
        assert r.status_code == 403
        assert "cm_session" not in browser.cookies


async def test_tokens_basic_and_scripts_are_unaffected(
    gateway: Gateway, people: dict[str, Person]
) -> None:
    teacher = people["teacher"]
    async with gateway.client(auth=teacher.auth) as basic:
        assert (await basic.post("/api/v1/queue/pause")).status_code == 200  # no Origin: a script
        token = (await basic.post("/api/v1/tokens", json={})).json()["token"]
    bearer = {"Authorization": f"Bearer {token}", "Origin": FOREIGN}
    async with gateway.client(headers=bearer) as script:
        assert (await script.post("/api/v1/queue/resume")).status_code == 200
    assert not await _paused(gateway, teacher)
    # a cookie with no Origin and no Sec-Fetch-Site (curl, old clients) still works
    cookie = await _cookie(gateway, teacher)
    async with gateway.client(cookies={"cm_session": cookie}) as curl:
        assert (await curl.post("/api/v1/queue/pause")).status_code == 200
