"""/view, /upload/image and /upload/mask (ComfyUI server.py) on the participant's
own input, output and temp folders.

Paths follow ComfyUI's rules (400 for `..` or a leading `/` in a name, 403
for a subfolder that escapes) and always resolve under the caller's folder,
so another participant's file is simply not there. Uploads are size-limited,
type-checked by content and stored under sanitised names.
"""

from __future__ import annotations

import hashlib
import io
import secrets
from pathlib import Path
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse
from PIL import Image
from starlette.datastructures import UploadFile

from comfy_multi.comfy.access import Participant
from comfy_multi.errors import BadRequest, NotFound, RequestError, TooLarge
from comfy_multi.services import jsonbody, media, offload
from comfy_multi.services.auth import PlatformDep
from comfy_multi.services.files import (
    FILE_TYPES,
    is_file,
    sanitize_name,
    short_name,
    split_annotated,
)
from comfy_multi.services.platform import Platform

router = APIRouter()

UPLOAD_KINDS = (media.IMAGE, media.VIDEO, media.AUDIO)
# served files come from participants: never let a browser run them as a page
SAFE_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox"}
# A finished output never changes under its name (a new one gets `name_1.ext`),
# so browsers may keep it; inputs can be overwritten, so they revalidate.
CACHE_CONTROL = {
    "output": "private, max-age=86400",
    "temp": "private, max-age=3600",
    "input": "private, no-cache",
}


def _locate(platform: Platform, user: str, filename: str, kind: str | None, subfolder: str) -> Path:
    name, annotated = split_annotated(filename)
    if not name or name.startswith("/") or ".." in name:
        raise BadRequest(f"bad file name {short_name(filename)!r}")
    kind = annotated or kind or "output"
    if kind not in FILE_TYPES:
        raise BadRequest(f"unknown file type {short_name(kind)!r}; use input, output or temp")
    # ComfyUI keeps only the name's last part; the folder comes from subfolder
    return platform.files.resolve(user, kind, subfolder, Path(name).name)


PREVIEW_MAX_PIXELS = 2048 * 2048  # a preview is a lightweight image: larger ones are reduced


def _preview(img: Image.Image, preview: str) -> tuple[bytes, str]:
    fmt, _, quality = preview.partition(";")
    fmt = fmt if fmt in ("webp", "jpeg") else "webp"
    if img.width * img.height > PREVIEW_MAX_PIXELS:
        img.draft("RGB", (img.width // 2, img.height // 2))  # a JPEG decodes smaller
    factor = 1
    while img.width * img.height > PREVIEW_MAX_PIXELS * factor * factor:
        factor += 1
    if factor > 1:
        # shrink before converting, by sampling: Image.reduce and the filtered
        # resizes hold one or two more full-size copies of the pixels meanwhile
        source = img
        img = img.resize((img.width // factor, img.height // factor), Image.Resampling.NEAREST)
        source.close()  # the caller's copy: its pixels go now
    rgb = img if img.mode == "RGB" else img.convert("RGB")
    if rgb is not img:
        img.close()
    out = io.BytesIO()
    rgb.save(out, format=fmt, quality=int(quality) if quality.isdigit() else 90)
    return out.getvalue(), f"image/{fmt}"


def _alpha_image(img: Image.Image) -> Image.Image:
    """ComfyUI's channel=a: black with the image's alpha (opaque if it has
    none, without decoding it). Grey-and-alpha is the same picture in a
    browser as ComfyUI's RGBA, built with one full-size copy fewer."""
    if "A" not in img.getbands() and "transparency" not in img.info:
        return Image.new("LA", img.size, (0, 255))
    alpha = img.getchannel("A") if "A" in img.getbands() else img.convert("RGBA").getchannel("A")
    img.close()  # the caller's copy: its pixels go before the answer's are made
    out = Image.new("LA", alpha.size, (0, 0))
    out.putalpha(alpha)
    return out


def _reencode(
    path: Path, preview: str | None, channel: str | None, max_pixels: int
) -> tuple[bytes, str]:
    """A preview or one channel of an image, holding as few full-size copies
    as it can (ImageTooLarge past the budget, before decoding)."""
    out = io.BytesIO()
    img = media.open_within(path, max_pixels)
    try:
        if preview:
            return _preview(img, preview)
        if channel == "rgb":
            rgb = img if img.mode == "RGB" else img.convert("RGB")
            if rgb is not img:
                img.close()
            rgb.save(out, format="PNG")
            return out.getvalue(), "image/png"
        _alpha_image(img).save(out, format="PNG")
        return out.getvalue(), "image/png"
    finally:
        img.close()  # frees the pixels now (leaving a `with` block would only close the file)


@router.get("/view")
async def view(request: Request, user: Participant, platform: PlatformDep) -> Response:
    q = request.query_params
    path = _locate(
        platform, user.name, q.get("filename", ""), q.get("type"), q.get("subfolder", "")
    )
    if not is_file(path):
        raise NotFound(f"no file {path.name!r} in your {q.get('type') or 'output'} folder")
    preview, channel = q.get("preview"), q.get("channel")
    if preview or channel in ("rgb", "a"):
        budget = platform.settings.max_image_pixels
        try:
            body, content_type = await offload.run(
                "image", _reencode, path, preview, channel, budget
            )
        except media.ImageTooLarge:
            if channel in ("rgb", "a"):
                raise
            body = None  # a preview is optional: past the budget the original is sent as it is
        except (OSError, ValueError, SyntaxError):
            raise BadRequest("that file is not an image that can be previewed") from None
        if body is not None:
            return Response(body, media_type=content_type, headers=SAFE_HEADERS)
    content_type = media.content_type(path.name)
    if media.is_svg_or_script(content_type):
        content_type = "application/octet-stream"
    headers = {
        **SAFE_HEADERS,
        "Content-Disposition": f'filename="{path.name}"',
        "Cache-Control": CACHE_CONTROL.get(q.get("type") or "output", "private, no-cache"),
    }
    # FileResponse answers Range (206, Content-Range, 416) and If-Range and
    # streams the file in chunks; a matching ETag needs no body at all.
    response = FileResponse(path, media_type=content_type, headers=headers, stat_result=path.stat())
    if _not_modified(request, response):
        return Response(status_code=304, headers=_revalidation_headers(response))
    return response


def _not_modified(request: Request, response: FileResponse) -> bool:
    wanted = request.headers.get("if-none-match")
    if not wanted:
        return False
    etag = response.headers["etag"]
    return any(tag.strip().removeprefix("W/") in (etag, "*") for tag in wanted.split(","))


def _revalidation_headers(response: FileResponse) -> dict[str, str]:
    keep = ("etag", "last-modified", "cache-control", "content-disposition")
    return {k: v for k, v in response.headers.items() if k in keep}


def _same_content(a: Path, b: Path) -> bool:
    if a.stat().st_size != b.stat().st_size:
        return False
    return hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()


def _store(staged: Path, target: Path, overwrite: bool) -> Path:
    """Move an upload into place: replace, reuse an identical file, or take
    ComfyUI's next free `name (n).ext`."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if not overwrite and target.exists():
        if _same_content(staged, target):
            staged.unlink()
            return target
        n = 1
        while True:
            candidate = target.with_name(f"{target.stem} ({n}){target.suffix}")
            if not candidate.exists():
                target = candidate
                break
            n += 1
    staged.replace(target)
    return target


async def _stage(upload: UploadFile, folder: Path, max_bytes: int) -> Path:
    """Copy the uploaded part to a hidden file in `folder`, refusing past the limit."""
    await anyio.Path(folder).mkdir(parents=True, exist_ok=True)
    staged = folder / f".upload-{secrets.token_hex(8)}.part"
    size = 0
    try:
        async with await anyio.open_file(staged, "wb") as out:
            while chunk := await upload.read(1024 * 1024):
                size += len(chunk)
                if size > max_bytes:
                    raise TooLarge(f"the file is larger than the {max_bytes:,} bytes allowed")
                await out.write(chunk)
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
    return staged


async def _upload(
    request: Request, user: str, platform: Platform, mask: bool = False
) -> dict[str, Any]:
    form = await request.form()
    try:
        upload = form.get("image")
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise BadRequest("no file: send it as the multipart field 'image' with a filename")
        kind = str(form.get("type") or "input")
        subfolder = str(form.get("subfolder") or "")
        overwrite = str(form.get("overwrite") or "").lower() in ("true", "1")
        name = sanitize_name(upload.filename)
        try:
            target = platform.files.resolve(user, kind, subfolder, name)
        except RequestError:
            raise BadRequest(
                f"cannot store {short_name(upload.filename)!r} in {short_name(subfolder)!r}"
            ) from None
        staged = await _stage(upload, target.parent, platform.settings.max_upload_bytes)
        try:
            found = await anyio.to_thread.run_sync(media.kind_of_file, staged)
            if found not in UPLOAD_KINDS or (mask and found != media.IMAGE):
                raise BadRequest(
                    f"{short_name(upload.filename)!r} is not an image, video or audio file "
                    "ComfyUI can load"
                )
            budget = platform.settings.max_image_pixels
            if found == media.IMAGE:
                await anyio.to_thread.run_sync(_check_image, staged, budget)
            if mask:
                original = _mask_original(platform, user, form.get("original_ref"))
                await offload.run("image", _apply_mask, original, staged, budget)
            stored = await anyio.to_thread.run_sync(_store, staged, target, overwrite)
        finally:
            staged.unlink(missing_ok=True)
    finally:
        await form.close()
    return {"name": stored.name, "subfolder": subfolder, "type": kind}


def _mask_original(platform: Platform, user: str, ref: Any) -> Path:
    try:
        data = jsonbody.loads(str(ref))
    except jsonbody.NotJson:
        raise BadRequest("original_ref must be JSON {filename, subfolder, type}") from None
    if not isinstance(data, dict) or not data.get("filename"):
        raise BadRequest("original_ref must name the original image's filename")
    path = _locate(
        platform,
        user,
        str(data["filename"]),
        str(data.get("type") or "output"),
        str(data.get("subfolder") or ""),
    )
    if not is_file(path):
        raise NotFound("the image the mask belongs to is not in your folders")
    return path


def _check_image(path: Path, max_pixels: int) -> None:
    """ImageTooLarge (413) for an image past the budget, from its header alone."""
    media.open_within(path, max_pixels).close()


def _apply_mask(original: Path, staged: Path, max_pixels: int) -> None:
    """ComfyUI's mask upload: the original image with the mask's alpha, as PNG."""
    with (
        media.open_within(original, max_pixels) as img,
        media.open_within(staged, max_pixels) as mask_img,
    ):
        base = img.convert("RGBA")
        alpha = mask_img.convert("RGBA").getchannel("A")
        if alpha.size != base.size:
            alpha = alpha.resize(base.size)
        base.putalpha(alpha)
        base.save(staged, format="PNG", compress_level=4)


@router.post("/upload/image")
async def upload_image(
    request: Request, user: Participant, platform: PlatformDep
) -> dict[str, Any]:
    return await _upload(request, user.name, platform)


@router.post("/upload/mask")
async def upload_mask(request: Request, user: Participant, platform: PlatformDep) -> dict[str, Any]:
    return await _upload(request, user.name, platform, mask=True)
