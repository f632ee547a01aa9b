"""Feedback at the end of a workshop: the instructor asks from the dashboard,
each participant's page shows the form, one answer per person, and the report
lists them."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import BrowserContext, Page, expect

from comfy_multi.settings import Settings
from tests.browser.test_admin_dashboard import open_dashboard
from tests.browser.test_participant import sign_in
from tests.conftest import Gateway, Person

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CLI_TIMEOUT_S = 60


@pytest.fixture
async def other(context: BrowserContext) -> AsyncIterator[BrowserContext]:
    assert context.browser is not None
    ctx = await context.browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        yield ctx
    finally:
        await ctx.close()


async def answer(page: Page, stars: int, comment: str = "") -> None:
    form = page.locator("#comfy-multi-feedback")
    await form.get_by_role("button", name=f"{stars} of 5").click()
    if comment:
        await form.locator("textarea").fill(comment)
    await form.get_by_role("button", name="Send").click()
    await expect(form).to_contain_text("Thank you for your feedback!")


async def report(settings: Settings, out: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMFY_MULTI_")}
    env.update(REDIS_URL=str(settings.redis_url), COLUMNS="200", NO_COLOR="1")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "comfy_multi",
        "report",
        "--out",
        str(out),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    text, _ = await asyncio.wait_for(proc.communicate(), timeout=CLI_TIMEOUT_S)
    assert proc.returncode == 0, text.decode()
    return text.decode()


async def test_the_room_gives_feedback_and_the_report_has_it(
    gateway: Gateway,
    people: dict[str, Person],
    context: BrowserContext,
    other: BrowserContext,
    tmp_path: Path,
    artifacts: Path,
) -> None:
    expect.set_options(timeout=15_000)
    errors: list[str] = []
    dashboard = await open_dashboard(context, gateway, people["teacher"], errors)
    alice = await other.new_page()
    await sign_in(alice, gateway, people["alice"])
    form = alice.locator("#comfy-multi-feedback")
    await expect(form).to_have_count(0)
    # nobody can answer before the instructor asks
    early = await alice.request.post(
        f"{gateway.url}/api/v1/feedback", data={"rating": 5, "comment": "early"}
    )
    assert early.status == 409
    assert "not asking for feedback" in (await early.json())["message"]

    await dashboard.click("#feedback-toggle")
    await expect(dashboard.locator("#feedback-toggle")).to_have_text("Stop asking for feedback")
    await expect(form).to_be_visible()  # on the open page, at once
    await expect(form.get_by_role("button", name="Send")).to_be_disabled()
    await alice.screenshot(path=str(artifacts / "participant-feedback.png"))
    await answer(alice, 4, "Loved the blur example")

    # bob opens his page later: the form is there too; his second answer replaces the first
    assert context.browser is not None
    bob_context = await context.browser.new_context(viewport={"width": 1400, "height": 900})
    bob = await bob_context.new_page()
    await sign_in(bob, gateway, people["bob"])
    await answer(bob, 5)
    await bob.reload()
    await expect(bob.locator("#comfy-multi-feedback h2")).to_have_text(
        "Thank you! You can change your answer"
    )
    await answer(bob, 3, "A bit fast")
    bad = await bob.request.post(f"{gateway.url}/api/v1/feedback", data={"rating": 7})
    assert bad.status == 422

    summary = dashboard.locator("#feedback-summary")
    await expect(summary).to_have_text("Asking now · 2 answers, average 3.5 of 5 (in the report)")
    await dashboard.click("#feedback-toggle")
    await expect(form).to_have_count(0)  # hidden again on every page
    await expect(summary).to_have_text("2 answers, average 3.5 of 5 (in the report)")

    text = await report(gateway.settings, tmp_path / "after")
    assert "Feedback: 2 answers, average 3.5 of 5" in text
    assert "Loved the blur example" in text
    assert "A bit fast" in text
    rows = (tmp_path / "after" / "feedback.csv").read_text().splitlines()
    assert rows[0] == "person,rating,comment,answered_at"
    assert [r.split(",")[:3] for r in rows[1:]] == [
        ["alice", "4", "Loved the blur example"],
        ["bob", "3", "A bit fast"],
    ]
    await bob_context.close()
    assert errors == []
