"""Images are held to a pixel budget read from their header before anything decodes them."""

from __future__ import annotations

import io
import struct
import time
import zlib
from pathlib import Path

import httpx
from PIL import Image

from tests.comfy.conftest import png_bytes
from tests.conftest import Gateway


def png_bomb(width: int, height: int) -> bytes:
    """A grey PNG of zeros, compressed row by row: 10,000 x 10,000 is ~97 kB."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    packer = zlib.compressobj(9)
    row = b"\x00" * (width + 1)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def peak_rss_mb() -> float:
    status = Path("/proc/self/status").read_text()
    return int(next(x for x in status.splitlines() if x.startswith("VmHWM")).split()[1]) / 1024


def reset_peak_rss() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # the kernel's "reset the high-water mark"


def put_output(gateway: Gateway, user: str, name: str, body: bytes) -> None:
    """A file in the user's output folder, as a worker's upload leaves it."""
    folder = gateway.settings.users_dir / user / "output"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(body)


async def test_an_image_bomb_upload_is_refused_at_the_door(
    gateway: Gateway, clients: dict[str, httpx.AsyncClient]
) -> None:
    bomb = png_bomb(10_000, 10_000)
    assert len(bomb) < 150_000
    start = time.monotonic()
    r = await clients["alice"].post(
        "/u/alice/api/upload/image", files={"image": ("bomb.png", bomb, "image/png")}
    )
    assert r.status_code == 413, r.text
    assert "10,000 x 10,000 pixels" in r.json()["message"]
    assert time.monotonic() - start < 3
    assert not (gateway.settings.users_dir / "alice" / "input" / "bomb.png").exists()
    ok = await clients["alice"].post(
        "/u/alice/api/upload/image", files={"image": ("fine.png", png_bytes(), "image/png")}
    )
    assert ok.status_code == 200, ok.text


async def test_previews_and_channels_of_a_bomb_stay_within_budget(
    gateway: Gateway, clients: dict[str, httpx.AsyncClient]
) -> None:
    bomb = png_bomb(10_000, 10_000)
    put_output(gateway, "alice", "bomb.png", bomb)
    reset_peak_rss()
    before = peak_rss_mb()
    start = time.monotonic()
    preview = await clients["alice"].get(
        "/u/alice/api/view", params={"filename": "bomb.png", "preview": "webp;50"}
    )
    # a preview is optional: past the budget the original is sent untouched
    assert preview.status_code == 200
    assert preview.content == bomb
    for channel in ("a", "rgb"):
        r = await clients["alice"].get(
            "/u/alice/api/view", params={"filename": "bomb.png", "channel": channel}
        )
        assert r.status_code == 413, r.text
        assert "pixels" in r.json()["message"]
    assert time.monotonic() - start < 3
    assert peak_rss_mb() - before < 100, f"{peak_rss_mb() - before:.0f} MB more at the peak"


async def test_images_within_budget_are_previewed_and_split(
    gateway: Gateway, clients: dict[str, httpx.AsyncClient]
) -> None:
    img = Image.new("RGBA", (300, 200), (10, 200, 30, 77))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    put_output(gateway, "alice", "small.png", buf.getvalue())
    view = "/u/alice/api/view"
    r = await clients["alice"].get(view, params={"filename": "small.png", "preview": "jpeg;80"})
    assert r.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(r.content)) as got:
        assert got.size == (300, 200)
    r = await clients["alice"].get(view, params={"filename": "small.png", "channel": "a"})
    with Image.open(io.BytesIO(r.content)) as got:
        assert got.convert("RGBA").getpixel((5, 5)) == (0, 0, 0, 77)
    r = await clients["alice"].get(view, params={"filename": "small.png", "channel": "rgb"})
    with Image.open(io.BytesIO(r.content)) as got:
        assert got.mode == "RGB"
        assert got.getpixel((5, 5)) == (10, 200, 30)


async def test_a_mask_for_a_bomb_is_refused(
    gateway: Gateway, clients: dict[str, httpx.AsyncClient]
) -> None:
    put_output(gateway, "alice", "bomb.png", png_bomb(10_000, 10_000))
    r = await clients["alice"].post(
        "/u/alice/api/upload/mask",
        files={"image": ("mask.png", png_bytes(), "image/png")},
        data={"original_ref": '{"filename": "bomb.png", "type": "output"}'},
    )
    assert r.status_code == 413, r.text
