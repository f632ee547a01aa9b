"""Validation of hostile prompts: linear, iterative, bounded, and never in anyone else's way."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx
import orjson
import pytest

from tests.comfy.conftest import ScriptedWorker, blur_prompt
from tests.conftest import Gateway

N_INVALID_OUTPUTS = 40_000


def invalid_outputs(n: int) -> dict[str, Any]:
    """n SaveImage nodes, each fed by a node that is not in the prompt."""
    return {
        str(i): {
            "class_type": "SaveImage",
            "inputs": {"images": ["missing", 0], "filename_prefix": "x"},
        }
        for i in range(n)
    }


def invert_chain(length: int) -> dict[str, Any]:
    prompt: dict[str, Any] = {"0": blur_prompt()["1"]}
    for i in range(1, length):
        prompt[str(i)] = {"class_type": "ImageInvert", "inputs": {"image": [str(i - 1), 0]}}
    prompt["save"] = {
        "class_type": "SaveImage",
        "inputs": {"images": [str(length - 1), 0], "filename_prefix": "chain"},
    }
    return prompt


async def _health_latencies(gateway: Gateway, stop: asyncio.Event) -> list[float]:
    seen = []
    async with gateway.client() as other:
        while not stop.is_set():
            start = time.monotonic()
            r = await other.get("/health", timeout=5)
            seen.append(time.monotonic() - start)
            assert r.status_code == 200
            await asyncio.sleep(0.05)
    return seen


async def test_many_invalid_outputs_answer_a_bounded_400_quickly(
    gateway: Gateway, clients: dict[str, httpx.AsyncClient], worker: ScriptedWorker
) -> None:
    body = orjson.dumps({"prompt": invalid_outputs(N_INVALID_OUTPUTS)})  # before the clock
    for name in ("alice", "bob"):  # signed in (the password check is not what is measured)
        assert (await clients[name].get(f"/u/{name}/api/queue")).status_code == 200
    stop = asyncio.Event()
    health = asyncio.create_task(_health_latencies(gateway, stop))
    start = time.monotonic()
    attack = asyncio.create_task(
        clients["alice"].post(
            "/u/alice/api/prompt",
            content=body,
            headers={"Content-Type": "application/json"},
            timeout=20,
        )
    )
    try:
        await asyncio.sleep(0.3)  # alice's prompt is being read and checked
        before = time.monotonic()
        ordinary = await clients["bob"].post(
            "/u/bob/api/prompt", json={"prompt": blur_prompt()}, timeout=5
        )
        assert ordinary.status_code == 200, ordinary.text
        assert time.monotonic() - before < 2, "bob's ordinary prompt waited on alice's"
        r = await attack
    finally:
        stop.set()
    elapsed = time.monotonic() - start
    latencies = await health
    assert r.status_code == 400, r.text[:500]
    assert elapsed < 10, f"{elapsed:.1f} s for the verdict"
    assert len(r.content) < 100_000, f"{len(r.content):,} bytes of errors"
    body = r.json()
    assert body["error"]["type"] == "prompt_outputs_failed_validation"
    assert 0 < len(body["node_errors"]) <= 50
    assert body["error"]["extra_info"]["node_errors_omitted"] == N_INVALID_OUTPUTS - len(
        body["node_errors"]
    )
    assert f"{N_INVALID_OUTPUTS - len(body['node_errors']):,} more" in body["error"]["details"]
    assert "Traceback" not in r.text
    assert "/site-packages/" not in r.text
    assert ".py" not in r.text
    assert max(latencies) < 1.0, f"/health took {max(latencies):.2f} s meanwhile"


async def test_dependent_outputs_name_the_outputs_that_really_depend(
    clients: dict[str, httpx.AsyncClient], worker: ScriptedWorker
) -> None:
    prompt = blur_prompt()
    prompt["2"]["inputs"]["blur_radius"] = 0  # below its min: node 2 fails, and output 3
    prompt["4"] = {
        "class_type": "SaveImage",
        "inputs": {"images": ["1", 0], "filename_prefix": "ok"},
    }
    prompt["5"] = {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}}  # fails on its own
    prompt["6"] = {
        "class_type": "SaveImage",
        "inputs": {"images": ["2", 0], "filename_prefix": "b"},
    }
    r = await clients["alice"].post("/u/alice/api/prompt", json={"prompt": prompt})
    assert r.status_code == 200, r.text
    node_errors = r.json()["node_errors"]
    assert sorted(node_errors) == ["2", "5"]
    # ComfyUI would also list 5 under node 2: every failed output after it
    assert node_errors["2"]["dependent_outputs"] == ["3", "6"]
    assert node_errors["5"]["dependent_outputs"] == ["5"]


async def test_a_long_chain_validates_without_recursion(
    clients: dict[str, httpx.AsyncClient], worker: ScriptedWorker
) -> None:
    r = await clients["alice"].post("/u/alice/api/prompt", json={"prompt": invert_chain(5_000)})
    assert r.status_code == 200, r.text[:500]
    broken = invert_chain(500)
    broken["0"]["inputs"]["width"] = -1
    r = await clients["alice"].post("/u/alice/api/prompt", json={"prompt": broken})
    assert r.status_code == 400, r.text[:500]
    assert list(r.json()["node_errors"]) == ["0"]
    assert "Recursion" not in r.text
    assert ".py" not in r.text


async def test_a_cycle_is_an_error_not_a_crash(
    clients: dict[str, httpx.AsyncClient], worker: ScriptedWorker
) -> None:
    prompt = {
        "1": {"class_type": "ImageInvert", "inputs": {"image": ["2", 0]}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "c"}},
    }
    r = await clients["alice"].post("/u/alice/api/prompt", json={"prompt": prompt})
    assert r.status_code == 400, r.text
    assert "cycle" in r.text
    assert "Traceback" not in r.text
    assert ".py" not in r.text


async def test_long_text_inputs_are_text_not_file_names(
    gateway: Gateway,
    clients: dict[str, httpx.AsyncClient],
    worker: ScriptedWorker,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    long_text = "a watercolour fox " * 600  # ~10,800 characters
    prompt = blur_prompt()
    prompt["3"]["inputs"]["filename_prefix"] = long_text
    r = await clients["alice"].post("/u/alice/api/prompt", json={"prompt": prompt})
    assert r.status_code == 200, r.text[:500]
    job = await worker.claim()
    assert job.prompt["3"]["inputs"]["filename_prefix"] == long_text
    assert job.inputs == []
    await worker.fail(job, {"type": "x", "message": f"could not save {long_text}"})
    assert "watercolour fox" in caplog.text  # the log says what happened...
    assert all(len(record.getMessage()) < 1_000 for record in caplog.records)  # ...briefly


async def test_a_long_file_name_in_an_upload_input_is_an_invalid_file(
    clients: dict[str, httpx.AsyncClient], worker: ScriptedWorker
) -> None:
    r = await clients["alice"].post(
        "/u/alice/api/prompt", json={"prompt": blur_prompt("x" * 10_000 + ".png")}
    )
    assert r.status_code == 400, r.text[:500]
    errors = r.json()["node_errors"]["1"]["errors"]
    assert errors[0]["type"] == "custom_validation_failed"
    assert len(errors[0]["details"]) < 1_000  # the name is shortened, not echoed whole
