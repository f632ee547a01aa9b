"""One headless Chromium for the whole run (Debian's package, driven by Playwright)."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, async_playwright

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
# Screenshots refresh the docs' images only when asked, so a test run leaves
# the tracked tree as it was: COMFY_MULTI_DOC_SCREENSHOTS=1 scripts/test -m browser
UPDATE_DOCS = os.environ.get("COMFY_MULTI_DOC_SCREENSHOTS") == "1"
CANDIDATES = ("chromium-headless-shell", "chromium", "chromium-browser")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def keep_for_docs(artifacts: Path, name: str) -> None:
    """Copy a screenshot from test-artifacts/ into docs/images/ when asked to."""
    if UPDATE_DOCS:
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(artifacts / name, DOCS_IMAGES / name)


def chromium_path() -> str | None:
    if os.environ.get("COMFY_MULTI_CHROMIUM"):
        return os.environ["COMFY_MULTI_CHROMIUM"]
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    path = chromium_path()
    if path is None:
        pytest.fail(
            "no Chromium found: install Debian's chromium-headless-shell (scripts/test does)"
        )
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=path, args=CHROMIUM_FLAGS, headless=True)
        try:
            yield b
        finally:
            await b.close()


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    ctx = await browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        yield ctx
    finally:
        await ctx.close()
