"""Every answer carries the security headers; pages cannot be framed; files are never pages."""

from __future__ import annotations

import httpx
import pytest

from ..conftest import Gateway, Person

FRAME_POLICY = "frame-ancestors 'none'"


def assert_common(r: httpx.Response) -> None:
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "same-origin"
    assert r.headers["x-frame-options"] == "DENY"
    policies = r.headers.get_list("content-security-policy")
    assert any(FRAME_POLICY in policy for policy in policies), policies


@pytest.mark.parametrize(
    ("path", "who"),
    [
        ("/login", None),
        ("/u/alice/", "alice"),
        ("/admin", "teacher"),
        ("/api/v1/docs", None),
    ],
)
async def test_pages_cannot_be_framed(
    gateway: Gateway, people: dict[str, Person], path: str, who: str | None
) -> None:
    auth = people[who].auth if who else None
    async with gateway.client(auth=auth) as client:
        r = await client.get(path)
    assert r.status_code == 200, (path, r.status_code)
    assert r.headers["content-type"].startswith("text/html"), path
    assert_common(r)
    assert "strict-transport-security" not in r.headers  # plain HTTP: no HSTS


@pytest.mark.parametrize("path", ["/health", "/api/v1/me", "/nowhere", "/u/alice/api/settings"])
async def test_every_answer_has_the_headers(
    gateway: Gateway, people: dict[str, Person], path: str
) -> None:
    async with gateway.client(auth=people["alice"].auth) as client:
        r = await client.get(path)
    assert_common(r)


async def test_hsts_when_a_trusted_proxy_says_tls(
    gateway: Gateway, people: dict[str, Person]
) -> None:
    # uvicorn trusts X-Forwarded-Proto from loopback (its forwarded_allow_ips default)
    async with gateway.client() as client:
        r = await client.get("/login", headers={"X-Forwarded-Proto": "https"})
    assert r.headers["strict-transport-security"].startswith("max-age=")


async def test_userdata_is_never_served_as_a_page(
    gateway: Gateway, people: dict[str, Person]
) -> None:
    page = b"<html><script>alert(document.cookie)</script></html>"
    async with gateway.client(auth=people["alice"].auth) as alice:
        for name in ("evil.html", "evil.svg", "workflows/evil.json"):
            saved = await alice.post(
                f"/u/alice/api/userdata/{name.replace('/', '%2F')}", content=page
            )
            assert saved.status_code == 200, saved.text
            r = await alice.get(f"/u/alice/api/userdata/{name.replace('/', '%2F')}")
            assert r.status_code == 200
            assert r.content == page
            assert not r.headers["content-type"].startswith(("text/html", "image/svg"))
            assert r.headers["content-disposition"] == "attachment"
            assert "sandbox" in r.headers.get_list("content-security-policy")
            assert_common(r)
        css = await alice.get("/u/alice/api/userdata/user.css")
        assert css.headers["content-type"].startswith("text/css")  # still a stylesheet


async def test_uploads_are_never_served_as_a_page(
    gateway: Gateway, people: dict[str, Person]
) -> None:
    folder = gateway.settings.users_dir / "alice" / "input"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "evil.html").write_bytes(b"<script>alert(1)</script>")
    async with gateway.client(auth=people["alice"].auth) as alice:
        r = await alice.get("/u/alice/api/view", params={"filename": "evil.html", "type": "input"})
    assert r.status_code == 200
    assert not r.headers["content-type"].startswith("text/html")
    assert "sandbox" in r.headers.get_list("content-security-policy")
    assert_common(r)
