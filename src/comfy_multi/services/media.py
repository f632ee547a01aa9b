"""What kind of media a file is: by name for listings, by content for uploads;
and how large an image is, from its header, before anything decodes it.

Uploads are checked at the door (ComfyUI itself accepts any bytes and fails
later on the GPU): images must open in Pillow, videos and audio must start
with the magic bytes of a container ComfyUI's loaders read.

A small file can hold a huge image (a 97 kB PNG of 10,000 x 10,000 pixels
decodes to 400 MB), so every image the gateway would decode is first held to
a pixel budget read from its header.
"""

from __future__ import annotations

import mimetypes
import warnings
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from comfy_multi.errors import TooLarge

IMAGE, VIDEO, AUDIO = "image", "video", "audio"

# What a browser needs to play or show each output ComfyUI and its custom
# nodes write; the system's mime table lacks several and varies by host.
_EXTRA_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mov": "video/quicktime",
    ".mkv": "video/x-matroska",
    ".webm": "video/webm",
    ".avi": "video/x-msvideo",
    ".wav": "audio/wav",
    ".mp3": "audio/mpeg",
    ".flac": "audio/flac",
    ".m4a": "audio/mp4",
    ".ogg": "audio/ogg",
    ".opus": "audio/ogg",
    ".glb": "model/gltf-binary",
    ".gltf": "model/gltf+json",
    ".obj": "model/obj",
    ".stl": "model/stl",
    ".fbx": "application/octet-stream",
    ".ply": "application/octet-stream",
    ".txt": "text/plain",
    ".json": "application/json",
}


def content_type(name: str) -> str:
    """The Content-Type to serve a file under, by its extension."""
    suffix = Path(name).suffix.lower()
    return _EXTRA_TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


def kind_of_name(name: str) -> str | None:
    """image, video or audio by file extension (ComfyUI's content-type filter)."""
    mime = _EXTRA_TYPES.get(Path(name).suffix.lower()) or mimetypes.guess_type(name)[0]
    if not mime:
        return None
    major = mime.split("/", 1)[0]
    return major if major in (IMAGE, VIDEO, AUDIO) else None


class ImageTooLarge(TooLarge):
    def __init__(self, size: tuple[int, int], max_pixels: int) -> None:
        width, height = size
        super().__init__(
            f"the image is {width:,} x {height:,} pixels; "
            f"this room takes images of at most {max_pixels:,} pixels"
        )
        self.size = size


def open_within(path: Path, max_pixels: int) -> Image.Image:
    """The image opened lazily (only its header read), or ImageTooLarge when
    it has more than `max_pixels` pixels. OSError / ValueError if it is no image."""
    with warnings.catch_warnings():
        # Pillow's own bomb check warns (or raises) inside open(); ours answers first
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            img = Image.open(path)
        except Image.DecompressionBombError:
            raise ImageTooLarge((0, 0), max_pixels) from None
    if img.width * img.height > max_pixels:
        size = img.size
        img.close()
        raise ImageTooLarge(size, max_pixels)
    return img


def _is_image(path: Path) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img.verify()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return False
    return True


def _sniff(head: bytes) -> str | None:
    """video or audio from a file's first bytes."""
    box = head[4:12]
    if box[:4] == b"ftyp":
        brand = box[4:8]
        return AUDIO if brand in (b"M4A ", b"M4B ", b"M4P ") else VIDEO
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # Matroska / WebM
        return VIDEO
    if head.startswith(b"RIFF"):
        return {b"AVI ": VIDEO, b"WAVE": AUDIO}.get(head[8:12])
    if head.startswith((b"fLaC", b"OggS", b"ID3")) or head[:2] in (b"\xff\xfb", b"\xff\xf3"):
        return AUDIO
    if head[:2] in (b"\xff\xf2", b"\xff\xf1", b"\xff\xf9"):  # MPEG audio / ADTS AAC
        return AUDIO
    return None


def kind_of_file(path: Path) -> str | None:
    """image, video or audio by content; None for anything else."""
    with path.open("rb") as f:
        head = f.read(64)
    sniffed = _sniff(head)
    if sniffed is not None:
        return sniffed
    return IMAGE if _is_image(path) else None


def is_svg_or_script(content_type: str) -> bool:
    """Types a browser would run if served inline from our origin."""
    return content_type in {
        "text/html",
        "text/html-sandboxed",
        "application/xhtml+xml",
        "text/javascript",
        "application/javascript",
        "text/css",
        "image/svg+xml",
    }
