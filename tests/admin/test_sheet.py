"""The sign-in sheet: a card per participant whose QR code signs them in once."""

from __future__ import annotations

import io
import re

import httpx
import pytest
import segno
from PIL import Image

from comfy_multi.admin.sheet_image import PAGE
from comfy_multi.settings import Settings
from tests.conftest import Gateway

Clients = dict[str, httpx.AsyncClient]
LINK = re.compile(r'data-signin="([^"]+)"')


async def test_sheet_has_a_card_per_participant(gateway: Gateway, clients: Clients) -> None:
    r = await clients["teacher"].get("/admin/signin-sheet")
    assert r.status_code == 200
    names = re.findall(r'<h2 class="name">([^<]+)</h2>', r.text)
    assert names == ["alice", "bob", "carol"]  # the instructor gets no card
    assert f"{gateway.url}/u/alice/" in r.text
    links = LINK.findall(r.text)
    assert len(links) == 3
    assert all(link.startswith(f"{gateway.url}/signin/") for link in links)
    # each QR code is exactly its card's link
    qr = segno.make(links[0], error="m").svg_inline(scale=4, title="sign-in link for alice")
    assert qr in r.text


async def test_a_card_signs_its_person_in_once(gateway: Gateway, clients: Clients) -> None:
    page = await clients["teacher"].get("/admin/signin-sheet", params={"users": "bob"})
    (link,) = LINK.findall(page.text)
    async with gateway.client() as preview:  # a chat app's link preview, a camera's prefetch
        for _ in range(2):
            shown = await preview.get(link)
            assert shown.status_code == 200
            assert "<h1>Sign in as bob</h1>" in shown.text
            assert "set-cookie" not in shown.headers
    async with gateway.client() as phone:
        first = await phone.post(link, follow_redirects=False)
        assert first.status_code == 303
        assert first.headers["location"] == "/u/bob/"
        me = await phone.get("/api/v1/me")
        assert me.json() == {"name": "bob", "admin": False}
    async with gateway.client() as someone_else:
        again = await someone_else.post(link)
        assert again.is_client_error  # used up: no second session from the same card
        assert (await someone_else.get(link)).status_code == 410
        assert "set-cookie" not in again.headers
        assert (await someone_else.get("/api/v1/me")).status_code == 401


async def test_png_and_pdf_exports(clients: Clients) -> None:
    admin = clients["teacher"]
    for i in range(6):
        assert (await admin.post("/api/v1/users", json={"name": f"p{i}"})).status_code == 201
    png = await admin.get("/admin/signin-sheet.png", params={"page": 2})
    assert png.status_code == 200
    assert png.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(png.content)) as img:
        assert img.size == PAGE
    pdf = await admin.get("/admin/signin-sheet.pdf")
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    # nine participants: eight cards on page one, one on page two
    assert pdf.content.count(b"/Type /Page\n") + pdf.content.count(b"/Type /Page ") == 2


async def test_page_links_name_every_png_page(clients: Clients) -> None:
    admin = clients["teacher"]
    for i in range(8):
        await admin.post("/api/v1/users", json={"name": f"p{i}"})
    page = await admin.get("/admin/signin-sheet")
    assert "signin-sheet.png?page=1" in page.text
    assert "signin-sheet.png?page=2" in page.text
    assert "signin-sheet.png?page=3" not in page.text


class TestPublicUrl:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"public_url": "https://room.example.org/"})

    async def test_cards_use_the_public_url(self, clients: Clients) -> None:
        r = await clients["teacher"].get("/admin/signin-sheet")
        assert "https://room.example.org/u/alice/" in r.text
        assert all(
            link.startswith("https://room.example.org/signin/") for link in LINK.findall(r.text)
        )
        # this page was opened at the loopback address, not the printed one: said on screen
        assert "but this page was opened at http://127.0.0.1:" in r.text


async def test_cards_may_carry_new_passwords(gateway: Gateway, clients: Clients) -> None:
    page = await clients["teacher"].post("/admin/signin-sheet", params={"users": "alice,bob"})
    assert page.status_code == 200
    passwords = dict(
        re.findall(r'<h2 class="name">([^<]+)</h2>.*?Password: <b>([^<]+)</b>', page.text)
    )
    assert sorted(passwords) == ["alice", "bob"]
    async with gateway.client(auth=("alice", passwords["alice"])) as alice:
        assert (await alice.get("/api/v1/me")).json()["name"] == "alice"
    plain = await clients["teacher"].get("/admin/signin-sheet")
    assert "Password:" not in plain.text  # only when asked for
    refused = await clients["alice"].post("/admin/signin-sheet")
    assert "Password:" not in refused.text


async def test_a_loopback_address_is_warned_about_on_screen(clients: Clients) -> None:
    page = await clients["teacher"].get("/admin/signin-sheet")
    assert 'class="warn"' in page.text
    assert "only this computer can open" in page.text
    address = (await clients["teacher"].get("/admin/address")).json()
    assert "only this computer can open" in address["warning"]


async def test_instructor_links_only_when_asked_for_explicitly(
    clients: Clients,
) -> None:
    teacher = clients["teacher"]
    named = await teacher.get("/admin/signin-sheet", params={"users": "teacher,alice"})
    assert named.status_code == 200
    assert re.findall(r'<h2 class="name">([^<]+)</h2>', named.text) == ["alice"]
    assert len(LINK.findall(named.text)) == 1
    asked = await teacher.get(
        "/admin/signin-sheet", params={"users": "teacher,alice", "instructors": "true"}
    )
    assert re.findall(r'<h2 class="name">([^<]+)</h2>', asked.text) == ["alice", "teacher"]
