"""The dashboard with 1,000 waiting jobs and 20 busy workers: it stays fast,
re-renders a few times a second at most, and builds only the rows in view.

The figures go to test-artifacts/admin-scale.json.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from comfy_multi.admin.changes import Changes, Section
from comfy_multi.admin.live import FLUSH_INTERVAL_S, LiveView
from comfy_multi.services.platform import open_platform
from comfy_multi.services.users import UserStore
from comfy_multi.wire import ClaimedJob
from tests.admin.helpers import PROMPT, ScriptedWorker
from tests.browser.conftest import keep_for_docs
from tests.conftest import TEST_HASHER, Gateway, Person

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PENDING = 1000
WORKERS = 20
PEOPLE = 10
CHURN_S = 3.0
SUBMIT_CONCURRENCY = 25


@pytest.fixture
async def busy_room(
    gateway: Gateway, people: dict[str, Person], worker_token: str, aredis: Any
) -> AsyncIterator[tuple[list[ScriptedWorker], list[ClaimedJob]]]:
    """1,000 jobs waiting from ten people, twenty workers each running one."""
    store = UserStore(aredis, hasher=TEST_HASHER)
    names = ["alice", "bob", "carol"] + [f"p{i}" for i in range(PEOPLE - 3)]
    for name in names[3:]:
        await store.add(name, f"{name}-pw")
    async with gateway.client(auth=people["teacher"].auth) as admin:
        assert (await admin.put("/api/v1/queue/cap", json={"cap": 0})).status_code == 200
    workers = [ScriptedWorker(gateway, worker_token, f"gpu-{i:02d}") for i in range(WORKERS)]
    clients = [gateway.client(auth=(n, f"{n}-pw")) for n in names]
    try:
        for w in workers:
            await w.register()
        gate = asyncio.Semaphore(SUBMIT_CONCURRENCY)

        async def one(i: int) -> None:
            async with gate:
                r = await clients[i % len(clients)].post("/api/v1/jobs", json={"prompt": PROMPT})
                assert r.status_code == 201, r.text

        await asyncio.gather(*(one(i) for i in range(PENDING + WORKERS)))
        claimed = [await w.claim() for w in workers]
        assert all(claimed)
        yield workers, [c for c in claimed if c]
    finally:
        for c in clients:
            await c.aclose()
        for w in workers:
            await w.aclose()


async def stats(page: Page) -> dict[str, Any]:
    found: dict[str, Any] = await page.evaluate("() => ({...window.cmAdmin.stats})")
    return found


async def test_a_thousand_waiting_jobs(
    browser: Browser,
    gateway: Gateway,
    people: dict[str, Person],
    busy_room: tuple[list[ScriptedWorker], list[ClaimedJob]],
    artifacts: Path,
) -> None:
    workers, claimed = busy_room
    figures: dict[str, Any] = {"pending": PENDING, "workers": WORKERS, "people": PEOPLE}
    figures.update(await server_side_costs(gateway, people["teacher"]))

    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        login = {"name": "teacher", "password": people["teacher"].password}
        assert (await context.request.post(f"{gateway.url}/api/v1/login", data=login)).ok
        page = await context.new_page()
        started = time.perf_counter()
        await page.goto(f"{gateway.url}/admin")
        await expect(page.locator("#pending-count")).to_have_text(f"({PENDING})", timeout=20_000)
        await expect(page.locator("#running tbody tr")).to_have_count(WORKERS)
        figures["open_to_full_view_ms"] = round((time.perf_counter() - started) * 1000)
        first = await stats(page)
        figures["first_render_ms"] = round(first["lastRenderMs"], 1)

        # only the rows in view exist, however long the queue
        rows = await page.locator("#pending .vrow").count()
        figures["pending_rows_in_dom"] = rows
        assert rows < 60
        await page.screenshot(path=str(artifacts / "admin-busy.png"))
        keep_for_docs(artifacts, "admin-busy.png")

        # the end of the list is reachable and numbered right
        await page.locator("#pending").evaluate("el => { el.scrollTop = el.scrollHeight; }")
        await expect(page.locator("#pending .vrow .pos").last).to_have_text(str(PENDING))

        # churn: every worker finishes and claims again, with progress, for a few seconds
        await page.evaluate("() => { window.cmAdmin.stats.maxRenderMs = 0; }")
        before = await stats(page)
        finished = await churn(workers, claimed)
        after = await stats(page)
        renders = after["renders"] - before["renders"]
        figures["churn_jobs_finished"] = finished
        figures["churn_renders"] = renders
        figures["churn_renders_per_s"] = round(renders / CHURN_S, 2)
        figures["churn_max_render_ms"] = round(after["maxRenderMs"], 1)
        figures["churn_messages"] = after["messages"] - before["messages"]
        assert finished >= WORKERS
        # coalesced: one render per update at most, updates at most every FLUSH_INTERVAL_S
        assert renders <= CHURN_S / FLUSH_INTERVAL_S + 3
        # a loose bound, as machines differ; the row count above is what keeps it cheap
        assert after["maxRenderMs"] < 250

        # after the storm the page shows exactly what the scheduler will do
        async with gateway.client(auth=people["teacher"].auth) as admin:
            r = await admin.get("/api/v1/queue")
            expected = r.json()["pending_total"]
        await expect(page.locator("#pending-count")).to_have_text(f"({expected})")

        # a new job reaches the open page within a few frames
        async with gateway.client(auth=("alice", "alice-pw")) as alice:
            t0 = time.perf_counter()
            await alice.post("/api/v1/jobs", json={"prompt": PROMPT})
            await page.wait_for_function(
                "want => document.querySelector('#pending-count').textContent === want",
                arg=f"({expected + 1})",
                polling="raf",
            )
            figures["submit_to_screen_ms"] = round((time.perf_counter() - t0) * 1000)

        await phone_screenshot(browser, gateway, people["teacher"], artifacts)
    finally:
        await context.close()
    (artifacts / "admin-scale.json").write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))


async def churn(workers: list[ScriptedWorker], claimed: list[ClaimedJob]) -> int:
    """Each worker: progress, complete, claim the next; until CHURN_S is up."""
    deadline = time.monotonic() + CHURN_S
    done = 0

    async def loop(worker: ScriptedWorker, job: ClaimedJob) -> None:
        nonlocal done
        while time.monotonic() < deadline:
            await worker.progress(job, 5, 10)
            await worker.complete(job)
            done += 1
            nxt = await worker.claim()
            assert nxt is not None
            job = nxt

    await asyncio.gather(*(loop(w, j) for w, j in zip(workers, claimed, strict=True)))
    return done


async def server_side_costs(gateway: Gateway, teacher: Person) -> dict[str, Any]:
    """What one dashboard costs the gateway: the snapshot, and an update after
    the queue moved (the dispatch order of every waiting job, recomputed)."""
    platform = await open_platform(gateway.settings, sweep=False)
    try:
        me = await platform.users.get(teacher.name)
        view = LiveView(platform, me, dict)
        t0 = time.perf_counter()
        snap = await view.snapshot()
        t1 = time.perf_counter()
        view.pending = []  # as if the whole order had changed
        update = await view.update(Changes(sections={Section.PENDING, Section.RUNNING}))
        t2 = time.perf_counter()
        size = len(json.dumps(snap))
        return {
            "snapshot_build_ms": round((t1 - t0) * 1000, 1),
            "snapshot_bytes": size,
            "update_build_ms": round((t2 - t1) * 1000, 1),
            "update_bytes": len(json.dumps(update)),
        }
    finally:
        await platform.close()


async def phone_screenshot(
    browser: Browser, gateway: Gateway, teacher: Person, artifacts: Path
) -> None:
    phone = await browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True
    )
    try:
        login = {"name": teacher.name, "password": teacher.password}
        assert (await phone.request.post(f"{gateway.url}/api/v1/login", data=login)).ok
        page = await phone.new_page()
        await page.goto(f"{gateway.url}/admin")
        await expect(page.locator("#conn")).to_have_text("live")
        await expect(page.locator("#pending .vrow").first).to_be_visible()
        # nothing wider than the screen but the tables that scroll on their own
        overflow = await page.evaluate("() => document.documentElement.scrollWidth")
        assert overflow <= 390
        await page.screenshot(path=str(artifacts / "admin-phone.png"))
        keep_for_docs(artifacts, "admin-phone.png")
    finally:
        await phone.close()
