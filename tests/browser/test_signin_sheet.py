"""The sign-in sheet and its links in Chromium, as an instructor and a participant use them."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import BrowserContext, expect

from tests.browser.test_admin_dashboard import open_dashboard
from tests.conftest import Gateway, Person

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def _patient_expect() -> None:
    expect.set_options(timeout=10_000)


async def test_sheet_warns_on_screen_prints_passwords_and_links_confirm(
    context: BrowserContext, gateway: Gateway, people: dict[str, Person]
) -> None:
    errors: list[str] = []
    dashboard = await open_dashboard(context, gateway, people["teacher"], errors)
    # the gateway listens on loopback with no public URL: the dashboard says so at once
    await expect(dashboard.locator("#address-warning")).to_contain_text(
        "only this computer can open"
    )

    sheet = await context.new_page()
    await sheet.goto(f"{gateway.url}/admin/signin-sheet?users=alice")
    warning = sheet.locator(".warn")
    await expect(warning).to_be_visible()
    await sheet.emulate_media(media="print")
    await expect(warning).to_be_hidden()  # never on the printed cards
    await sheet.emulate_media(media="screen")

    await sheet.get_by_role("button", name="Print new passwords on the cards").click()
    password_line = sheet.locator(".card .password")
    await expect(password_line).to_contain_text("Password:")
    password = (await password_line.locator("b").inner_text()).strip()
    link = await sheet.locator(".card .link").get_attribute("data-signin")
    assert link

    # a participant's phone: the link shows who it signs in, and only the button uses it
    phone = await context.browser.new_context()
    try:
        page = await phone.new_page()
        await page.goto(link)
        await expect(page.locator("h1")).to_have_text("Sign in as alice")
        await page.reload()  # a prefetch or a second look burns nothing
        await page.get_by_role("button", name="Sign in as alice").click()
        await expect(page).to_have_url(re.compile(r"/u/alice/(\?.*)?$"))
        again = await phone.new_page()
        await again.goto(link)
        await expect(again.locator("h1")).to_have_text("This link was already used")
    finally:
        await phone.close()

    # the password printed on the card signs alice in on her laptop
    laptop = await context.browser.new_context()
    try:
        page = await laptop.new_page()
        await page.goto(f"{gateway.url}/login")
        await page.fill("#name", "alice")
        await page.fill("#password", password)
        await page.click("#login button[type=submit]")
        await expect(page).to_have_url(re.compile(r"/u/alice/(\?.*)?$"))
    finally:
        await laptop.close()
    assert [e for e in errors if "favicon" not in e] == []
