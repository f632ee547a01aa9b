"""/upload/image, /upload/mask and /view: size and type checks, names, traversal, isolation."""

from __future__ import annotations

import io
import json
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.comfy.conftest import png_bytes
from tests.conftest import Gateway

MP4_HEAD = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 64
WAV_HEAD = b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 64


def folder(gateway: Gateway, user: str, kind: str) -> Path:
    path = gateway.settings.users_dir / user / kind
    path.mkdir(parents=True, exist_ok=True)
    return path


async def upload(
    http: httpx.AsyncClient, user: str, name: str, body: bytes, **fields: str
) -> httpx.Response:
    return await http.post(
        f"/u/{user}/api/upload/image", files={"image": (name, body)}, data=fields
    )


async def test_upload_then_view_your_own_image(
    gateway: Gateway, clients: dict[str, httpx.AsyncClient]
) -> None:
    alice = clients["alice"]
    image = png_bytes((16, 16))
    response = await upload(alice, "alice", "cat.png", image)
    assert response.status_code == 200, response.text
    assert response.json() == {"name": "cat.png", "subfolder": "", "type": "input"}
    assert (folder(gateway, "alice", "input") / "cat.png").read_bytes() == image
    view = await alice.get(
        "/u/alice/api/view", params={"filename": "cat.png", "type": "input", "rand": "0.1"}
    )
    assert view.status_code == 200
    assert view.content == image
    assert view.headers["content-type"] == "image/png"
    assert view.headers["content-disposition"] == 'filename="cat.png"'
    assert view.headers["x-content-type-options"] == "nosniff"
    annotated = await alice.get("/u/alice/api/view", params={"filename": "cat.png [input]"})
    assert annotated.content == image
    object_info = (await alice.get("/u/alice/api/object_info")).json()
    assert object_info == {}  # no worker yet: nothing to list the file in


async def test_same_name_reuses_or_numbers_like_comfyui(
    clients: dict[str, httpx.AsyncClient],
) -> None:
    alice = clients["alice"]
    first, other = png_bytes(color=(1, 2, 3)), png_bytes(color=(9, 9, 9))
    assert (await upload(alice, "alice", "a.png", first)).json()["name"] == "a.png"
    assert (await upload(alice, "alice", "a.png", first)).json()["name"] == "a.png"
    assert (await upload(alice, "alice", "a.png", other)).json()["name"] == "a (1).png"
    replaced = await upload(alice, "alice", "a.png", other, overwrite="true")
    assert replaced.json()["name"] == "a.png"
    into = await upload(alice, "alice", "b.png", first, subfolder="pasted", type="temp")
    assert into.json() == {"name": "b.png", "subfolder": "pasted", "type": "temp"}


async def test_video_and_audio_uploads_pass_the_type_check(
    clients: dict[str, httpx.AsyncClient],
) -> None:
    alice = clients["alice"]
    assert (await upload(alice, "alice", "clip.mp4", MP4_HEAD)).status_code == 200
    assert (await upload(alice, "alice", "voice.wav", WAV_HEAD)).status_code == 200


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("evil.png", b"<html><script>alert(1)</script></html>"),
        ("notes.txt", b"just some text"),
        ("empty.png", b""),
        ("truncated.png", png_bytes()[:40]),
    ],
)
async def test_non_media_uploads_are_refused(
    gateway: Gateway, clients: dict[str, httpx.AsyncClient], name: str, body: bytes
) -> None:
    response = await upload(clients["alice"], "alice", name, body)
    assert response.status_code == 400, response.text
    assert "not an image, video or audio" in response.json()["message"]
    assert list(folder(gateway, "alice", "input").iterdir()) == []


async def test_oversize_upload_is_413(
    tmp_path: Path, redis_url: str, people: dict[str, object]
) -> None:
    from comfy_multi.settings import Settings
    from tests.conftest import ServerThread

    small = Settings(
        data_dir=tmp_path / "data", redis_url=redis_url, secret_key="t", max_upload_bytes=50_000
    )
    server = ServerThread(small).start()
    try:
        async with httpx.AsyncClient(
            base_url=server.url, auth=("alice", "alice-pw"), timeout=30
        ) as alice:
            big = Image.new("RGB", (400, 400))
            out = io.BytesIO()
            big.save(out, format="BMP")  # about 480 kB
            response = await upload(alice, "alice", "big.bmp", out.getvalue())
            assert response.status_code == 413
            assert response.json()["error"] == "too_large"
            # just over the limit but inside the multipart allowance: caught while streaming
            near = png_bytes() + b"\x00" * 50_000
            response = await upload(alice, "alice", "near.png", near)
            assert response.status_code == 413
        leftovers = (
            list((small.users_dir / "alice" / "input").glob("*"))
            if (small.users_dir / "alice" / "input").exists()
            else []
        )
        assert leftovers == []
    finally:
        server.stop()


async def test_names_are_sanitised_and_paths_cannot_escape(
    gateway: Gateway, clients: dict[str, httpx.AsyncClient]
) -> None:
    alice = clients["alice"]
    odd = await upload(alice, "alice", "../../bob/input/x<y>.png", png_bytes())
    assert odd.status_code == 200
    assert odd.json()["name"] == "x_y_.png"
    assert (folder(gateway, "alice", "input") / "x_y_.png").exists()
    escape = await upload(alice, "alice", "x.png", png_bytes(), subfolder="../../bob/input")
    assert escape.status_code == 400
    assert not (folder(gateway, "bob", "input") / "x.png").exists()
    bad_type = await upload(alice, "alice", "x.png", png_bytes(), type="models")
    assert bad_type.status_code == 400
    no_file = await alice.post("/u/alice/api/upload/image", data={"type": "input"})
    assert no_file.status_code == 400


async def test_view_follows_comfyuis_rules_and_never_shows_another_users_file(
    gateway: Gateway, clients: dict[str, httpx.AsyncClient]
) -> None:
    (folder(gateway, "bob", "output") / "secret.png").write_bytes(png_bytes())
    (folder(gateway, "alice", "output") / "mine.png").write_bytes(png_bytes())
    alice = clients["alice"]
    view = "/u/alice/api/view"
    assert (await alice.get(view, params={"filename": "secret.png"})).status_code == 404
    assert (await alice.get(view, params={"filename": "mine.png"})).status_code == 200
    assert (
        await alice.get(view, params={"filename": "../../bob/output/secret.png"})
    ).status_code == 400
    assert (await alice.get(view, params={"filename": "/etc/passwd"})).status_code == 400
    assert (await alice.get(view, params={"filename": ""})).status_code == 400
    assert (
        await alice.get(view, params={"filename": "mine.png", "type": "models"})
    ).status_code == 400
    escape = await alice.get(
        view, params={"filename": "secret.png", "subfolder": "../../bob/output"}
    )
    assert escape.status_code == 403
    sneaky = await alice.get(view, params={"filename": "secret.png", "subfolder": "../../bob"})
    assert sneaky.status_code == 403
    # bob's own workspace serves it, to bob only
    assert (
        await clients["bob"].get("/u/bob/api/view", params={"filename": "secret.png"})
    ).status_code == 200
    assert (await clients["bob"].get(view, params={"filename": "mine.png"})).status_code == 403


async def test_view_previews_channels_and_refuses_to_run_pages(
    gateway: Gateway, clients: dict[str, httpx.AsyncClient]
) -> None:
    out = folder(gateway, "alice", "output")
    rgba = Image.new("RGBA", (8, 8), (255, 0, 0, 128))
    buffer = io.BytesIO()
    rgba.save(buffer, format="PNG")
    (out / "a.png").write_bytes(buffer.getvalue())
    (out / "page.html").write_text("<script>alert(1)</script>")
    (out / "logo.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    alice = clients["alice"]
    webp = await alice.get("/u/alice/api/view", params={"filename": "a.png", "preview": "webp;50"})
    assert webp.headers["content-type"] == "image/webp"
    assert Image.open(io.BytesIO(webp.content)).format == "WEBP"
    alpha = await alice.get("/u/alice/api/view", params={"filename": "a.png", "channel": "a"})
    assert Image.open(io.BytesIO(alpha.content)).getchannel("A").getpixel((0, 0)) == 128
    for name in ("page.html", "logo.svg"):
        served = await alice.get("/u/alice/api/view", params={"filename": name})
        assert served.headers["content-type"] == "application/octet-stream", name
        assert "sandbox" in served.headers.get_list("content-security-policy")


async def test_mask_upload_applies_the_alpha_to_your_original(
    gateway: Gateway, clients: dict[str, httpx.AsyncClient]
) -> None:
    alice = clients["alice"]
    await upload(alice, "alice", "photo.png", png_bytes((10, 10), (10, 200, 10)))
    mask = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    buffer = io.BytesIO()
    mask.save(buffer, format="PNG")
    ref = json.dumps({"filename": "photo.png", "subfolder": "", "type": "input"})
    response = await alice.post(
        "/u/alice/api/upload/mask",
        files={"image": ("clipspace-mask-1.png", buffer.getvalue())},
        data={"original_ref": ref, "type": "input", "subfolder": "clipspace"},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "name": "clipspace-mask-1.png",
        "subfolder": "clipspace",
        "type": "input",
    }
    saved = Image.open(folder(gateway, "alice", "input") / "clipspace" / "clipspace-mask-1.png")
    assert saved.mode == "RGBA"
    assert saved.getpixel((0, 0)) == (10, 200, 10, 0)
    (folder(gateway, "bob", "input") / "bobs.png").write_bytes(png_bytes())
    theirs = json.dumps({"filename": "bobs.png", "type": "input"})
    stolen = await alice.post(
        "/u/alice/api/upload/mask",
        files={"image": ("m.png", buffer.getvalue())},
        data={"original_ref": theirs},
    )
    assert stolen.status_code == 404
