"""Every page a person can reach looks like the rest of the room, not a bare white page."""

from __future__ import annotations

import pytest
from playwright.async_api import BrowserContext, Page, expect

from tests.conftest import Gateway, Person

pytestmark = pytest.mark.browser

DARK_BACKGROUND = "rgb(23, 23, 24)"  # the sign-in page's


async def background(page: Page) -> str:
    color: str = await page.evaluate("getComputedStyle(document.body).backgroundColor")
    return color


async def signed_in_as(context: BrowserContext, gateway: Gateway, person: Person) -> Page:
    page = await context.new_page()
    login = {"name": person.name, "password": person.password}
    assert (await page.request.post(f"{gateway.url}/api/v1/login", data=login)).ok
    return page


async def test_a_participant_opening_the_admin_page_gets_a_styled_refusal(
    context: BrowserContext, gateway: Gateway, people: dict[str, Person]
) -> None:
    page = await signed_in_as(context, gateway, people["alice"])
    response = await page.goto(f"{gateway.url}/admin")
    assert response is not None
    assert response.status == 403
    await expect(page.locator("h1")).to_have_text("This page is for the instructor")
    assert await background(page) == DARK_BACKGROUND
    await page.click("text=Open your workspace")
    await expect(page).to_have_url(f"{gateway.url}/u/alice/")


@pytest.mark.parametrize("path", ["/admin/signin-sheet", "/admin/static/admin.js"])
async def test_every_instructor_page_refuses_a_participant_in_style(
    context: BrowserContext, gateway: Gateway, people: dict[str, Person], path: str
) -> None:
    page = await signed_in_as(context, gateway, people["bob"])
    response = await page.goto(f"{gateway.url}{path}")
    assert response is not None
    assert response.status == 403
    assert await background(page) == DARK_BACKGROUND
    await expect(page.locator("main")).to_contain_text("signed in as bob")


async def test_an_unknown_address_shows_a_styled_page_and_scripts_still_get_json(
    context: BrowserContext, gateway: Gateway, people: dict[str, Person]
) -> None:
    page = await context.new_page()
    response = await page.goto(f"{gateway.url}/no/such/page")
    assert response is not None
    assert response.status == 404
    await expect(page.locator("h1")).to_have_text("Nothing here")
    assert await background(page) == DARK_BACKGROUND

    api = await page.request.get(f"{gateway.url}/api/v1/no-such-route")
    assert api.status == 404
    assert (await api.json())["error"] == "http_error"
