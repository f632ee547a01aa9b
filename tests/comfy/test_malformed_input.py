"""Malformed input is a 400 with a message: never a 500, a traceback or a server path."""

from __future__ import annotations

import httpx
import pytest

from tests.comfy.conftest import ScriptedWorker, blur_prompt, png_bytes
from tests.conftest import Gateway

DEEP = 1_000


def deep(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


def assert_clear_400(r: httpx.Response, gateway: Gateway) -> None:
    assert r.status_code == 400, (r.status_code, r.text[:300])
    assert r.text.strip(), "a 400 needs a message"
    for leak in ("Traceback", 'File "', str(gateway.settings.data_dir), "site-packages"):
        assert leak not in r.text


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/u/alice/api/prompt", b'{"prompt": ' + deep(DEEP) + b"}"),
        (
            "/u/alice/api/prompt",
            b'{"prompt": {"1": {"class_type": "EmptyImage", "inputs": {"width": '
            + deep(DEEP)
            + b"}}}}",
        ),
        ("/u/alice/api/prompt", b'{"prompt": {}, "extra_data": {"x": ' + deep(DEEP) + b"}}"),
        ("/u/alice/api/settings", b'{"Comfy.X": ' + deep(DEEP) + b"}"),
        ("/u/alice/api/settings/Comfy.X", deep(DEEP)),
        ("/u/alice/api/jobs/cancel", b'{"job_ids": [' + deep(DEEP) + b"]}"),
        ("/u/alice/api/history", b'{"delete": [' + deep(DEEP) + b"]}"),
        ("/u/alice/api/queue", b'{"delete": [' + deep(DEEP) + b"]}"),
        ("/api/v1/jobs", b'{"prompt": {"1": ' + deep(DEEP) + b"}}"),
        (
            "/api/v1/jobs",
            b'{"prompt": {"1": {"class_type": "X", "inputs": {"a": [[[[[[[[[[[['
            + deep(120)
            + b"]]]]]]]]]]]]}}}}",
        ),
        (
            "/u/alice/api/prompt",
            b'{"prompt": {"1": {"class_type": "EmptyImage", "inputs": {"width": 1e400}}}}',
        ),
        ("/u/alice/api/prompt", b'{"prompt": "\xff\xfe"}'),
        ("/u/alice/api/settings", b'{"Comfy.X": "\xc3\x28"}'),
        ("/u/alice/api/prompt", b'{"prompt": {}, "x": [' + b"[]," * 500_000 + b"[]]}"),
    ],
)
async def test_deep_huge_or_broken_json_is_a_400(
    gateway: Gateway,
    clients: dict[str, httpx.AsyncClient],
    worker: ScriptedWorker,
    path: str,
    body: bytes,
) -> None:
    r = await clients["alice"].post(
        path, content=body, headers={"Content-Type": "application/json"}
    )
    assert_clear_400(r, gateway)
    # and the gateway is fine afterwards
    ok = await clients["alice"].post("/u/alice/api/prompt", json={"prompt": blur_prompt()})
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize(
    "params",
    [
        {"filename": "a\x00b.png"},
        {"filename": "a.png", "subfolder": "x\x00y"},
        {"filename": "a.png", "subfolder": "x", "type": "in\x00put"},
        {"filename": "x" * 5_000 + ".png"},
        {"filename": "a.png", "subfolder": "s" * 5_000},
        {"filename": "x" * 300 + ".png"},
        {"filename": "a.png", "subfolder": "s" * 300},
    ],
)
async def test_view_refuses_bad_names(
    gateway: Gateway, clients: dict[str, httpx.AsyncClient], params: dict[str, str]
) -> None:
    r = await clients["alice"].get("/u/alice/api/view", params=params)
    assert r.status_code in (400, 404), (r.status_code, r.text[:300])
    assert "Traceback" not in r.text
    assert str(gateway.settings.data_dir) not in r.text
    assert len(r.text) < 1_000


@pytest.mark.parametrize("subfolder", ["a\x00b", "s" * 5_000, "s" * 300, "ok/" + "s" * 300])
async def test_upload_refuses_bad_subfolders(
    gateway: Gateway, clients: dict[str, httpx.AsyncClient], subfolder: str
) -> None:
    r = await clients["alice"].post(
        "/u/alice/api/upload/image",
        files={"image": ("cat.png", png_bytes(), "image/png")},
        data={"subfolder": subfolder},
    )
    assert_clear_400(r, gateway)


async def test_mask_original_ref_with_a_nul_is_a_400(
    gateway: Gateway, clients: dict[str, httpx.AsyncClient]
) -> None:
    r = await clients["alice"].post(
        "/u/alice/api/upload/mask",
        files={"image": ("mask.png", png_bytes(), "image/png")},
        data={"original_ref": '{"filename": "a\\u0000.png", "type": "input"}'},
    )
    assert_clear_400(r, gateway)


@pytest.mark.parametrize("subfolder", ["a\x00b", "s" * 5_000])
async def test_worker_output_with_a_bad_subfolder_is_a_400(
    gateway: Gateway,
    clients: dict[str, httpx.AsyncClient],
    worker: ScriptedWorker,
    worker_token: str,
    subfolder: str,
) -> None:
    r = await clients["alice"].post("/u/alice/api/prompt", json={"prompt": blur_prompt()})
    assert r.status_code == 200, r.text
    job = await worker.claim()
    lease = {"X-Lease-Token": job.lease_token, "X-Worker-Id": worker.channel.worker_id}
    async with gateway.client(headers={"Authorization": f"Bearer {worker_token}"}) as raw:
        r = await raw.put(  # raw on purpose: the channel's own checks would refuse it first
            f"/worker/v1/jobs/{job.job_id}/outputs",
            params={"filename": "out.png", "subfolder": subfolder, "type": "output"},
            content=png_bytes(),
            headers=lease,
        )
    assert_clear_400(r, gateway)


@pytest.mark.parametrize(
    "name", ["x" * 300 + ".json", "workflows%2F" + "x" * 300 + ".json", "a%00b"]
)
async def test_userdata_refuses_names_no_file_can_have(
    gateway: Gateway, clients: dict[str, httpx.AsyncClient], name: str
) -> None:
    alice = clients["alice"]
    for r in (
        await alice.post(f"/u/alice/api/userdata/{name}", content=b"{}"),
        await alice.get(f"/u/alice/api/userdata/{name}"),
        await alice.delete(f"/u/alice/api/userdata/{name}"),
    ):
        assert_clear_400(r, gateway)
