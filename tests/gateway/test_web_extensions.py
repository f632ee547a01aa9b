"""Custom nodes' web extensions: a worker sends what its ComfyUI serves, the
gateway stores it content-addressed and serves the merged set to every
participant's page; unchanged files never travel twice; bad sets are refused."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.comfy.conftest import scripted_worker
from tests.comfy.procs import CUSTOM_NODES, start_standin, start_worker
from tests.conftest import Gateway, Person, wait_for

BADGE_JS = CUSTOM_NODES / "comfy_multi_badge" / "web" / "badge.js"
BADGE_PATH = "/extensions/comfy_multi_badge/badge.js"


def entry(body: bytes) -> dict[str, Any]:
    return {"sha256": hashlib.sha256(body).hexdigest(), "size": len(body)}


@pytest.fixture
async def worker_http(gateway: Gateway, worker_token: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=gateway.url, headers={"Authorization": f"Bearer {worker_token}"}, timeout=30
    ) as http:
        yield http


async def send_set(
    http: httpx.AsyncClient, worker_id: str, files: dict[str, bytes]
) -> tuple[list[str], int]:
    """The protocol as the worker speaks it; (missing on first ask, files uploaded)."""
    body = {"worker_id": worker_id, "files": {p: entry(b) for p, b in files.items()}}
    first = await http.post("/worker/v1/extensions", json=body)
    assert first.status_code == 200, first.text
    missing = first.json()["missing"]
    by_hash = {entry(b)["sha256"]: b for b in files.values()}
    for sha in missing:
        put = await http.put(f"/worker/v1/extensions/files/{sha}", content=by_hash[sha])
        assert put.status_code == 204, put.text
    again = await http.post("/worker/v1/extensions", json=body)
    assert again.json()["missing"] == []
    return missing, len(missing)


async def test_sets_merge_travel_once_and_outlive_their_worker(
    gateway: Gateway, worker_http: httpx.AsyncClient, clients: dict[str, httpx.AsyncClient]
) -> None:
    one, two = scripted_worker(worker_http, "gpu-a"), scripted_worker(worker_http, "gpu-b")
    await one.register()
    await two.register()
    shared = b"export const shared = 1;\n"
    missing, uploaded = await send_set(
        worker_http,
        "gpu-a",
        {"/extensions/vhs/videoinfo.js": b"// vhs\n", "/extensions/vhs/lib/shared.js": shared},
    )
    assert uploaded == 2
    # the same file from another worker does not travel again
    missing, uploaded = await send_set(
        worker_http,
        "gpu-b",
        {"/extensions/ltxv/ltxv.js": b"// ltxv\n", "/extensions/ltxv/shared.js": shared},
    )
    assert missing == [hashlib.sha256(b"// ltxv\n").hexdigest()]
    # an unchanged set costs one request and no upload
    assert (await send_set(worker_http, "gpu-a", {
        "/extensions/vhs/videoinfo.js": b"// vhs\n", "/extensions/vhs/lib/shared.js": shared
    }))[1] == 0  # fmt: skip

    alice = clients["alice"]

    async def listed() -> list[str]:
        return list((await alice.get("/u/alice/api/extensions")).json())

    expected = [
        "/extensions/comfy_multi/comfy_multi.js",
        "/extensions/ltxv/ltxv.js",
        "/extensions/ltxv/shared.js",
        "/extensions/vhs/lib/shared.js",
        "/extensions/vhs/videoinfo.js",
    ]
    assert await wait_for(lambda: _eq(listed, expected), timeout=5)
    served = await alice.get("/u/alice/extensions/vhs/videoinfo.js")
    assert served.status_code == 200
    assert served.content == b"// vhs\n"
    assert served.headers["content-type"].startswith("text/javascript")
    revalidated = await alice.get(
        "/u/alice/extensions/vhs/videoinfo.js", headers={"If-None-Match": served.headers["etag"]}
    )
    assert revalidated.status_code in (200, 304)
    assert (await alice.get("/u/alice/extensions/vhs/nope.js")).status_code == 404
    # signed out or someone else's prefix: not served
    async with gateway.client() as anonymous:
        assert (await anonymous.get("/u/alice/extensions/vhs/videoinfo.js")).status_code in (
            401,
            303,
        )
    assert (await clients["bob"].get("/u/alice/extensions/vhs/videoinfo.js")).status_code == 403
    assert (await clients["bob"].get("/u/bob/extensions/vhs/videoinfo.js")).status_code == 200

    # a new version of gpu-a's set replaces its old one; gpu-b's stays
    await send_set(worker_http, "gpu-a", {"/extensions/vhs/videoinfo.js": b"// vhs 2\n"})
    expected = [
        "/extensions/comfy_multi/comfy_multi.js",
        "/extensions/ltxv/ltxv.js",
        "/extensions/ltxv/shared.js",
        "/extensions/vhs/videoinfo.js",
    ]
    assert await wait_for(lambda: _eq(listed, expected), timeout=5)
    assert (await alice.get("/u/alice/extensions/vhs/videoinfo.js")).content == b"// vhs 2\n"


async def _eq(listed: Any, expected: list[str]) -> bool:
    return bool(await listed() == expected)


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/extensions/../../etc/passwd", b"x", 400),
        ("/extensions/a/../b.js", b"x", 400),
        ("/scripts/app.js", b"x", 400),
        ("/extensions/comfy_multi/comfy_multi.js", b"x", 400),
        ("/extensions/core/groupNode.js", b"x", 400),
        ("/extensions/a/<script>.js", b"x", 400),
        ("/extensions/only.js", b"x", 400),
    ],
)
async def test_paths_that_would_escape_or_shadow_are_refused(
    worker_http: httpx.AsyncClient, path: str, body: bytes, status: int
) -> None:
    await scripted_worker(worker_http, "gpu-a").register()
    answer = await worker_http.post(
        "/worker/v1/extensions", json={"worker_id": "gpu-a", "files": {path: entry(body)}}
    )
    assert answer.status_code == status, answer.text
    assert "error" in answer.text or "detail" in answer.text


async def test_content_must_match_its_hash_and_size_bounds_hold(
    worker_http: httpx.AsyncClient,
) -> None:
    await scripted_worker(worker_http, "gpu-a").register()
    wrong = await worker_http.put(
        f"/worker/v1/extensions/files/{hashlib.sha256(b'a').hexdigest()}", content=b"b"
    )
    assert wrong.status_code == 400
    big = b"x" * (4 * 1024 * 1024 + 1)
    too_big = await worker_http.put(
        f"/worker/v1/extensions/files/{hashlib.sha256(big).hexdigest()}", content=big
    )
    assert too_big.status_code == 413
    huge = {"/extensions/a/b.js": {"sha256": "0" * 64, "size": 5 * 1024 * 1024}}
    answer = await worker_http.post(
        "/worker/v1/extensions", json={"worker_id": "gpu-a", "files": huge}
    )
    assert answer.status_code == 413
    unknown = await worker_http.post(
        "/worker/v1/extensions", json={"worker_id": "ghost", "files": {}}
    )
    assert unknown.status_code == 404


@pytest.mark.slow
async def test_a_real_worker_carries_its_comfyuis_extension_and_it_stays(
    gateway: Gateway,
    worker_token: str,
    people: dict[str, Person],
    clients: dict[str, httpx.AsyncClient],
    tmp_path: Path,
) -> None:
    standin = start_standin(
        tmp_path / "standin", tmp_path / "standin.log", custom_nodes=CUSTOM_NODES
    )
    worker = start_worker(gateway.url, worker_token, standin.url, tmp_path / "worker.log")
    alice = clients["alice"]
    try:

        async def listed() -> bool:
            return BADGE_PATH in (await alice.get("/u/alice/api/extensions")).json()

        await wait_for(listed, timeout=60, interval=0.2)
        served = await alice.get(f"/u/alice{BADGE_PATH}")
        assert served.content == BADGE_JS.read_bytes()
        info = (await alice.get("/u/alice/api/object_info")).json()
        assert info["CMBadge"]["python_module"] == "custom_nodes.comfy_multi_badge"
    finally:
        worker.stop()
        standin.stop()
    # the worker is gone: its set stays, as its node definitions do
    assert BADGE_PATH in (await alice.get("/u/alice/api/extensions")).json()
    assert (await alice.get(f"/u/alice{BADGE_PATH}")).content == BADGE_JS.read_bytes()
