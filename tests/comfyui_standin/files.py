"""GET /view and POST /upload/image, /upload/mask, with ComfyUI's path rules."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import mimetypes
import os
import shutil
from collections.abc import Callable
from typing import IO, Any

from PIL import Image
from PIL.PngImagePlugin import PngInfo
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.types import Message, Receive

from .paths import Dirs, inside

_FORCED_DOWNLOAD = {
    "text/html",
    "text/html-sandboxed",
    "application/xhtml+xml",
    "text/javascript",
    "text/css",
}


def _disposition(response: Response, filename: str) -> Response:
    """ComfyUI's bare `filename="..."` header, UTF-8 encoded as aiohttp does."""
    response.raw_headers.append((b"content-disposition", f'filename="{filename}"'.encode()))
    return response


def _encoded(img: Image.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _preview(path: str, preview: str, channel: str) -> tuple[bytes, str]:
    parts = preview.split(";")
    fmt = parts[0] if parts[0] in ("webp", "jpeg") and "a" not in channel else "webp"
    quality = int(parts[-1]) if parts[-1].isdigit() else 90
    with Image.open(path) as img:
        out = img.convert("RGB") if fmt == "jpeg" or channel == "rgb" else img
        return _encoded(out, fmt, quality=quality), f"image/{fmt}"


def _channel(path: str, channel: str) -> bytes:
    with Image.open(path) as img:
        if channel == "rgb":
            return _encoded(img.convert("RGB"), "PNG")
        alpha = img.getchannel("A") if img.mode == "RGBA" else Image.new("L", img.size, 255)
        out = Image.new("RGBA", img.size)
        out.putalpha(alpha)
        return _encoded(out, "PNG")


def _locate(query: dict[str, str], dirs: Dirs) -> int | tuple[str, str]:
    """ComfyUI's /view checks: an HTTP status, or (path, filename) of an existing file."""
    if "filename" not in query:
        return 404
    filename, folder = dirs.annotated(query["filename"])
    if not filename or filename[0] == "/" or ".." in filename:
        return 400
    if folder is None:
        folder = dirs.by_type(query.get("type", "output"))
        if folder is None:
            return 400
    if "subfolder" in query:
        full = os.path.join(folder, query["subfolder"])
        if not inside(folder, full):
            return 403
        folder = full
    filename = os.path.basename(filename)
    path = os.path.join(folder, filename)
    return (path, filename) if os.path.isfile(path) else 404


async def view(request: Request, dirs: Dirs) -> Response:
    query = dict(request.query_params)
    found = await asyncio.to_thread(_locate, query, dirs)
    if isinstance(found, int):
        return Response(status_code=found)
    path, filename = found
    channel = query.get("channel", "")
    if "preview" in query:
        body, media = await asyncio.to_thread(_preview, path, query["preview"], channel)
        return _disposition(Response(body, media_type=media), filename)
    if channel in ("rgb", "a"):
        body = await asyncio.to_thread(_channel, path, channel)
        return _disposition(Response(body, media_type="image/png"), filename)
    media_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    if media_type in _FORCED_DOWNLOAD:
        media_type = "application/octet-stream"
    # FileResponse streams the file in chunks, whatever its size
    return _disposition(FileResponse(path, media_type=media_type), filename)


class UploadTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"request body is larger than {limit} bytes")
        self.limit = limit


def _limited(receive: Receive, limit: int) -> Receive:
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        seen += len(message.get("body", b""))
        if seen > limit:
            raise UploadTooLarge(limit)
        return message

    return wrapped


async def _form(request: Request, limit: int) -> FormData | Response:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        return Response("Request Entity Too Large", status_code=413)
    limited = Request(request.scope, _limited(request.receive, limit))
    try:
        return await limited.form(max_part_size=limit)
    except UploadTooLarge:
        return Response("Request Entity Too Large", status_code=413)


def _same_content(path: str, upload: IO[bytes]) -> bool:
    def digest(f: IO[bytes]) -> str:
        h = hashlib.sha256()
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
        return h.hexdigest()

    with open(path, "rb") as existing:
        a = digest(existing)
    b = digest(upload)
    upload.seek(0)
    return a == b


def _copy_upload(upload: IO[bytes], path: str) -> None:
    upload.seek(0)
    with open(path, "wb") as f:
        shutil.copyfileobj(upload, f, 1 << 20)


SaveFunction = Callable[[UploadFile, FormData, str], Response | None]


async def upload(
    request: Request, dirs: Dirs, limit: int, save: SaveFunction | None = None
) -> Response:
    """ComfyUI's image_upload: rename to `name (1).ext` unless overwrite or equal content."""
    form = await _form(request, limit)
    if isinstance(form, Response):
        return form
    try:
        return await asyncio.to_thread(_store, form, dirs, save)
    finally:
        await form.close()


def _store(form: FormData, dirs: Dirs, save: SaveFunction | None) -> Response:
    image = form.get("image")
    if not isinstance(image, UploadFile) or not image.filename:
        return Response(status_code=400)
    folder_type = str(form.get("type") or "input")
    base = dirs.by_type(folder_type)
    if base is None:
        return Response(status_code=400)
    subfolder = str(form.get("subfolder", ""))
    folder = os.path.join(base, os.path.normpath(subfolder))
    filename = image.filename
    path = os.path.abspath(os.path.join(folder, filename))
    if not inside(base, path):
        return Response(status_code=400)
    os.makedirs(folder, exist_ok=True)
    stem, ext = os.path.splitext(filename)
    duplicate = False
    if str(form.get("overwrite")) not in ("true", "1"):
        counter = 1
        while os.path.exists(path):
            if _same_content(path, image.file):
                duplicate = True
                break
            filename = f"{stem} ({counter}){ext}"
            path = os.path.join(folder, filename)
            counter += 1
    if not duplicate:
        if save is not None:
            failed = save(image, form, path)
            if failed is not None:
                return failed
        else:
            _copy_upload(image.file, path)
    return _json({"name": filename, "subfolder": subfolder, "type": folder_type})


def _json(content: Any) -> Response:
    return Response(json.dumps(content), media_type="application/json")


def mask_saver(dirs: Dirs) -> SaveFunction:
    """/upload/mask: the original image (`original_ref`) with the upload's alpha, as PNG."""

    def save(image: UploadFile, form: FormData, path: str) -> Response | None:
        try:
            ref = json.loads(str(form.get("original_ref")))
            name, folder = dirs.annotated(ref["filename"])
        except (ValueError, KeyError, TypeError):
            return Response(status_code=400)
        if not name or name[0] == "/" or ".." in name:
            return Response(status_code=400)
        folder = folder or dirs.by_type(ref.get("type", "output"))
        if folder is None:
            return Response(status_code=400)
        if ref.get("subfolder", ""):
            full = os.path.join(folder, ref["subfolder"])
            if not inside(folder, full):
                return Response(status_code=403)
            folder = full
        original = os.path.join(folder, name)
        if os.path.isfile(original):
            _apply_mask(original, image.file, path)
        return None

    return save


def _apply_mask(original_path: str, mask_file: IO[bytes], path: str) -> None:
    with Image.open(original_path) as original:
        metadata = PngInfo()
        for key, value in getattr(original, "text", {}).items():
            metadata.add_text(key, value)
        rgba = original.convert("RGBA")
    mask_file.seek(0)
    with Image.open(mask_file) as mask:
        rgba.putalpha(mask.convert("RGBA").getchannel("A"))
    rgba.save(path, compress_level=4, pnginfo=metadata)
