"""Only the instructor reaches the dashboard and the room-steering API.

The routes are read from the app itself, so a new admin route is covered the
day it is added.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, APIWebSocketRoute, RouteContext, iter_route_contexts

from comfy_multi.app import create_app
from comfy_multi.services.auth import admin_user
from comfy_multi.settings import Settings
from tests.conftest import Gateway, Person

ROUTES: list[RouteContext] = list(
    iter_route_contexts(create_app(Settings(secret_key="routes-only")).routes)
)


def _needs_admin(dependant: Dependant) -> bool:
    return dependant.call is admin_user or any(_needs_admin(d) for d in dependant.dependencies)


def _fill(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "nobody", path)


def admin_api_routes() -> Iterator[tuple[str, str]]:
    for route in ROUTES:
        path, methods = route.path or "", route.methods or set()
        api = isinstance(route.original_route, APIRoute) and path.startswith("/api/v1/")
        if api and _needs_admin(route.dependant):
            for method in sorted(methods):
                yield method, _fill(path)


def admin_page_routes() -> Iterator[tuple[str, str]]:
    for route in ROUTES:
        path, methods = route.path or "", route.methods or set()
        if isinstance(route.original_route, APIRoute) and path.startswith("/admin"):
            for method in sorted(methods - {"HEAD"}):
                yield method, _fill(path)


API = sorted(set(admin_api_routes()))
PAGES = sorted(set(admin_page_routes()))


def test_the_route_lists_are_complete() -> None:
    # a sample of what must be there; the lists come from the app itself
    assert ("POST", "/api/v1/jobs/nobody/front") in API
    assert ("POST", "/api/v1/queue/pause") in API
    assert ("PUT", "/api/v1/queue/mode") in API
    assert ("POST", "/api/v1/users/nobody/cancel-pending") in API
    assert ("POST", "/api/v1/broadcast") in API
    assert ("GET", "/admin") in PAGES
    assert ("GET", "/admin/signin-sheet.pdf") in PAGES
    assert any(
        isinstance(r.original_route, APIWebSocketRoute) and r.path == "/admin/ws" for r in ROUTES
    )
    # participants' own routes are not admin routes
    assert ("POST", "/api/v1/jobs") not in API
    assert ("GET", "/api/v1/jobs") not in API


@pytest.mark.parametrize(("method", "path"), API)
async def test_participant_refused_by_admin_api(
    gateway: Gateway, people: dict[str, Person], method: str, path: str
) -> None:
    async with gateway.client(auth=people["alice"].auth) as client:
        r = await client.request(method, path, json={})
    assert r.status_code == 403, (method, path, r.text)
    assert r.json()["error"] == "forbidden"


@pytest.mark.parametrize(("method", "path"), PAGES)
async def test_participant_refused_by_admin_pages(
    gateway: Gateway, people: dict[str, Person], method: str, path: str
) -> None:
    async with gateway.client(auth=people["alice"].auth) as client:
        r = await client.request(method, path)
    assert r.status_code == 403, (method, path)
    assert "for the instructor" in r.text


@pytest.mark.parametrize(("method", "path"), PAGES)
async def test_signed_out_visitor_goes_to_login(gateway: Gateway, method: str, path: str) -> None:
    async with gateway.client() as client:
        r = await client.request(method, path)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/login?next=%2Fadmin")


async def test_admin_gets_the_dashboard(gateway: Gateway, people: dict[str, Person]) -> None:
    async with gateway.client(auth=people["teacher"].auth) as client:
        page = await client.get("/admin")
        script = await client.get("/admin/static/admin.js")
        missing = await client.get("/admin/static/..%2Fsnapshot.py")
    assert page.status_code == 200
    assert "/admin/static/admin.js" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert missing.status_code == 404


async def test_session_cookie_from_login_opens_the_dashboard(
    gateway: Gateway, people: dict[str, Person]
) -> None:
    async with gateway.client() as client:
        r = await client.post("/api/v1/login", json={"name": "teacher", "password": "teacher-pw"})
        assert r.json()["home"] == "/admin"
        assert (await client.get("/admin")).status_code == 200


async def test_bad_basic_credentials_go_to_login(gateway: Gateway) -> None:
    async with httpx.AsyncClient(base_url=gateway.url, auth=("teacher", "wrong")) as client:
        r = await client.get("/admin")
    assert r.status_code == 303
