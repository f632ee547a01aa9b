"""A GPU worker killed mid-job, watched from the instructor's dashboard and the
participant's page in real Chromium: both say so at once, the canvas lets go
of the node, the job starts again on another worker, and the dead worker can
be forgotten."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import BrowserContext, Page, expect

from comfy_multi.settings import Settings
from tests.browser.test_admin_dashboard import open_dashboard
from tests.browser.test_participant import sign_in
from tests.conftest import Gateway, Person
from tests.worker import prompts
from tests.worker.conftest import Room, StandIns, Workers

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LEASE_S = 8.0  # long enough to see the silent phase, short enough for a test
SLOW = prompts.slow(30.0, steps=60)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"lease_seconds": LEASE_S})


@pytest.fixture
def standins(tmp_path: Path) -> Iterator[StandIns]:
    group = StandIns(tmp_path)
    yield group
    for standin in group.started:
        standin.kill()


@pytest.fixture
def workers(tmp_path: Path, gateway: Gateway, worker_token: str) -> Iterator[Workers]:
    group = Workers(tmp_path, gateway, worker_token)
    yield group
    for worker in group.started:
        with contextlib.suppress(ProcessLookupError):
            worker.proc.send_signal(signal.SIGKILL)
        worker.proc.wait(timeout=10)


@pytest.fixture
async def room(gateway: Gateway, people: dict[str, Person]) -> AsyncIterator[Room]:
    async with gateway.client() as http:
        yield Room(gateway, people, http)


async def run_from_page(page: Page, prompt: dict[str, object]) -> str:
    """Queue a prompt as the page's own Run does: for this page's socket."""
    job_id: str = await page.evaluate(
        """async (prompt) => {
          const api = window.comfyAPI.api.api;
          const res = await fetch("api/prompt", {method: "POST",
            headers: {"Content-Type": "application/json"},
            body: JSON.stringify({prompt, client_id: api.clientId})});
          return (await res.json()).prompt_id;
        }""",
        prompt,
    )
    return job_id


async def test_a_killed_worker_is_visible_at_once_and_its_job_starts_again(
    gateway: Gateway,
    people: dict[str, Person],
    room: Room,
    standins: StandIns,
    workers: Workers,
    context: BrowserContext,
    browser_second: BrowserContext,
    artifacts: Path,
) -> None:
    expect.set_options(timeout=15_000)
    first_gpu, second_gpu = standins.start(name="gpu-a"), standins.start(name="gpu-b")
    doomed = workers.start(first_gpu.url, name="doomed")
    await room.wait_workers(1)
    errors: list[str] = []
    dashboard = await open_dashboard(context, gateway, people["teacher"], errors)
    page = await browser_second.new_page()
    await sign_in(page, gateway, people["alice"])
    bar = page.locator("#comfy-multi-place")

    job_id = await run_from_page(page, SLOW)
    # running: the node, n of m and the time so far, on both pages
    await expect(bar).to_contain_text("Running StandinSlow · node 2 of 3")
    await expect(bar).to_contain_text(" · 0:0")
    await page.wait_for_function("() => window.comfyAPI.app.app.runningNodeId === '2'")
    row = dashboard.locator("#running tbody tr", has_text="alice")
    await expect(row.locator(".step")).to_contain_text("StandinSlow · ")
    await expect(row.locator("td").nth(5)).to_have_text("1 of 3")

    doomed.kill()
    # heartbeats stopped: said at once, with seconds, long before the lease runs out
    await expect(row.locator(".step")).to_contain_text("worker silent for ", timeout=4_000)
    await expect(row.locator(".bar b")).to_have_text("silent")
    await dashboard.screenshot(path=str(artifacts / "admin-worker-silent.png"))
    await expect(bar).to_contain_text("The GPU running your job stopped answering")
    await page.screenshot(path=str(artifacts / "participant-gpu-silent.png"))

    # the lease ran out: back in the queue, the outline gone, no wait estimate without a GPU
    waiting = dashboard.locator("#pending .vrow", has_text="alice")
    await expect(waiting.locator(".user")).to_have_text("alice · restarting: attempt 2 of 3")
    await dashboard.screenshot(path=str(artifacts / "admin-worker-lost.png"))
    await expect(bar).to_contain_text("The GPU was lost · your job will start again")
    await expect(bar).to_contain_text("(attempt 2 of 3)")
    await expect(bar).to_contain_text("none is online right now")
    assert "min" not in await bar.inner_text()
    await page.wait_for_function("() => window.comfyAPI.app.app.runningNodeId == null")
    await page.screenshot(path=str(artifacts / "participant-gpu-lost.png"))

    # another GPU joins: the job runs again there, its second attempt
    workers.start(second_gpu.url, name="rescuer")
    rescued = dashboard.locator("#running tbody tr", has_text="rescuer")
    await expect(rescued.locator("td").nth(5)).to_have_text("2 of 3", timeout=30_000)
    await expect(bar).to_contain_text("attempt 2 of 3")
    await page.wait_for_function("() => window.comfyAPI.app.app.runningNodeId === '2'")

    # the dead worker is offline; the instructor forgets it
    dead = dashboard.locator("#workers-table tbody tr", has_text="doomed")
    await expect(dead.locator("td").nth(1)).to_have_text("offline")
    dashboard.on("dialog", lambda dialog: dialog.accept())
    await dead.locator('button[data-action="forget"]').click()
    await expect(dead).to_have_count(0)
    listed = [w["worker_id"] for w in await room.workers()]
    assert listed
    assert not any(w.startswith("doomed") for w in listed)
    await room.cancel(job_id)
    assert errors == []


@pytest.fixture
async def browser_second(context: BrowserContext) -> AsyncIterator[BrowserContext]:
    assert context.browser is not None
    ctx = await context.browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        yield ctx
    finally:
        await ctx.close()
