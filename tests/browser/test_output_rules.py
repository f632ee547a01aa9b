"""The gateway's previewable rule is the pinned frontend's own: the same table
of output items goes through the bundle's `filterPreviewableResults` in the
participant's page and through services.outputs."""

from __future__ import annotations

from pathlib import Path

import comfyui_frontend_package
import pytest
from playwright.async_api import BrowserContext

from comfy_multi.services import outputs as rules
from tests.browser.test_participant import sign_in
from tests.comfy.test_output_kinds import CASES
from tests.conftest import Gateway, Person

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ASSETS = Path(comfyui_frontend_package.__file__).parent / "static" / "assets"


def bundle_module() -> str:
    """The hashed file name of the frontend module holding the job-output parser."""
    found = sorted(ASSETS.glob("assetsStore-*.js"))
    assert len(found) == 1, found
    return found[0].name


async def test_previewable_items_match_the_bundle(
    gateway: Gateway, people: dict[str, Person], context: BrowserContext
) -> None:
    page = await context.new_page()
    await sign_in(page, gateway, people["alice"])
    outputs = {str(n): {key: [item]} for n, (key, item, _) in enumerate(CASES)}
    # getPreviewableOutputsFromJobDetail (exported as `h`): the frontend's
    # parseTaskOutput then filterPreviewableResults, as its queue and assets panels use
    from_bundle = await page.evaluate(
        """async ([module, outputs]) => {
            const m = await import(`./assets/${module}`);
            return m.h({outputs}).map((i) => i.nodeId);
        }""",
        [bundle_module(), outputs],
    )
    ours = [n for n, key, item in rules.file_items(outputs) if rules.is_previewable(key, item)]
    assert sorted(from_bundle, key=int) == sorted(ours, key=int)
    expected = [str(n) for n, (_, _, previewable) in enumerate(CASES) if previewable]
    assert sorted(ours, key=int) == expected
