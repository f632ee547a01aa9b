"""Settings, userdata and the shared workshop workflows, per participant."""

from __future__ import annotations

import json
from urllib.parse import quote

import httpx

from tests.comfy.conftest import ScriptedWorker, png_bytes
from tests.conftest import Gateway

WORKFLOW = {"last_node_id": 0, "nodes": [], "links": [], "version": 0.4}


def enc(path: str) -> str:
    return quote(path, safe="")


async def test_settings_are_per_user_and_merge(clients: dict[str, httpx.AsyncClient]) -> None:
    alice, bob = clients["alice"], clients["bob"]
    assert (
        await alice.post("/u/alice/api/settings", json={"Comfy.A": 1, "Comfy.B": "x"})
    ).status_code == 200
    assert (
        await alice.post("/u/alice/api/settings/Comfy.B", json={"nested": [1, 2]})
    ).status_code == 200
    settings = (await alice.get("/u/alice/api/settings")).json()
    assert settings["Comfy.A"] == 1
    assert settings["Comfy.B"] == {"nested": [1, 2]}
    assert settings["Comfy.TutorialCompleted"] is True
    assert (await alice.get("/u/alice/api/settings/Comfy.A")).json() == 1
    assert (await alice.get("/u/alice/api/settings/Comfy.Missing")).json() is None
    assert "Comfy.A" not in (await bob.get("/u/bob/api/settings")).json()
    bad = await alice.post(
        "/u/alice/api/settings", content=b"[1]", headers={"Content-Type": "application/json"}
    )
    assert bad.status_code == 400


async def test_userdata_files_round_trip(
    gateway: Gateway, clients: dict[str, httpx.AsyncClient]
) -> None:
    alice = clients["alice"]
    body = json.dumps(WORKFLOW).encode()
    saved = await alice.post(
        f"/u/alice/api/userdata/{enc('workflows/mine/a.json')}?overwrite=false", content=body
    )
    assert saved.status_code == 200, saved.text
    assert saved.json() == "workflows/mine/a.json"
    again = await alice.post(
        f"/u/alice/api/userdata/{enc('workflows/mine/a.json')}?overwrite=false", content=body
    )
    assert again.status_code == 409
    info = await alice.post(
        f"/u/alice/api/userdata/{enc('workflows/b.json')}?full_info=true", content=body
    )
    assert set(info.json()) == {"path", "size", "modified", "created"}
    assert info.json()["path"] == "workflows/b.json"
    assert (
        await alice.get(f"/u/alice/api/userdata/{enc('workflows/mine/a.json')}")
    ).content == body
    listed = (
        await alice.get(
            "/u/alice/api/userdata?dir=workflows&recurse=true&split=false&full_info=true"
        )
    ).json()
    mine = [i["path"] for i in listed if not i["path"].startswith(("examples/", "workshop/"))]
    assert mine == ["b.json", "mine/a.json"]
    assert isinstance(listed[0]["modified"], float)
    plain = (await alice.get("/u/alice/api/userdata?dir=workflows&recurse=true")).json()
    assert "mine/a.json" in plain
    split = (await alice.get("/u/alice/api/userdata?dir=workflows&recurse=true&split=true")).json()
    assert ["mine/a.json", "mine", "a.json"] in split
    flat = (await alice.get("/u/alice/api/userdata?dir=workflows")).json()
    assert flat == ["b.json"]
    moved = await alice.post(
        f"/u/alice/api/userdata/{enc('workflows/b.json')}/move/{enc('workflows/c.json')}"
    )
    assert moved.json() == "workflows/c.json"
    assert (await alice.get(f"/u/alice/api/userdata/{enc('workflows/b.json')}")).status_code == 404
    blocked = await alice.post(
        f"/u/alice/api/userdata/{enc('workflows/c.json')}/move/{enc('workflows/mine/a.json')}?overwrite=false"
    )
    assert blocked.status_code == 409
    assert (
        await alice.delete(f"/u/alice/api/userdata/{enc('workflows/c.json')}")
    ).status_code == 204
    assert (
        await alice.delete(f"/u/alice/api/userdata/{enc('workflows/c.json')}")
    ).status_code == 404
    assert (await alice.get("/u/alice/api/userdata")).status_code == 400
    assert (await alice.get("/u/alice/api/userdata?dir=nothing-here")).json() == []
    assert (
        gateway.settings.users_dir / "alice" / "userdata" / "workflows" / "mine" / "a.json"
    ).exists()


async def test_userdata_cannot_escape_or_cross_users(
    gateway: Gateway, clients: dict[str, httpx.AsyncClient]
) -> None:
    alice, bob = clients["alice"], clients["bob"]
    await bob.post(f"/u/bob/api/userdata/{enc('workflows/private.json')}", content=b"{}")
    for path in (
        "../../bob/userdata/workflows/private.json",
        "../bob/userdata/comfy.settings.json",
        "/../../x",
    ):
        got = await alice.get(f"/u/alice/api/userdata/{enc(path)}")
        assert got.status_code in (403, 404), path
        assert got.status_code != 200
    wrote = await alice.post(
        f"/u/alice/api/userdata/{enc('../../bob/userdata/evil.json')}", content=b"{}"
    )
    assert wrote.status_code == 403
    assert not (gateway.settings.users_dir / "bob" / "userdata" / "evil.json").exists()
    listing = await alice.get("/u/alice/api/userdata?dir=../../bob/userdata")
    assert listing.status_code == 403
    assert (
        await alice.get(f"/u/bob/api/userdata/{enc('workflows/private.json')}")
    ).status_code == 403


async def test_workshop_and_example_workflows_are_shared_and_read_only(
    gateway: Gateway, clients: dict[str, httpx.AsyncClient]
) -> None:
    workshop = gateway.settings.workflows_dir
    workshop.mkdir(parents=True, exist_ok=True)
    (workshop / "Day 1.json").write_text(json.dumps(WORKFLOW))
    for user in ("alice", "bob"):
        http = clients[user]
        listed = [
            i["path"]
            for i in (
                await http.get(f"/u/{user}/api/userdata?dir=workflows&recurse=true&full_info=true")
            ).json()
        ]
        assert "workshop/Day 1.json" in listed
        assert "examples/1 Invert a colour.json" in listed
        got = await http.get(f"/u/{user}/api/userdata/{enc('workflows/workshop/Day 1.json')}")
        assert got.status_code == 200
        assert got.json() == WORKFLOW
        example = await http.get(
            f"/u/{user}/api/userdata/{enc('workflows/examples/2 Blur your own picture.json')}"
        )
        assert example.json()["nodes"][0]["type"] == "LoadImage"
    alice = clients["alice"]
    path = enc("workflows/workshop/Day 1.json")
    assert (await alice.delete(f"/u/alice/api/userdata/{path}")).status_code == 403
    assert (
        await alice.post(f"/u/alice/api/userdata/{path}?overwrite=false", content=b"{}")
    ).status_code == 409
    # saving over it keeps a private copy that shadows the shared one, for alice only
    assert (
        await alice.post(f"/u/alice/api/userdata/{path}", content=b'{"mine": 1}')
    ).status_code == 200
    assert (await alice.get(f"/u/alice/api/userdata/{path}")).json() == {"mine": 1}
    assert (await clients["bob"].get(f"/u/bob/api/userdata/{path}")).json() == WORKFLOW
    assert json.loads((workshop / "Day 1.json").read_text()) == WORKFLOW
    renamed = await clients["bob"].post(
        f"/u/bob/api/userdata/{path}/move/{enc('workflows/day1-bob.json')}"
    )
    assert renamed.status_code == 200
    assert (workshop / "Day 1.json").exists()
    # a new page opens the workshop folder when the instructor filled it
    page = (await clients["carol"].get("/u/carol/")).text
    assert 'q.set("workflows","workshop")' in page


async def test_object_info_lists_only_your_own_input_files(
    gateway: Gateway, worker: ScriptedWorker, clients: dict[str, httpx.AsyncClient]
) -> None:
    for user, names in (("alice", ["a.png", "b.jpg", "clip.mp4"]), ("bob", ["bob.png"])):
        folder = gateway.settings.users_dir / user / "input"
        folder.mkdir(parents=True, exist_ok=True)
        for name in names:
            (folder / name).write_bytes(png_bytes())
    alice = (await clients["alice"].get("/u/alice/api/object_info")).json()
    assert alice["LoadImage"]["input"]["required"]["image"][0] == ["a.png", "b.jpg"]
    assert alice["LoadImage"]["input"]["required"]["image"][1]["image_upload"] is True
    assert alice["LoadImageMask"]["input"]["required"]["image"][0] == ["a.png", "b.jpg"]
    assert alice["ImageBlur"] == worker.object_info["ImageBlur"]
    bob = (await clients["bob"].get("/u/bob/api/object_info")).json()
    assert bob["LoadImage"]["input"]["required"]["image"][0] == ["bob.png"]
    one = (await clients["bob"].get("/u/bob/api/object_info/LoadImage")).json()
    assert list(one) == ["LoadImage"]
    assert one["LoadImage"]["input"]["required"]["image"][0] == ["bob.png"]
    assert (await clients["bob"].get("/u/bob/api/object_info/Nope")).json() == {}
    models = (await clients["bob"].get("/u/bob/api/experiment/models")).json()
    assert {"name": "checkpoints", "folders": ["checkpoints"]} in models
    files = (await clients["bob"].get("/u/bob/api/experiment/models/checkpoints")).json()
    assert files == [{"name": "sd15.safetensors", "pathIndex": 0}]
    stats = (await clients["bob"].get("/u/bob/api/system_stats")).json()
    assert stats["system"]["comfyui_version"] == "0.3.64"
    assert stats["system"]["required_frontend_version"] == "1.58.1"
