"""In Chromium, the participant's page plays the mp4 and the audio the real
ComfyUI made: the media elements load through /view (with Range) far enough
to play, and report a duration."""

from __future__ import annotations

import random
from pathlib import Path
from urllib.parse import urlencode

import pytest
from playwright.async_api import BrowserContext

from tests.browser.test_participant import shot, sign_in
from tests.comfy.procs import Proc
from tests.conftest import Gateway, Person
from tests.real import media
from tests.real.conftest import comfyui, real_worker  # noqa: F401 - fixtures
from tests.real.test_media_outputs import run

pytestmark = [pytest.mark.browser, pytest.mark.comfyui, pytest.mark.slow]

PLAY_TIMEOUT_MS = 30_000

# what the node preview does: an element on the /view url, loaded until it can play
PLAYS = """async ([tag, url]) => {
    const el = document.createElement(tag);
    el.muted = true;
    el.preload = 'auto';
    el.controls = true;
    el.src = url;
    el.id = 'cm-played-' + tag;
    document.body.append(el);
    await new Promise((ok, fail) => {
        el.addEventListener('canplay', ok, {once: true});
        el.addEventListener('error', () => fail(new Error('media error ' + el.error?.code)),
                            {once: true});
    });
    await el.play();
    return {readyState: el.readyState, duration: el.duration, paused: el.paused};
}"""


def view_url(item: dict[str, str]) -> str:
    params = {k: item[k] for k in ("filename", "subfolder", "type")}
    return "api/view?" + urlencode(params)


async def test_the_page_plays_the_real_mp4_and_audio(
    gateway: Gateway,
    people: dict[str, Person],
    real_worker: Proc,  # noqa: F811 - the fixture imported above
    context: BrowserContext,
    artifacts: Path,
) -> None:
    async with gateway.client(auth=people["alice"].auth) as alice:
        job = await run(alice, media.mp4(frames=24, color=random.randrange(1 << 24)))
        (video,) = job["outputs"]["3"]["images"]
        wav = media.tone_wav(seconds=2.0, hz=200 + random.randrange(600))
        uploaded = await alice.post(
            "/u/alice/api/upload/image", files={"image": ("tone.wav", wav)}, data={"overwrite": "1"}
        )
        assert uploaded.status_code == 200, uploaded.text
        job = await run(alice, media.audio(uploaded.json()["name"]))
        (flac,) = job["outputs"]["2"]["audio"]

    page = await context.new_page()
    ranges: list[str] = []
    page.on(
        "request",
        lambda r: ranges.append(r.headers.get("range", "")) if "/api/view" in r.url else None,
    )
    await sign_in(page, gateway, people["alice"])
    played = await page.evaluate(PLAYS, ["video", view_url(video)])
    assert played["readyState"] >= 2, played
    assert played["duration"] == pytest.approx(24 / 8.0, abs=0.2), played
    heard = await page.evaluate(PLAYS, ["audio", view_url(flac)])
    assert heard["readyState"] >= 2, heard
    assert heard["duration"] == pytest.approx(2.0, abs=0.1), heard
    # Chromium fetched the media with Range requests, as a player does
    assert any(r.startswith("bytes=") for r in ranges), ranges
    await shot(page, artifacts, "participant-real-media.png")
