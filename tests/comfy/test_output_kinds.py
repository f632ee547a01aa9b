"""Every output kind as upstream shows it: VHS `gifs`, video, audio and 3D
items counted and previewed by the frontend's rule, host paths stripped before
anything reaches a participant, progress text frames relayed to the right socket."""

from __future__ import annotations

import struct
from typing import Any

import httpx
import pytest

from comfy_multi.services import outputs as rules
from tests.comfy.conftest import ScriptedWorker, user_socket
from tests.comfy.test_ws import finished, quiet_until_own_status, submit, texts
from tests.conftest import Gateway, Person

# (output key, item, previewable by frontend 1.58.1's filterPreviewableResults);
# tests/browser/test_output_rules.py runs the same table through the bundle itself
CASES: list[tuple[str, dict[str, Any], bool]] = [
    ("images", {"filename": "a.png", "type": "output"}, True),
    ("images", {"filename": "a.weird", "type": "output"}, True),
    ("images", {"filename": "a.mp4", "type": "output"}, True),
    ("gifs", {"filename": "a.mp4", "format": "video/h264-mp4", "frame_rate": 8.0}, True),
    ("gifs", {"filename": "a.bin", "format": "video/h264-mp4", "frame_rate": 8.0}, True),
    ("gifs", {"filename": "a.bin", "format": "image/gif", "frame_rate": 8.0}, False),
    ("gifs", {"filename": "a.bin", "format": "audio/flac"}, True),
    ("video", {"filename": "a.bin", "type": "output"}, True),
    ("videos", {"filename": "a.bin", "type": "output"}, False),
    ("audio", {"filename": "a.flac", "type": "output"}, True),
    ("audio", {"filename": "a.bin", "type": "output"}, True),
    ("3d", {"filename": "mesh.glb", "type": "output"}, True),
    ("3d", {"filename": "mesh.bin", "type": "output"}, False),
    ("result", {"filename": "notes.txt", "type": "output"}, True),
    ("latents", {"filename": "a.latent", "type": "output"}, False),
    ("images", {"filename": "a.png", "type": "elsewhere"}, False),
    ("animated", {"filename": "a.png", "type": "output"}, False),
    ("text", {"filename": "a.txt"}, False),
]


def _count(key: str, item: dict[str, Any]) -> int:
    return sum(
        1 for _, k, i in rules.file_items({"9": {key: [item]}}) if rules.is_previewable(k, i)
    )


@pytest.mark.parametrize(("key", "item", "expected"), CASES)
def test_previewable_rule_matches_the_frontend(
    key: str, item: dict[str, Any], expected: bool
) -> None:
    assert _count(key, item) == int(expected)


def test_host_paths_are_removed_from_items() -> None:
    output = {
        "gifs": [
            {
                "filename": "clip_00001.mp4",
                "subfolder": "",
                "type": "output",
                "format": "video/h264-mp4",
                "frame_rate": 8.0,
                "workflow": "clip_00001.png",
                "fullpath": "/srv/gpu7/ComfyUI/output/clip_00001.mp4",
            }
        ],
        "text": ["C:\\models\\secret.safetensors"],
        "meshes": [{"filename": "m.glb", "type": "output", "path": "D:\\gpu\\out\\m.glb"}],
    }
    clean = rules.scrub(output)
    assert clean["gifs"] == [
        {
            "filename": "clip_00001.mp4",
            "subfolder": "",
            "type": "output",
            "format": "video/h264-mp4",
            "frame_rate": 8.0,
            "workflow": "clip_00001.png",
        }
    ]
    assert clean["meshes"] == [{"filename": "m.glb", "type": "output"}]


async def test_vhs_video_reaches_the_page_without_host_paths(
    gateway: Gateway,
    people: dict[str, Person],
    worker: ScriptedWorker,
    clients: dict[str, httpx.AsyncClient],
) -> None:
    alice = clients["alice"]
    async with user_socket(gateway, people["alice"]) as sock:
        job_id = await submit(alice, "alice", sock.sid)
        job = await worker.claim()
        stored = await worker.output(job, "clip_00001.mp4", b"\x00\x00\x00\x18ftypmp42" * 8)
        gifs = {
            "gifs": [
                {
                    **stored,
                    "format": "video/h264-mp4",
                    "frame_rate": 8.0,
                    "workflow": "clip_00001.png",
                    "fullpath": "/srv/gpu7/ComfyUI/output/clip_00001.mp4",
                }
            ]
        }
        mesh = await worker.output(job, "mesh.glb", b"glTF" + b"\x00" * 60)
        await worker.events(
            job,
            ("execution_start", {"timestamp": 1}),
            ("executing", {"node": "3", "display_node": "3"}),
            ("executed", {"node": "3", "display_node": "3", "output": gifs}),
            ("executed", {"node": "4", "display_node": "4", "output": {"3d": [mesh]}}),
            ("execution_success", {"timestamp": 2}),
        )
        await worker.complete(job, {"3": gifs, "4": {"3d": [mesh]}})
        _, frames = await sock.until(finished(job_id))
    assert "/srv/gpu7" not in "".join(f for f in frames if isinstance(f, str))
    executed = [m for m in texts(frames) if m["type"] == "executed"]
    assert executed[0]["data"]["output"]["gifs"][0]["format"] == "video/h264-mp4"
    assert "fullpath" not in executed[0]["data"]["output"]["gifs"][0]

    listed = (await alice.get("/u/alice/api/jobs", params={"status": "completed"})).json()
    item = listed["jobs"][0]
    assert item["outputs_count"] == 2
    assert item["previewable_outputs_count"] == 2
    assert item["preview_output"]["mediaType"] == "gifs"
    assert item["preview_output"]["filename"] == stored["filename"]
    assert "fullpath" not in item["preview_output"]
    detail = (await alice.get(f"/u/alice/api/jobs/{job_id}")).text
    assert "/srv/gpu7" not in detail
    history = (await alice.get(f"/u/alice/api/history/{job_id}")).text
    assert "/srv/gpu7" not in history
    # downloadable, with the type a browser plays
    view = await alice.get("/u/alice/api/view", params={"filename": stored["filename"]})
    assert view.status_code == 200
    assert view.headers["content-type"] == "video/mp4"
    glb = await alice.get("/u/alice/api/view", params={"filename": mesh["filename"]})
    assert glb.headers["content-type"] == "model/gltf-binary"


async def test_progress_text_reaches_only_the_submitting_socket_as_a_type_3_frame(
    gateway: Gateway,
    people: dict[str, Person],
    worker: ScriptedWorker,
    clients: dict[str, httpx.AsyncClient],
) -> None:
    async with (
        user_socket(gateway, people["alice"]) as mine,
        user_socket(gateway, people["alice"]) as other_tab,
        user_socket(gateway, people["bob"]) as bob,
    ):
        await submit(clients["alice"], "alice", mine.sid)
        job = await worker.claim()
        await worker.events(
            job,
            ("executing", {"node": "7", "display_node": "7"}),
            ("progress_text", {"node": "7", "text": "a cat, in the rain ☂"}),
            ("progress", {"value": 1, "max": 1, "node": "7"}),
        )
        _, frames = await mine.until(lambda m: m["type"] == "progress")
        binary = [f for f in frames if isinstance(f, bytes)]
        assert len(binary) == 1
        kind, size = struct.unpack(">II", binary[0][:8])
        assert kind == 3
        assert binary[0][8 : 8 + size] == b"7"
        assert binary[0][8 + size :].decode() == "a cat, in the rain ☂"
        assert not any(m["type"] == "progress_text" for m in texts(frames))
        await worker.run(job)
        _, tab = await other_tab.until(
            lambda m: (
                m["type"] == "status" and m["data"]["status"]["exec_info"]["queue_remaining"] == 0
            )
        )
        assert not any(isinstance(f, bytes) for f in tab)
        await quiet_until_own_status(bob, clients["bob"], "bob")
