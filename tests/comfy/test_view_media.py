"""/view for media players: Range requests, content types, ETag and caching,
and big files streamed rather than held in memory."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import psutil
import pytest

from tests.conftest import Gateway


def output_file(gateway: Gateway, user: str, name: str, body: bytes, kind: str = "output") -> Path:
    folder = gateway.settings.users_dir / user / kind
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(body)
    return path


BODY = bytes(range(256)) * 40  # 10240 bytes, every offset's value is known


async def test_range_requests_get_206_with_the_exact_bytes(
    gateway: Gateway, clients: dict[str, httpx.AsyncClient]
) -> None:
    output_file(gateway, "alice", "clip.mp4", BODY)
    alice = clients["alice"]
    params = {"filename": "clip.mp4", "type": "output", "subfolder": ""}
    whole = await alice.get("/u/alice/api/view", params=params)
    assert whole.status_code == 200
    assert whole.headers["accept-ranges"] == "bytes"
    assert whole.content == BODY

    part = await alice.get("/u/alice/api/view", params=params, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-199/{len(BODY)}"
    assert part.headers["content-length"] == "100"
    assert part.content == BODY[100:200]
    assert part.headers["content-type"] == "video/mp4"

    tail = await alice.get("/u/alice/api/view", params=params, headers={"Range": "bytes=-16"})
    assert tail.status_code == 206
    assert tail.content == BODY[-16:]
    assert tail.headers["content-range"] == f"bytes {len(BODY) - 16}-{len(BODY) - 1}/{len(BODY)}"

    # what a <video> element asks first: everything from 0, open-ended
    opening = await alice.get("/u/alice/api/view", params=params, headers={"Range": "bytes=0-"})
    assert opening.status_code == 206
    assert opening.content == BODY

    beyond = await alice.get(
        "/u/alice/api/view", params=params, headers={"Range": f"bytes={len(BODY)}-"}
    )
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{len(BODY)}"

    garbage = await alice.get("/u/alice/api/view", params=params, headers={"Range": "frames=1-2"})
    assert garbage.status_code == 400


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("a.mp4", "video/mp4"),
        ("a.webm", "video/webm"),
        ("a.mov", "video/quicktime"),
        ("a.webp", "image/webp"),
        ("a.png", "image/png"),
        ("a.gif", "image/gif"),
        ("a.wav", "audio/wav"),
        ("a.mp3", "audio/mpeg"),
        ("a.opus", "audio/ogg"),
        ("a.flac", "audio/flac"),
        ("a.glb", "model/gltf-binary"),
        ("a.html", "application/octet-stream"),
        ("a.svg", "application/octet-stream"),
    ],
)
async def test_content_types_a_browser_can_play(
    gateway: Gateway, clients: dict[str, httpx.AsyncClient], name: str, content_type: str
) -> None:
    output_file(gateway, "alice", name, b"0123456789")
    view = await clients["alice"].get("/u/alice/api/view", params={"filename": name})
    assert view.status_code == 200
    assert view.headers["content-type"].split(";")[0] == content_type


async def test_etag_revalidates_and_outputs_are_cacheable(
    gateway: Gateway, clients: dict[str, httpx.AsyncClient]
) -> None:
    output_file(gateway, "alice", "song.wav", BODY)
    output_file(gateway, "alice", "mine.wav", BODY, kind="input")
    alice = clients["alice"]
    first = await alice.get("/u/alice/api/view", params={"filename": "song.wav"})
    etag = first.headers["etag"]
    assert first.headers["cache-control"].startswith("private, max-age=")
    assert first.headers["last-modified"]
    again = await alice.get(
        "/u/alice/api/view", params={"filename": "song.wav"}, headers={"If-None-Match": etag}
    )
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    other = await alice.get(
        "/u/alice/api/view", params={"filename": "song.wav"}, headers={"If-None-Match": '"x"'}
    )
    assert other.status_code == 200
    assert other.content == BODY
    # an input can be overwritten by an upload: the browser must ask again
    uploaded = await alice.get(
        "/u/alice/api/view", params={"filename": "mine.wav", "type": "input"}
    )
    assert uploaded.headers["cache-control"] == "private, no-cache"
    # a stale If-Range gets the whole file, not a wrong slice
    stale = await alice.get(
        "/u/alice/api/view",
        params={"filename": "song.wav"},
        headers={"Range": "bytes=0-9", "If-Range": '"old"'},
    )
    assert stale.status_code == 200
    assert stale.content == BODY


@pytest.mark.slow
async def test_a_big_video_streams_without_growing_the_gateway(
    gateway: Gateway, clients: dict[str, httpx.AsyncClient]
) -> None:
    size = 300 * 1024 * 1024
    path = gateway.settings.users_dir / "alice" / "output" / "big.mp4"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        f.truncate(size)  # sparse: costs no disk
    process = psutil.Process(os.getpid())  # the gateway runs in this process's thread
    before = process.memory_info().rss
    received = 0
    async with clients["alice"].stream(
        "GET", "/u/alice/api/view", params={"filename": "big.mp4"}
    ) as response:
        assert response.status_code == 200
        async for chunk in response.aiter_raw():
            received += len(chunk)
    grown = process.memory_info().rss - before
    assert received == size
    assert grown < 64 * 1024 * 1024, f"the gateway grew by {grown / 2**20:.0f} MiB"
