"""POST /prompt: ComfyUI's validation and error shapes, the submit reply, the caps."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.comfy.conftest import ScriptedWorker, blur_prompt, png_bytes
from tests.comfy.procs import Proc, start_standin
from tests.conftest import Gateway


def with_input(prompt: dict[str, Any], node: str, name: str, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(prompt)
    changed[node]["inputs"][name] = value
    return changed


def without_input(prompt: dict[str, Any], node: str, name: str) -> dict[str, Any]:
    changed = copy.deepcopy(prompt)
    del changed[node]["inputs"][name]
    return changed


GOOD = blur_prompt()
SCALE = copy.deepcopy(GOOD)
SCALE["2"] = {
    "class_type": "ImageScale",
    "inputs": {
        "image": ["1", 0],
        "upscale_method": "area",
        "width": 32,
        "height": 32,
        "crop": "disabled",
    },
}

# (case, prompt, top-level type, {node: [error types]})
INVALID: list[tuple[str, Any, str, dict[str, list[str]]]] = [
    ("unknown class", {"1": {"class_type": "NoSuchNode", "inputs": {}}}, "invalid_prompt", {}),
    ("no class_type", {"1": {"inputs": {}}}, "invalid_prompt", {}),
    (
        "no outputs",
        {"1": {"class_type": "EmptyImage", "inputs": GOOD["1"]["inputs"]}},
        "prompt_no_outputs",
        {},
    ),
    (
        "missing input",
        without_input(GOOD, "2", "blur_radius"),
        "prompt_outputs_failed_validation",
        {"2": ["required_input_missing"]},
    ),
    (
        "bad link",
        with_input(GOOD, "2", "image", ["1"]),
        "prompt_outputs_failed_validation",
        {"2": ["bad_linked_input"]},
    ),
    (
        "mask into image",
        with_input(blur_prompt("cat.png"), "2", "image", ["1", 1]),
        "prompt_outputs_failed_validation",
        {"2": ["return_type_mismatch"]},
    ),
    (
        "text for an INT",
        with_input(GOOD, "2", "blur_radius", "abc"),
        "prompt_outputs_failed_validation",
        {"2": ["invalid_input_type"]},
    ),
    (
        "below min",
        with_input(GOOD, "2", "blur_radius", 0),
        "prompt_outputs_failed_validation",
        {"2": ["value_smaller_than_min"]},
    ),
    (
        "above max",
        with_input(GOOD, "2", "sigma", 99.0),
        "prompt_outputs_failed_validation",
        {"2": ["value_bigger_than_max"]},
    ),
    (
        "not in list",
        with_input(SCALE, "2", "upscale_method", "purple"),
        "prompt_outputs_failed_validation",
        {"2": ["value_not_in_list"]},
    ),
    (
        "missing image file",
        blur_prompt("not-uploaded.png"),
        "prompt_outputs_failed_validation",
        {"1": ["custom_validation_failed"]},
    ),
    (
        "link to an absent node",
        with_input(GOOD, "3", "images", ["99", 0]),
        "prompt_outputs_failed_validation",
        {"3": ["exception_during_validation"]},
    ),
]


def error_types(body: dict[str, Any]) -> dict[str, list[str]]:
    return {
        node: [e["type"] for e in entry["errors"]] for node, entry in body["node_errors"].items()
    }


@pytest.fixture
def alice_has_cat(gateway: Gateway) -> None:
    folder = gateway.settings.users_dir / "alice" / "input"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cat.png").write_bytes(png_bytes())


@pytest.mark.parametrize(("case", "prompt", "kind", "nodes"), INVALID, ids=[c[0] for c in INVALID])
async def test_invalid_prompts_get_comfyuis_error_shape(
    worker: ScriptedWorker,
    clients: dict[str, httpx.AsyncClient],
    alice_has_cat: None,
    case: str,
    prompt: Any,
    kind: str,
    nodes: dict[str, list[str]],
) -> None:
    response = await clients["alice"].post("/u/alice/api/prompt", json={"prompt": prompt})
    assert response.status_code == 400, response.text
    body = response.json()
    assert set(body) == {"error", "node_errors"}
    assert set(body["error"]) == {"type", "message", "details", "extra_info"}
    assert body["error"]["type"] == kind
    assert error_types(body) == nodes
    for node, entry in body["node_errors"].items():
        assert entry["class_type"] == prompt[node]["class_type"]
        assert entry["dependent_outputs"] == ["3"]
        for error in entry["errors"]:
            assert set(error) == {"type", "message", "details", "extra_info"}
    if kind == "prompt_outputs_failed_validation":
        assert body["error"]["message"] == "Prompt outputs failed validation"
    # nothing was queued
    pending = await clients["alice"].get("/u/alice/api/jobs?status=pending")
    assert pending.json()["jobs"] == []


async def test_bad_json_and_missing_prompt(
    worker: ScriptedWorker, clients: dict[str, httpx.AsyncClient]
) -> None:
    alice = clients["alice"]
    broken = await alice.post(
        "/u/alice/api/prompt", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 400
    assert broken.json()["error"]["type"] == "invalid_prompt"
    assert broken.json()["node_errors"] == {}
    missing = await alice.post("/u/alice/api/prompt", json={"client_id": "x"})
    assert missing.status_code == 400
    assert missing.json()["error"] == {
        "type": "no_prompt",
        "message": "No prompt provided",
        "details": "",
        "extra_info": {},
    }
    listed = await alice.post("/u/alice/api/prompt", json=[1, 2])
    assert listed.status_code == 400
    bad_id = await alice.post("/u/alice/api/prompt", json={"prompt": GOOD, "prompt_id": "ABC"})
    assert bad_id.status_code == 400
    assert bad_id.json()["error"]["type"] == "invalid_prompt_id"


async def test_another_users_file_is_not_an_input(
    gateway: Gateway,
    worker: ScriptedWorker,
    clients: dict[str, httpx.AsyncClient],
    alice_has_cat: None,
) -> None:
    bob = await clients["bob"].post("/u/bob/api/prompt", json={"prompt": blur_prompt("cat.png")})
    assert bob.status_code == 400
    entry = bob.json()["node_errors"]["1"]["errors"][0]
    assert entry["type"] == "custom_validation_failed"
    assert entry["details"] == "image - Invalid image file: cat.png"
    for sneaky in ("../alice/input/cat.png", "/etc/passwd", "cat.png [output]"):
        refused = await clients["bob"].post(
            "/u/bob/api/prompt", json={"prompt": blur_prompt(sneaky)}
        )
        assert refused.status_code == 400, sneaky
    alice = await clients["alice"].post(
        "/u/alice/api/prompt", json={"prompt": blur_prompt("cat.png")}
    )
    assert alice.status_code == 200, alice.text


async def test_submit_reply_and_stored_job(
    worker: ScriptedWorker, clients: dict[str, httpx.AsyncClient]
) -> None:
    alice = clients["alice"]
    prompt_id = str(uuid.uuid4())
    prompt = with_input(GOOD, "2", "blur_radius", "5")  # ComfyUI converts "5" to 5
    response = await alice.post(
        "/u/alice/prompt",  # the root form of the route, as scripts use it
        json={
            "prompt": prompt,
            "client_id": "sid-1",
            "prompt_id": prompt_id,
            "extra_data": {
                "extra_pnginfo": {"workflow": {"id": "wf-1"}},
                "api_key_comfy_org": "s3cret",
            },
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body == {"prompt_id": prompt_id, "number": body["number"], "node_errors": {}}
    assert isinstance(body["number"], int)
    job = (await alice.get(f"/u/alice/api/jobs/{prompt_id}")).json()
    assert job["workflow"]["prompt"]["2"]["inputs"]["blur_radius"] == 5
    assert job["workflow"]["extra_data"]["client_id"] == "sid-1"
    assert "api_key_comfy_org" not in job["workflow"]["extra_data"]
    assert job["workflow_id"] == "wf-1"
    again = await clients["bob"].post(
        "/u/bob/api/prompt", json={"prompt": GOOD, "prompt_id": prompt_id}
    )
    assert again.status_code == 409
    assert again.json()["error"]["type"] == "conflict"


async def test_partial_failure_runs_the_good_outputs(
    worker: ScriptedWorker, clients: dict[str, httpx.AsyncClient]
) -> None:
    prompt = copy.deepcopy(GOOD)
    prompt["4"] = {
        "class_type": "ImageBlur",
        "inputs": {"image": ["1", 0], "blur_radius": 0, "sigma": 1},
    }
    prompt["5"] = {"class_type": "PreviewImage", "inputs": {"images": ["4", 0]}}
    response = await clients["alice"].post("/u/alice/api/prompt", json={"prompt": prompt})
    assert response.status_code == 200, response.text
    assert error_types(response.json()) == {"4": ["value_smaller_than_min"]}
    only = await clients["alice"].post(
        "/u/alice/api/prompt", json={"prompt": prompt, "partial_execution_targets": ["3"]}
    )
    assert only.status_code == 200
    assert only.json()["node_errors"] == {}


async def test_the_per_user_cap_answers_in_comfyuis_shape(
    worker: ScriptedWorker, clients: dict[str, httpx.AsyncClient], clients_teacher_caps: None
) -> None:
    alice = clients["alice"]
    for sigma in (1.0, 2.0):
        assert (
            await alice.post("/u/alice/api/prompt", json={"prompt": blur_prompt(sigma=sigma)})
        ).status_code == 200
    third = await alice.post("/u/alice/api/prompt", json={"prompt": GOOD})
    assert third.status_code == 429
    assert third.json()["error"]["type"] == "queue_full"
    assert third.json()["node_errors"] == {}
    # a heading short enough for ComfyUI's error panel, the sentence under it
    assert third.json()["error"]["message"] == "Queue limit reached"
    assert third.json()["error"]["details"] == (
        "You already have 2 jobs waiting, the most allowed per person. "
        "Wait for one to finish, or cancel one."
    )


@pytest.fixture
async def clients_teacher_caps(clients: dict[str, httpx.AsyncClient]) -> None:
    response = await clients["teacher"].put("/api/v1/users/alice/cap", json={"cap": 2})
    assert response.status_code == 200


async def test_queue_front_is_the_instructors_privilege(
    worker: ScriptedWorker, clients: dict[str, httpx.AsyncClient]
) -> None:
    first = await clients["bob"].post("/u/bob/api/prompt", json={"prompt": GOOD})
    jumped = await clients["alice"].post(
        "/u/alice/api/prompt", json={"prompt": GOOD, "front": True}
    )
    assert jumped.status_code == 200
    assert jumped.json()["number"] > first.json()["number"]
    teacher = await clients["teacher"].post(
        "/u/teacher/api/prompt", json={"prompt": GOOD, "front": True}
    )
    assert teacher.json()["number"] < 0


# --- the same prompts against the ComfyUI stand-in: same verdicts ----------------------


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[Proc]:
    proc = start_standin(tmp_path / "standin", tmp_path / "standin.log")
    (tmp_path / "standin" / "input" / "cat.png").write_bytes(png_bytes())
    yield proc
    proc.stop()


@pytest.mark.slow
async def test_verdicts_match_comfyui(
    standin: Proc,
    worker: ScriptedWorker,
    clients: dict[str, httpx.AsyncClient],
    alice_has_cat: None,
) -> None:
    async with httpx.AsyncClient(base_url=standin.url, timeout=30) as comfy:
        for case, prompt, _, _ in INVALID:
            ours = (
                await clients["alice"].post("/u/alice/api/prompt", json={"prompt": prompt})
            ).json()
            theirs = (await comfy.post("/prompt", json={"prompt": prompt})).json()
            assert ours["error"]["type"] == theirs["error"]["type"], case
            assert ours["error"]["message"] == theirs["error"]["message"], case
            assert ours["error"]["details"] == theirs["error"]["details"], case
            assert error_types(ours) == error_types(theirs), case
            for node, entry in ours["node_errors"].items():
                for mine, real in zip(
                    entry["errors"], theirs["node_errors"][node]["errors"], strict=True
                ):
                    assert (mine["message"], mine["details"]) == (
                        real["message"],
                        real["details"],
                    ), case
