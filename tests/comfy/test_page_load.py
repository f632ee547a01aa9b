"""Every route the pinned frontend calls at page load answers as ComfyUI would."""

from __future__ import annotations

import httpx

from comfy_multi.comfy import bundle
from tests.comfy.conftest import ScriptedWorker
from tests.conftest import Gateway

# in the order frontend 1.58.1 asks (comfyui-api.md section 8), with what must come back
PAGE_LOAD_JSON = [
    ("/api/features", dict),
    ("/api/users", dict),
    ("/api/system_stats", dict),
    ("/api/settings", dict),
    ("/api/userdata?dir=workflows&recurse=true&split=false&full_info=true", list),
    ("/api/i18n", dict),
    ("/api/extensions", list),
    ("/api/userdata/comfy.templates.json", list),
    ("/api/userdata?dir=subgraphs&recurse=true&split=false&full_info=true", list),
    ("/api/object_info", dict),
    ("/api/global_subgraphs", dict),
    ("/api/jobs?status=in_progress,pending&limit=200&offset=0", dict),
    ("/api/jobs?status=completed,failed,cancelled&limit=64&offset=0", dict),
    ("/api/workflow_templates", dict),
    ("/templates/index.json", list),
    ("/templates/index_logo.json", dict),
    ("/api/experiment/models", list),
    ("/api/embeddings", list),
    ("/api/prompt", dict),
    ("/api/queue", dict),
    ("/api/history", dict),
    ("/internal/logs/raw", dict),
    ("/internal/folder_paths", dict),
]


async def test_every_page_load_route_answers(
    worker: ScriptedWorker, clients: dict[str, httpx.AsyncClient]
) -> None:
    alice = clients["alice"]
    for path, kind in PAGE_LOAD_JSON:
        response = await alice.get(f"/u/alice{path}")
        assert response.status_code == 200, (path, response.status_code, response.text)
        assert response.headers["content-type"].startswith("application/json"), path
        assert isinstance(response.json(), kind), (path, response.text[:200])
    assert (await alice.get("/u/alice/user.css")).status_code == 200
    assert (await alice.get("/u/alice/api/userdata/user.css")).status_code == 200
    posted = await alice.post("/u/alice/api/settings/Comfy.InstalledVersion", json="1.58.1")
    assert posted.status_code == 200


async def test_page_is_the_stock_frontend_with_no_store(
    gateway: Gateway, clients: dict[str, httpx.AsyncClient]
) -> None:
    page = await clients["alice"].get("/u/alice/")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert '<div id="vue-app">' in page.text
    script = page.text.split('<script type="module" crossorigin src="')[1].split('"')[0]
    asset = await clients["alice"].get(f"/u/alice/{script.lstrip('./')}")
    assert asset.status_code == 200
    assert "immutable" in asset.headers["cache-control"]
    assert asset.headers["content-encoding"] == "gzip"  # httpx unpacks it
    assert asset.headers["content-type"].startswith("text/javascript")
    assert asset.content == (bundle.STATIC / script.lstrip("./")).read_bytes()
    plain = await clients["alice"].get(
        f"/u/alice/{script.lstrip('./')}", headers={"Accept-Encoding": "identity"}
    )
    assert "content-encoding" not in plain.headers
    assert plain.content == asset.content
    escape = await clients["alice"].get("/u/alice/assets/%2E%2E/%2E%2E/%2E%2E/index.html")
    assert escape.status_code == 404
    slash = await clients["alice"].get("/u/alice?x=1", follow_redirects=False)
    assert slash.status_code in (307, 308)
    assert slash.headers["location"] == "/u/alice/?x=1"


async def test_new_participant_lands_on_a_ready_canvas(
    clients: dict[str, httpx.AsyncClient],
) -> None:
    settings = (await clients["bob"].get("/u/bob/api/settings")).json()
    assert settings["Comfy.TutorialCompleted"] is True
    page = (await clients["bob"].get("/u/bob/")).text
    assert '"workflows","examples"' in page.replace(" ", "") or "examples" in page
    listing = (
        await clients["bob"].get("/u/bob/api/userdata?dir=workflows&recurse=true&full_info=true")
    ).json()
    assert any(item["path"].startswith("examples/") for item in listing)


async def test_object_info_before_any_worker_is_empty_and_run_says_why(
    clients: dict[str, httpx.AsyncClient],
) -> None:
    alice = clients["alice"]
    assert (await alice.get("/u/alice/api/object_info")).json() == {}
    run = await alice.post(
        "/u/alice/api/prompt", json={"prompt": {"1": {"class_type": "X", "inputs": {}}}}
    )
    assert run.status_code == 503
    body = run.json()
    assert body["error"]["type"] == "no_worker"
    assert "No GPU worker" in body["error"]["message"]
    assert body["node_errors"] == {}
