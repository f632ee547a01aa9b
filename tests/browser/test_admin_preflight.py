"""The dashboard's pre-flight button in Chromium: the same list `comfy-multi check` prints."""

from __future__ import annotations

import pytest
from playwright.async_api import BrowserContext, expect

from tests.browser.test_admin_dashboard import open_dashboard
from tests.conftest import Gateway, Person

pytestmark = pytest.mark.browser


async def test_preflight_button_lists_what_is_not_ready(
    context: BrowserContext, gateway: Gateway, people: dict[str, Person]
) -> None:
    errors: list[str] = []
    page = await open_dashboard(context, gateway, people["teacher"], errors)
    await page.get_by_role("button", name="Run pre-flight check").click()
    lines = page.locator("#preflight-lines li")
    await expect(page.locator("#preflight-status")).to_have_text("2 checks failed", timeout=20_000)
    await expect(lines.filter(has_text="✗ Workers: no GPU worker is online")).to_have_count(1)
    await expect(lines.filter(has_text="✗ Test job: not queued")).to_have_count(1)
    await expect(lines.filter(has_text="! Public URL:")).to_have_class("check-warn")
    assert await page.locator("#preflight-run").is_enabled()
    assert [e for e in errors if "favicon" not in e] == []
