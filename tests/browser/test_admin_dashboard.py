"""The instructor's dashboard in real headless Chromium, driven like a workshop.

Jobs go in through the platform API as three participants; a fake worker on
the real worker channel claims them only when the test says so.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from playwright.async_api import BrowserContext, Page, expect

from tests.admin.helpers import ScriptedWorker, submit
from tests.browser.conftest import keep_for_docs
from tests.conftest import Gateway, Person, wait_for

pytestmark = pytest.mark.browser

Clients = dict[str, httpx.AsyncClient]


@pytest.fixture(autouse=True)
def _patient_expect() -> None:
    expect.set_options(timeout=10_000)


@pytest.fixture
def page_errors() -> list[str]:
    """Script errors and failed requests of the dashboard; none are expected."""
    return []


async def open_dashboard(
    context: BrowserContext, gateway: Gateway, teacher: Person, errors: list[str]
) -> Page:
    """Open /admin signed out, get sent to the login page, sign in there."""
    page = await context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    await page.goto(f"{gateway.url}/admin")
    await expect(page).to_have_url(f"{gateway.url}/login?next=%2Fadmin")
    await page.fill("#name", teacher.name)
    await page.fill("#password", teacher.password)
    await page.click("#login button[type=submit]")
    await expect(page).to_have_url(f"{gateway.url}/admin")
    await expect(page.locator("#conn")).to_have_text("live")
    return page


async def shown_order(page: Page) -> list[str]:
    ids: list[str] = await page.locator("#pending .vrow").evaluate_all(
        "rows => rows.map(r => r.dataset.id)"
    )
    return ids


async def api_order(admin: httpx.AsyncClient) -> list[str]:
    r = await admin.get("/api/v1/queue")
    return [j["id"] for j in sorted(r.json()["pending"], key=lambda j: j["position"])]


@pytest.mark.slow
async def test_instructor_runs_the_room(
    context: BrowserContext,
    gateway: Gateway,
    people: dict[str, Person],
    clients: Clients,
    workers: Callable[[str], Awaitable[ScriptedWorker]],
    artifacts: Path,
    page_errors: list[str],
) -> None:
    worker = await workers("gpu-1")
    await workers("gpu-2")
    page = await open_dashboard(context, gateway, people["teacher"], page_errors)
    await expect(page.locator("#workers-table tbody tr")).to_have_count(2)
    admin = clients["teacher"]

    # jobs from three people appear as they are submitted
    jobs = []
    for n, name in enumerate(["alice", "alice", "alice", "bob", "bob", "carol"], start=1):
        jobs.append(await submit(clients[name]))
        await expect(page.locator("#pending .vrow")).to_have_count(n)
    await wait_for(lambda: page_matches_api(page, admin))
    shown = await page.locator("#pending .vrow .user").all_inner_texts()
    assert shown == ["alice", "bob", "carol", "alice", "bob", "alice"]  # fair round-robin

    # cancel one
    victim = jobs[1]["id"]
    await page.click(f'#pending .vrow[data-id="{victim}"] button[data-action="cancel"]')
    await expect(page.locator(f'#pending .vrow[data-id="{victim}"]')).to_have_count(0)
    assert (await admin.get(f"/api/v1/jobs/{victim}")).json()["state"] == "cancelled"
    await expect(page.locator("#finished tbody tr")).to_have_count(1)

    # move carol's job to the front and see the new order
    carols = jobs[5]["id"]
    await page.click(f'#pending .vrow[data-id="{carols}"] button[data-action="front"]')
    await expect(page.locator("#pending .vrow").first).to_have_attribute("data-id", carols)
    await wait_for(lambda: page_matches_api(page, admin))

    # change a class: bob's last job to class 2 jumps ahead of class 5
    bobs = jobs[4]["id"]
    await page.select_option(f'#pending .vrow[data-id="{bobs}"] select', "2")
    await expect(page.locator("#pending .vrow").first).to_have_attribute("data-id", bobs)
    await wait_for(lambda: page_matches_api(page, admin))

    # pause: the worker asks for work and gets none, nothing starts
    await page.click("#pause-toggle")
    await expect(page.locator("#dispatch")).to_have_text("paused")
    assert (await admin.get("/api/v1/queue")).json()["paused"] is True
    assert await worker.claim() is None
    await expect(page.locator("#running tbody tr")).to_have_count(0)
    await expect(page.locator("#running-empty")).to_be_visible()
    await page.screenshot(path=str(artifacts / "admin-paused.png"))

    # resume: the next job starts on the worker, with progress
    await page.click("#pause-toggle")
    await expect(page.locator("#dispatch")).to_have_text("dispatching")
    claimed = await worker.claim()
    assert claimed is not None
    assert claimed.job_id == bobs
    row = page.locator("#running tbody tr")
    await expect(row).to_have_count(1)
    await expect(row.locator("td").nth(2)).to_have_text("gpu-1")
    await worker.progress(claimed, 7, 20)
    await expect(row.locator(".bar b")).to_have_text("7/20")
    gpu1 = page.locator("#workers-table tbody tr", has_text="gpu-1")
    await expect(gpu1.locator("td").nth(1)).to_have_text("busy")

    # switch mode: fifo serves alice's older job before bob's
    await wait_for(lambda: page_matches_api(page, admin))
    before = await shown_order(page)
    await page.click('.seg-btn[data-mode="fifo"]')
    await expect(page.locator('.seg-btn[data-mode="fifo"]')).to_have_attribute(
        "aria-pressed", "true"
    )
    assert (await admin.get("/api/v1/queue")).json()["mode"] == "fifo"
    await wait_for(lambda: page_matches_api(page, admin))
    after = await shown_order(page)
    assert after != before
    assert after == [carols, jobs[0]["id"], jobs[2]["id"], jobs[3]["id"]]

    await page.fill("#broadcast-text", "Break until 11:00: the queue keeps your place")
    await page.click("#broadcast button[type=submit]")
    await expect(page.locator("#broadcast-now")).to_contain_text("Break until 11:00")
    await page.screenshot(path=str(artifacts / "admin-dashboard.png"), full_page=True)
    keep_for_docs(artifacts, "admin-dashboard.png")
    keep_for_docs(artifacts, "admin-paused.png")

    await worker.complete(claimed)
    await expect(page.locator("#running tbody tr")).to_have_count(0)
    first_done = page.locator("#finished tbody tr").first.locator("td").first
    await expect(first_done).to_have_text("done")
    assert page_errors == []


async def page_matches_api(page: Page, admin: httpx.AsyncClient) -> bool:
    return await shown_order(page) == await api_order(admin)


async def test_participant_is_refused(
    context: BrowserContext, gateway: Gateway, people: dict[str, Person]
) -> None:
    page = await context.new_page()
    login = {"name": "alice", "password": people["alice"].password}
    assert (await page.request.post(f"{gateway.url}/api/v1/login", data=login)).ok
    response = await page.goto(f"{gateway.url}/admin")
    assert response is not None
    assert response.status == 403
    await expect(page.locator("h1")).to_have_text("This page is for the instructor")
    api = await page.request.post(f"{gateway.url}/api/v1/queue/pause")
    assert api.status == 403


async def test_people_are_managed_from_the_page(
    context: BrowserContext,
    gateway: Gateway,
    people: dict[str, Person],
    clients: Clients,
    artifacts: Path,
    page_errors: list[str],
) -> None:
    page = await open_dashboard(context, gateway, people["teacher"], page_errors)
    page.on("dialog", lambda dialog: dialog.accept())
    users = page.locator("#users tbody tr")
    await expect(users).to_have_count(4)

    await page.fill('#add-user input[name="name"]', "dave")
    await page.click("#add-user button[type=submit]")
    await expect(page.locator("#secret")).to_contain_text("Password of dave:")
    password = await page.locator("#secret b").inner_text()
    await expect(users).to_have_count(5)
    async with gateway.client(auth=("dave", password)) as dave:
        assert (await dave.get("/api/v1/me")).json()["name"] == "dave"

    dave_row = page.locator("#users tbody tr", has_text="dave")
    await dave_row.locator('button[data-action="password"]').click()
    await expect(page.locator("#secret b")).not_to_have_text(password)
    new_password = await page.locator("#secret b").inner_text()
    async with gateway.client(auth=("dave", new_password)) as dave:
        assert (await dave.get("/api/v1/me")).status_code == 200

    bob_cap = page.locator("#users tbody tr", has_text="bob").locator("input.cap-input")
    await bob_cap.fill("3")
    await bob_cap.press("Tab")
    await wait_for(lambda: user_cap(clients["teacher"], "bob", 3))

    await page.screenshot(path=str(artifacts / "admin-room.png"))
    await dave_row.locator('button[data-action="remove"]').click()
    await expect(users).to_have_count(4)
    r = await clients["teacher"].get("/api/v1/users")
    assert "dave" not in [u["name"] for u in r.json()]
    assert page_errors == []


async def user_cap(admin: httpx.AsyncClient, name: str, cap: int) -> bool:
    r = await admin.get("/api/v1/users")
    return any(u["name"] == name and u["cap"] == cap for u in r.json())


async def test_signin_sheet_prints(
    context: BrowserContext,
    gateway: Gateway,
    people: dict[str, Person],
    artifacts: Path,
    page_errors: list[str],
) -> None:
    page = await open_dashboard(context, gateway, people["teacher"], page_errors)
    async with page.expect_popup() as popup:
        await page.click('a[href="/admin/signin-sheet"]')
    sheet = await popup.value
    await expect(sheet.locator(".card")).to_have_count(3)
    await expect(sheet.locator(".card svg")).to_have_count(3)
    await sheet.screenshot(path=str(artifacts / "admin-signin-sheet.png"))
    keep_for_docs(artifacts, "admin-signin-sheet.png")
    pdf = await sheet.request.get(f"{gateway.url}/admin/signin-sheet.pdf")
    assert pdf.headers["content-type"] == "application/pdf"
    assert page_errors == []
