"""Real media from the real ComfyUI through the platform: an h264 mp4
(EmptyImage batch -> CreateVideo -> SaveVideo), an animated webp and audio
(LoadAudio of an uploaded wav -> SaveAudio) reach the participant, listed and
previewed as upstream shows them, served with Range and the right types."""

from __future__ import annotations

import io
import random
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.comfy.procs import Proc
from tests.conftest import wait_for
from tests.real import media
from tests.real.comfyui import RealComfyUI

pytestmark = [pytest.mark.comfyui, pytest.mark.slow]

RUN_TIMEOUT_S = 180.0


async def run(alice: httpx.AsyncClient, prompt: dict[str, Any]) -> dict[str, Any]:
    needed = {node["class_type"] for node in prompt.values()}

    async def offered() -> bool:
        return needed <= set((await alice.get("/u/alice/api/object_info")).json())

    await wait_for(offered, timeout=60, interval=0.25)  # the worker registers first
    answer = await alice.post("/u/alice/api/prompt", json={"prompt": prompt})
    assert answer.status_code == 200, answer.text
    job_id = answer.json()["prompt_id"]

    async def finished() -> dict[str, Any] | None:
        job: dict[str, Any] = (await alice.get(f"/u/alice/api/jobs/{job_id}")).json()
        return job if job["status"] in ("completed", "failed", "cancelled") else None

    job = await wait_for(finished, timeout=RUN_TIMEOUT_S, interval=0.25)
    assert job["status"] == "completed", job.get("execution_error")
    return job


async def view(alice: httpx.AsyncClient, item: dict[str, Any], **headers: str) -> httpx.Response:
    params = {k: item[k] for k in ("filename", "subfolder", "type")}
    return await alice.get("/u/alice/api/view", params=params, headers=headers)


async def test_mp4_webp_and_audio_from_the_real_comfyui(
    comfyui: RealComfyUI, real_worker: Proc, clients: dict[str, httpx.AsyncClient]
) -> None:
    alice = clients["alice"]
    color = random.randrange(1 << 24)  # a fresh prompt each run: ComfyUI caches repeats

    job = await run(alice, media.mp4(color=color))
    (video,) = job["outputs"]["3"]["images"]
    assert video["filename"].endswith(".mp4")
    assert job["outputs"]["3"]["animated"] == [True]
    assert job["previewable_outputs_count"] == 1
    assert job["preview_output"]["filename"] == video["filename"]
    whole = await view(alice, video)
    assert whole.headers["content-type"] == "video/mp4"
    assert whole.content[4:8] == b"ftyp"
    part = await view(alice, video, Range="bytes=0-99")
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 0-99/{len(whole.content)}"
    assert part.content == whole.content[:100]

    job = await run(alice, media.animated_webp(color=color))
    (webp,) = job["outputs"]["4"]["images"]
    assert job["outputs"]["4"]["animated"] == [True]
    served = await view(alice, webp)
    assert served.headers["content-type"] == "image/webp"
    with Image.open(io.BytesIO(served.content)) as image:
        assert getattr(image, "n_frames", 1) == 2

    wav = media.tone_wav(hz=220 + random.randrange(600))
    uploaded = await alice.post(
        "/u/alice/api/upload/image", files={"image": ("tone.wav", wav)}, data={"overwrite": "1"}
    )
    assert uploaded.status_code == 200, uploaded.text
    job = await run(alice, media.audio(uploaded.json()["name"]))
    (flac,) = job["outputs"]["2"]["audio"]
    assert flac["filename"].endswith(".flac")
    assert job["preview_output"]["mediaType"] == "audio"
    served = await view(alice, flac)
    assert served.headers["content-type"] == "audio/flac"
    assert served.content[:4] == b"fLaC"

    listed = (await alice.get("/u/alice/api/jobs", params={"status": "completed"})).json()
    assert [j["preview_output"]["filename"] for j in listed["jobs"]] == [
        flac["filename"],
        webp["filename"],
        video["filename"],
    ]


async def test_the_custom_nodes_text_output_and_extension_arrive(
    comfyui: RealComfyUI, real_worker: Proc, clients: dict[str, httpx.AsyncClient]
) -> None:
    alice = clients["alice"]

    async def carried() -> bool:
        listed = (await alice.get("/u/alice/api/extensions")).json()
        return "/extensions/comfy_multi_badge/badge.js" in listed

    await wait_for(carried, timeout=60, interval=0.25)
    listed = (await alice.get("/u/alice/api/extensions")).json()
    assert not [p for p in listed if p.startswith("/extensions/core/")]
    text = f"hello {random.randrange(1 << 30)}"
    job = await run(alice, {"1": {"class_type": "CMBadge", "inputs": {"text": text}}})
    assert job["outputs"]["1"] == {"text": [text]}
    assert job["outputs_count"] == 1
    assert job["previewable_outputs_count"] == 0
