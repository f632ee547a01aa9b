"""The templates gallery: upstream's templates (comfyui-workflow-templates, as
ComfyUI serves /templates) that the room's workers can run, the workshop's
workflows first; templates needing absent nodes hidden, absent models marked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from comfy_multi.services import templates
from tests.comfy.conftest import scripted_worker
from tests.comfy.procs import node_defs
from tests.conftest import Gateway, wait_for

SD15 = "v1-5-pruned-emaonly-fp16.safetensors"


@pytest.fixture
async def worker_http(gateway: Gateway, worker_token: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=gateway.url, headers={"Authorization": f"Bearer {worker_token}"}, timeout=30
    ) as http:
        yield http


def loader_defs(checkpoints: list[str]) -> dict[str, Any]:
    """The nodes of upstream's `default` template, as a worker would publish them."""
    plain = {"input": {"required": {}}, "output": [], "output_node": False}
    defs: dict[str, Any] = {
        name: {**plain, "name": name}
        for name in ("CLIPTextEncode", "EmptyLatentImage", "KSampler", "VAEDecode")
    }
    defs["CheckpointLoaderSimple"] = {
        **plain,
        "name": "CheckpointLoaderSimple",
        "input": {"required": {"ckpt_name": [checkpoints]}},
    }
    return defs


def names(index: list[dict[str, Any]]) -> list[str]:
    return [t["name"] for c in index for t in c["templates"]]


def upstream_names() -> set[str]:
    folder = templates.templates_dir()
    assert folder is not None, "comfyui-workflow-templates is a pinned dependency"
    index = orjson.loads((folder / "index.json").read_bytes())
    return {t["name"] for c in index for t in c["templates"]}


async def test_workshop_first_then_what_the_workers_can_run(
    clients: dict[str, httpx.AsyncClient], worker_http: httpx.AsyncClient
) -> None:
    alice = clients["alice"]
    # no worker: only the workshop's workflows
    index = (await alice.get("/u/alice/templates/index.json")).json()
    assert [c["title"] for c in index] == ["Workshop"]
    first = index[0]["templates"][0]
    assert first["name"].startswith(templates.WORKSHOP_PREFIX)
    workflow = await alice.get(f"/u/alice/templates/{first['name']}.json")
    assert workflow.status_code == 200
    assert "nodes" in workflow.json()

    # a worker with the default template's nodes but not its checkpoint: marked
    gpu = scripted_worker(worker_http, "gpu-t", object_info={**node_defs(), **loader_defs([])})
    await gpu.register()

    async def listed() -> list[dict[str, Any]] | None:
        got: list[dict[str, Any]] = (await alice.get("/u/alice/templates/index.json")).json()
        return got if "default" in names(got) else None

    index = await wait_for(listed, timeout=5)
    assert index[0]["title"] == "Workshop"
    default = next(t for c in index for t in c["templates"] if t["name"] == "default")
    assert default["description"].startswith(f"Needs model files no GPU here has: {SD15}.")
    shown = set(names(index)) - {t["name"] for t in index[0]["templates"]}
    assert shown < upstream_names()  # the rest need nodes (models, APIs) no worker has
    assert len(shown) < len(upstream_names()) / 2

    # the checkpoint arrives: unmarked
    gpu.object_info = {**node_defs(), **loader_defs([SD15])}
    await gpu.register()

    async def unmarked() -> bool:
        got = (await alice.get("/u/alice/templates/index.json")).json()
        found = [t for c in got for t in c["templates"] if t["name"] == "default"]
        return bool(found) and not found[0]["description"].startswith("Needs")

    await wait_for(unmarked, timeout=5)
    # translations follow the same rule; files come from the package
    french = (await alice.get("/u/alice/templates/index.fr.json")).json()
    assert "default" in names(french)
    thumb = await alice.get("/u/alice/templates/default-1.webp")
    assert thumb.status_code == 200
    assert thumb.headers["content-type"] == "image/webp"
    assert (await alice.get("/u/alice/templates/default.json")).json()["nodes"]


async def test_template_paths_stay_inside_the_package(
    clients: dict[str, httpx.AsyncClient],
) -> None:
    alice = clients["alice"]
    for bad in ("..%2Fpyproject.toml", "%2E%2E%2F__init__.py", "nope.json", ".hidden"):
        answer = await alice.get(f"/u/alice/templates/{bad}")
        assert answer.status_code == 404, bad
        assert "Traceback" not in answer.text
    assert (await alice.get("/u/alice/templates/workshop--nope.json")).status_code == 404


def test_needs_follow_subgraphs_and_skip_notes() -> None:
    workflow = {
        "nodes": [
            {"type": "Note"},
            {"type": "sub-1"},
            {"type": "SaveImage", "properties": {"models": [{"name": "a.safetensors"}]}},
        ],
        "definitions": {"subgraphs": [{"id": "sub-1", "nodes": [{"type": "KSampler"}]}]},
    }
    needs = templates.needs_of(workflow)
    assert needs.nodes == {"SaveImage", "KSampler"}
    assert needs.models == {"a.safetensors"}
