"""Only the owner reaches /u/<name>/: sign-in, refusals, Origin checks, the HTML pages."""

from __future__ import annotations

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.comfy.conftest import basic
from tests.conftest import Gateway, Person

API_SAMPLES = [
    ("GET", "/api/object_info"),
    ("GET", "/api/settings"),
    ("GET", "/api/jobs?status=pending"),
    ("GET", "/api/userdata?dir=workflows"),
    ("GET", "/api/view?filename=x.png"),
    ("GET", "/api/history"),
    ("GET", "/prompt"),  # the root form scripts use
    ("POST", "/api/prompt"),
    ("POST", "/api/interrupt"),
    ("POST", "/api/settings/Comfy.X"),
    ("PATCH", "/internal/logs/subscribe"),
]


@pytest.mark.parametrize(("method", "path"), API_SAMPLES)
async def test_signed_out_api_calls_get_401_json(gateway: Gateway, method: str, path: str) -> None:
    async with gateway.client() as anon:
        response = await anon.request(method, f"/u/alice{path}")
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "unauthorized"


@pytest.mark.parametrize(("method", "path"), API_SAMPLES[:8])
async def test_another_user_gets_403_json(
    gateway: Gateway, people: dict[str, Person], method: str, path: str
) -> None:
    async with gateway.client(auth=people["bob"].auth) as bob:
        response = await bob.request(method, f"/u/alice{path}")
    assert response.status_code == 403, response.text
    assert "alice's workspace" in response.json()["message"]


async def test_instructor_cannot_enter_a_participants_workspace(
    gateway: Gateway, people: dict[str, Person]
) -> None:
    async with gateway.client(auth=people["teacher"].auth) as teacher:
        assert (await teacher.get("/u/alice/api/settings")).status_code == 403
        assert (await teacher.get("/u/alice/")).status_code == 403


async def test_page_redirects_signed_out_visitors_to_login(gateway: Gateway) -> None:
    async with gateway.client() as anon:
        page = await anon.get("/u/alice/", follow_redirects=False)
        assert page.status_code == 303
        assert page.headers["location"] == "/login?next=/u/alice/"
        root = await anon.get("/", follow_redirects=False)
        assert root.headers["location"] == "/login"
        login = await anon.get("/login")
        assert login.status_code == 200
        assert 'id="login"' in login.text
        assert "/api/v1/login" in login.text


async def test_page_of_another_user_is_403_html(
    gateway: Gateway, people: dict[str, Person]
) -> None:
    async with gateway.client(auth=people["bob"].auth) as bob:
        page = await bob.get("/u/alice/")
    assert page.status_code == 403
    assert page.headers["content-type"].startswith("text/html")
    assert "/u/bob/" in page.text
    assert "vue-app" not in page.text


async def test_login_sets_a_cookie_that_opens_only_your_workspace(
    gateway: Gateway, people: dict[str, Person]
) -> None:
    async with gateway.client() as browser:
        login = await browser.post("/api/v1/login", json={"name": "alice", "password": "alice-pw"})
        assert login.status_code == 200
        assert login.json()["home"] == "/u/alice/"
        assert (await browser.get("/", follow_redirects=False)).headers["location"] == "/u/alice/"
        assert (await browser.get("/u/alice/")).status_code == 200
        assert (await browser.get("/u/alice/api/settings")).status_code == 200
        assert (await browser.get("/u/bob/api/settings")).status_code == 403
        logout = await browser.get("/logout")
        assert logout.status_code == 200
        assert "localStorage.clear" in logout.text
        after = await browser.get("/u/alice/", follow_redirects=False)
        assert after.status_code == 303


async def test_a_used_signin_link_shows_a_friendly_page(
    gateway: Gateway, people: dict[str, Person], aredis: object
) -> None:
    from comfy_multi.services.users import UserStore

    token = await UserStore(aredis).create_signin_token("carol")  # type: ignore[arg-type]
    async with gateway.client() as first:
        used = await first.post(f"/signin/{token}", follow_redirects=False)
        assert used.status_code == 303
        assert used.headers["location"] == "/u/carol/"
    async with gateway.client() as second:
        again = await second.get(f"/signin/{token}")
    assert again.status_code == 410
    assert again.headers["content-type"].startswith("text/html")
    assert "already used" in again.text
    assert 'href="/login"' in again.text


async def test_state_changes_from_another_origin_are_refused(
    gateway: Gateway, clients: dict[str, httpx.AsyncClient]
) -> None:
    alice = clients["alice"]
    evil = {"Origin": "http://evil.example"}
    refused = await alice.post("/u/alice/api/settings/Comfy.X", json=1, headers=evil)
    assert refused.status_code == 403
    assert "Origin" in refused.json()["message"]
    null = await alice.post("/u/alice/api/interrupt", headers={"Origin": "null"})
    assert null.status_code == 403
    host = gateway.url.removeprefix("http://")
    same = await alice.post(
        "/u/alice/api/settings/Comfy.X", json=1, headers={"Origin": f"http://{host}"}
    )
    assert same.status_code == 200
    # reading is fine from anywhere the cookie goes (CORS keeps the answer from other sites)
    assert (await alice.get("/u/alice/api/settings", headers=evil)).status_code == 200


async def test_websocket_refuses_strangers_and_foreign_origins(
    gateway: Gateway, people: dict[str, Person]
) -> None:
    url = gateway.url.replace("http://", "ws://")
    for headers in (
        {},
        {"Authorization": basic(people["bob"])},
        {"Authorization": basic(people["alice"]), "Origin": "http://evil.example"},
    ):
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"{url}/u/alice/ws", additional_headers=headers):
                pass
        assert refused.value.response.status_code == 403
