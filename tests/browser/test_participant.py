"""A participant's whole day in real Chromium: sign in, the stock ComfyUI canvas
with the workshop's workflows, Run, a worker with the ComfyUI stand-in runs
it, the output appears; a second participant sees none of it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page

from tests.browser.conftest import keep_for_docs
from tests.comfy.procs import Proc, start_standin, start_worker, wait_worker_online
from tests.conftest import Gateway, Person

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LOAD_TIMEOUT_MS = 60_000
RUN_TIMEOUT_MS = 60_000
GRAPH_READY = "() => (window.comfyAPI?.app?.app?.graph?._nodes?.length ?? 0) > 0"
NODE_TYPES = "() => window.comfyAPI.app.app.graph._nodes.map((n) => n.type)"


@dataclass
class Watch:
    """What a page logged and which of our routes answered badly."""

    user: str
    console_errors: list[str] = field(default_factory=list)
    bad_responses: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)

    def attach(self, page: Page, gateway: Gateway) -> None:
        ours = f"/u/{self.user}/"

        def on_console(message: Any) -> None:
            if message.type != "error":
                return
            source = urlsplit(str(message.location.get("url", "")))
            if (
                message.text.startswith("Failed to load resource")
                and source.netloc not in gateway.url
            ):
                return  # ComfyUI asking comfy.org (node registry, releases): offline in tests
            self.console_errors.append(f"{message.text} ({source.path})")

        def on_response(response: Any) -> None:
            url = urlsplit(response.url)
            if url.netloc in gateway.url and url.path.startswith(ours) and response.status >= 400:
                self.bad_responses.append(f"{response.status} {response.request.method} {url.path}")

        def on_failed(request: Any) -> None:
            url = urlsplit(request.url)
            if request.failure == "net::ERR_ABORTED":
                return  # the page dropped a request it no longer needed (a superseded save)
            if url.netloc in gateway.url and url.path.startswith(ours):
                self.failed_requests.append(f"{request.method} {url.path}: {request.failure}")

        page.on("console", on_console)
        page.on("response", on_response)
        page.on("requestfailed", on_failed)

    def assert_clean(self) -> None:
        assert self.bad_responses == [], self.bad_responses
        assert self.failed_requests == [], self.failed_requests
        assert self.console_errors == [], self.console_errors


@pytest.fixture
def gpu(gateway: Gateway, worker_token: str, tmp_path: Path) -> Iterator[tuple[Proc, Proc]]:
    standin = start_standin(tmp_path / "standin", tmp_path / "standin.log")
    worker = start_worker(gateway.url, worker_token, standin.url, tmp_path / "worker.log")
    yield standin, worker
    worker.stop()
    standin.stop()


@pytest.fixture
async def admin(gateway: Gateway, people: dict[str, Person]) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway.client(auth=people["teacher"].auth) as http:
        yield http


@pytest.fixture
async def second_context(browser: Browser) -> AsyncIterator[BrowserContext]:
    ctx = await browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        yield ctx
    finally:
        await ctx.close()


async def sign_in(page: Page, gateway: Gateway, person: Person) -> None:
    await page.goto(f"{gateway.url}/u/{person.name}/")
    await page.wait_for_url(lambda url: urlsplit(url).path == "/login")
    await page.fill("#name", person.name)
    await page.fill("#password", person.password)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"**/u/{person.name}/**")
    await page.wait_for_function(GRAPH_READY, timeout=LOAD_TIMEOUT_MS)


async def shot(page: Page, artifacts: Path, name: str, *, docs: bool = False) -> None:
    path = artifacts / name
    await page.screenshot(path=str(path))
    if docs:
        keep_for_docs(artifacts, name)


async def test_participant_runs_a_workshop_workflow_and_sees_the_output(
    gateway: Gateway,
    people: dict[str, Person],
    gpu: tuple[Proc, Proc],
    admin: httpx.AsyncClient,
    context: BrowserContext,
    second_context: BrowserContext,
    artifacts: Path,
) -> None:
    standin, worker = gpu
    await wait_worker_online(admin, people["teacher"].auth)

    # alice signs in and lands on the shipped examples, not on a dialog
    page = await context.new_page()
    alice = Watch("alice")
    alice.attach(page, gateway)
    await sign_in(page, gateway, people["alice"])
    assert await page.evaluate(NODE_TYPES) == ["EmptyImage", "ImageInvert", "SaveImage"]
    tabs = page.locator(".workflow-tab")
    await tabs.filter(has_text="3 Blur then invert").wait_for()
    await page.locator("#comfy-multi-bar").wait_for()
    await shot(page, artifacts, "participant-canvas.png", docs=True)

    # the workflows browser lists the examples; open one from there
    await page.get_by_role("button", name="Workflows (w)").click()
    await page.get_by_role("treeitem", name="examples").click()
    blur = page.get_by_role("treeitem", name="2 Blur your own picture")
    await blur.wait_for()
    await shot(page, artifacts, "participant-workflows.png", docs=True)
    await blur.click()
    await page.wait_for_function(f"() => ({NODE_TYPES})().includes('ImageBlur')")
    await page.get_by_role("button", name="Workflows (w)").click()
    assert await page.evaluate(NODE_TYPES) == ["LoadImage", "ImageBlur", "SaveImage"]

    # with the queue paused the page shows its place in line
    assert (await admin.post("/api/v1/queue/pause")).status_code == 200
    await page.get_by_role("button", name="Run", exact=True).click()
    place = page.locator("#comfy-multi-place")
    await place.filter(has_text="#1 in the queue").wait_for(timeout=RUN_TIMEOUT_MS)
    await shot(page, artifacts, "participant-queued.png", docs=True)
    assert (await admin.post("/api/v1/queue/resume")).status_code == 200

    # the worker runs it on the stand-in; the output shows in the page
    output = page.locator("img[src*='/u/alice/api/view?filename=blurred_']").first
    await output.wait_for(state="attached", timeout=RUN_TIMEOUT_MS)
    await page.get_by_text("Job completed").first.wait_for(timeout=RUN_TIMEOUT_MS)
    await shot(page, artifacts, "participant-output.png", docs=True)
    await page.get_by_role("button", name="Expand job queue").click()
    await page.locator("img[src*='blurred_']").first.wait_for()
    await shot(page, artifacts, "participant-history.png", docs=True)
    jobs = await page.evaluate("async () => (await (await fetch('api/jobs')).json()).jobs")
    assert [j["status"] for j in jobs] == ["completed"]
    src = await output.get_attribute("src")
    assert src is not None
    view = await page.evaluate("async (u) => (await fetch(u)).status", src)
    assert view == 200
    alice.assert_clean()

    # bob, in another browser, sees none of it
    other = await second_context.new_page()
    bob = Watch("bob")
    bob.attach(other, gateway)
    await sign_in(other, gateway, people["bob"])
    assert await other.evaluate("async () => (await (await fetch('api/jobs')).json()).jobs") == []
    assert await other.evaluate("async () => (await (await fetch('api/history')).json())") == {}
    await other.get_by_role("button", name="Expand job queue").click()
    assert await other.locator("img[src*='blurred_']").count() == 0
    await shot(other, artifacts, "participant-second-user.png")
    bob.assert_clean()
    # and alice's output is out of bob's reach (these two probes log 403/404 on purpose)
    filename = src.split("filename=")[1].split("&")[0]
    theirs = await other.evaluate(
        "async (u) => (await fetch(u)).status", f"/u/alice/api/view?filename={filename}&type=output"
    )
    assert theirs == 403
    own = await other.evaluate(
        "async (u) => (await fetch(u)).status", f"api/view?filename={filename}&type=output"
    )
    assert own == 404
    assert worker.proc.poll() is None, worker.output()
    assert standin.proc.poll() is None, standin.output()


async def test_before_any_worker_the_page_says_so(
    gateway: Gateway, people: dict[str, Person], context: BrowserContext, artifacts: Path
) -> None:
    page = await context.new_page()
    carol = Watch("carol")
    carol.attach(page, gateway)
    await sign_in(page, gateway, people["carol"])
    banner = page.locator("#comfy-multi-banner")
    await banner.filter(has_text="No GPU worker has connected yet").wait_for()
    await shot(page, artifacts, "participant-no-worker.png")
    # the nodes are unknown until a worker publishes them, so ComfyUI itself holds Run
    carol.assert_clean()
