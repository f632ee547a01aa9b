"""The stock templates dialog shows the workshop's workflows first, then the
upstream templates this room's workers can run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import BrowserContext

from tests.browser.test_participant import Watch, shot, sign_in
from tests.comfy.procs import Proc, start_standin, start_worker
from tests.conftest import Gateway, Person

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def gpu(gateway: Gateway, worker_token: str, tmp_path: Path) -> Iterator[tuple[Proc, Proc]]:
    standin = start_standin(tmp_path / "standin", tmp_path / "standin.log")
    worker = start_worker(gateway.url, worker_token, standin.url, tmp_path / "worker.log")
    yield standin, worker
    worker.stop()
    standin.stop()


async def test_templates_dialog_lists_the_workshop_first(
    gateway: Gateway,
    people: dict[str, Person],
    gpu: tuple[Proc, Proc],
    context: BrowserContext,
    artifacts: Path,
) -> None:
    page = await context.new_page()
    watch = Watch("alice")
    watch.attach(page, gateway)
    await sign_in(page, gateway, people["alice"])
    await page.evaluate(
        "() => window.comfyAPI.app.app.extensionManager.command.execute('Comfy.BrowseTemplates')"
    )
    dialog = page.get_by_role("dialog")
    card = dialog.get_by_text("1 Invert a colour", exact=True).first
    await card.wait_for(timeout=30_000)
    await shot(page, artifacts, "participant-templates.png")
    await card.click()
    await page.wait_for_function(
        "() => window.comfyAPI.app.app.graph._nodes.some((n) => n.type === 'ImageInvert')"
    )
    watch.assert_clean()
