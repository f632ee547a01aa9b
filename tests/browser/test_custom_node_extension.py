"""A custom node's front-end code runs in the participant's page: the worker's
ComfyUI (the stand-in, loading tests/comfyui_custom_nodes) serves a web
extension, the gateway carries it, and the stock frontend imports it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import BrowserContext

from tests.browser.test_participant import Watch, shot, sign_in
from tests.comfy.procs import CUSTOM_NODES, Proc, start_standin, start_worker
from tests.conftest import Gateway, Person, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.slow]

BADGE_PATH = "/extensions/comfy_multi_badge/badge.js"


@pytest.fixture
def gpu_with_custom_nodes(
    gateway: Gateway, worker_token: str, tmp_path: Path
) -> Iterator[tuple[Proc, Proc]]:
    standin = start_standin(
        tmp_path / "standin", tmp_path / "standin.log", custom_nodes=CUSTOM_NODES
    )
    worker = start_worker(gateway.url, worker_token, standin.url, tmp_path / "worker.log")
    yield standin, worker
    worker.stop()
    standin.stop()


async def test_the_extension_runs_and_its_node_is_in_the_library(
    gateway: Gateway,
    people: dict[str, Person],
    gpu_with_custom_nodes: tuple[Proc, Proc],
    context: BrowserContext,
    artifacts: Path,
) -> None:
    async with gateway.client(auth=people["alice"].auth) as alice:

        async def carried() -> bool:
            listed = (await alice.get("/u/alice/api/extensions")).json()
            return BADGE_PATH in listed

        await wait_for(carried, timeout=60, interval=0.2)

    page = await context.new_page()
    watch = Watch("alice")
    watch.attach(page, gateway)
    await sign_in(page, gateway, people["alice"])
    # setup() of the extension put its badge on the page
    await page.locator("#cm-test-badge").filter(has_text="badge extension loaded").wait_for()
    assert await page.evaluate("() => window.__cmBadgeLoaded === true")
    # the node is in the library, and the extension's beforeRegisterNodeDef shaped it
    await page.wait_for_function("() => !!window.LiteGraph?.registered_node_types?.CMBadge")
    color = await page.evaluate(
        """() => {
            const node = window.LiteGraph.createNode('CMBadge');
            window.comfyAPI.app.app.graph.add(node);
            return node.color;
        }"""
    )
    assert color == "#7a2e8e"
    await shot(page, artifacts, "participant-custom-node-extension.png")
    watch.assert_clean()
