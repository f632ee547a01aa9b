"""The stock ComfyUI nodes that load, make and change images and masks."""

from __future__ import annotations

import asyncio
import hashlib
import mimetypes
import struct
from typing import Any

from PIL import Image, ImageFilter, ImageOps, ImageSequence

from .node_base import ImageBatch, MaskBatch, Node, NodeOutput, RunContext, stock_definition
from .paths import Dirs


class EmptyImage(Node):
    name = "EmptyImage"
    definition = stock_definition(name)

    async def run(self, ctx: RunContext, **inputs: Any) -> NodeOutput:
        width, height = inputs["width"], inputs["height"]
        color = inputs.get("color", 0)
        rgb = ((color >> 16) & 0xFF, (color >> 8) & 0xFF, color & 0xFF)
        one = Image.new("RGB", (width, height), rgb)
        return NodeOutput((ImageBatch([one.copy() for _ in range(inputs.get("batch_size", 1))]),))


def _file_digest(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _alpha_mask(frame: Image.Image) -> Image.Image:
    return frame.getchannel("A").convert("F").point(lambda v: v * (-1 / 255) + 1)


def _load_frames(path: str) -> tuple[ImageBatch, MaskBatch]:
    images: list[Image.Image] = []
    masks: list[Image.Image] = []
    with Image.open(path) as img:
        for raw in ImageSequence.Iterator(img):
            frame = ImageOps.exif_transpose(raw) or raw
            if frame.mode == "I":
                frame = frame.point(lambda v: v * (1 / 255))
            if images and frame.size != images[0].size:
                continue
            if "A" in frame.getbands():
                mask = _alpha_mask(frame)
            elif frame.mode == "P" and "transparency" in frame.info:
                mask = _alpha_mask(frame.convert("RGBA"))
            else:
                mask = Image.new("F", (64, 64), 0.0)
            images.append(frame.convert("RGB"))
            masks.append(mask)
        if img.format == "MPO":
            images, masks = images[:1], masks[:1]
    return ImageBatch(images), MaskBatch(masks)


class LoadImage(Node):
    name = "LoadImage"
    definition = stock_definition(name)
    validate_args = ("image",)

    def object_info(self, dirs: Dirs) -> dict[str, Any]:
        info = super().object_info(dirs)
        files = [f for f in dirs.list_input_files() if _is_image_name(f)]
        info["input"]["required"]["image"][0] = files
        return info

    def validate(self, dirs: Dirs, **values: Any) -> bool | str:
        if not dirs.exists_annotated(values["image"]):
            return "Invalid image file: {}".format(values["image"])
        return True

    def fingerprint(self, dirs: Dirs, inputs: dict[str, Any]) -> Any:
        path = dirs.annotated_path(inputs["image"])
        return _file_digest(path) if path else float("nan")

    async def run(self, ctx: RunContext, **inputs: Any) -> NodeOutput:
        path = ctx.dirs.annotated_path(inputs["image"]) or ""
        images, masks = await asyncio.to_thread(_load_frames, path)
        return NodeOutput((images, masks))


def _is_image_name(name: str) -> bool:
    kind, _ = mimetypes.guess_type(name, strict=False)
    return kind is not None and kind.split("/")[0] == "image"


def _load_mask(path: str, channel: str) -> MaskBatch:
    with Image.open(path) as raw:
        img = ImageOps.exif_transpose(raw) or raw
        if img.getbands() != ("R", "G", "B", "A"):
            if img.mode == "I":
                img = img.point(lambda v: v * (1 / 255))
            img = img.convert("RGBA")
        band = channel[0].upper()
        plane = img.getchannel(band).convert("F")
        scale = (-1 / 255, 1) if band == "A" else (1 / 255, 0)
        return MaskBatch([plane.point(lambda v: v * scale[0] + scale[1])])


class LoadImageMask(LoadImage):
    name = "LoadImageMask"
    definition = stock_definition(name)

    def object_info(self, dirs: Dirs) -> dict[str, Any]:
        info = Node.object_info(self, dirs)
        info["input"]["required"]["image"][0] = dirs.list_input_files()
        return info

    async def run(self, ctx: RunContext, **inputs: Any) -> NodeOutput:
        path = ctx.dirs.annotated_path(inputs["image"]) or ""
        return NodeOutput((await asyncio.to_thread(_load_mask, path, inputs["channel"]),))


def _f32(value: float) -> float:
    return float(struct.unpack("f", struct.pack("f", value))[0])


#: ComfyUI inverts float32 pixels (1.0 - v/255) and its savers truncate 255 * v, so
#: about half the values come out one below 255 - v
_INVERT_LUT = [int(_f32(255.0 * _f32(1.0 - _f32(v / 255.0)))) for v in range(256)]


class ImageInvert(Node):
    name = "ImageInvert"
    definition = stock_definition(name)

    async def run(self, ctx: RunContext, **inputs: Any) -> NodeOutput:
        batch: ImageBatch = inputs["image"]
        return NodeOutput((ImageBatch([im.point(_INVERT_LUT * 3) for im in batch.images]),))


_RESAMPLE = {
    "nearest-exact": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "area": Image.Resampling.BOX,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}


def _scale(im: Image.Image, width: int, height: int, method: str, crop: str) -> Image.Image:
    if crop == "center":
        return ImageOps.fit(im, (width, height), _RESAMPLE[method])
    return im.resize((width, height), _RESAMPLE[method])


class ImageScale(Node):
    name = "ImageScale"
    definition = stock_definition(name)

    async def run(self, ctx: RunContext, **inputs: Any) -> NodeOutput:
        batch: ImageBatch = inputs["image"]
        width, height = inputs["width"], inputs["height"]
        if width == 0 and height == 0:
            return NodeOutput((batch,))
        w0, h0 = batch.images[0].size
        if width == 0:
            width = max(1, round(w0 * height / h0))
        elif height == 0:
            height = max(1, round(h0 * width / w0))
        method, crop = inputs["upscale_method"], inputs["crop"]
        scaled = [_scale(im, width, height, method, crop) for im in batch.images]
        return NodeOutput((ImageBatch(scaled),))


class ImageBlur(Node):
    name = "ImageBlur"
    definition = stock_definition(name)

    async def run(self, ctx: RunContext, **inputs: Any) -> NodeOutput:
        batch: ImageBatch = inputs["image"]
        blur = ImageFilter.GaussianBlur(radius=inputs["sigma"])
        blurred = await asyncio.to_thread(lambda: [im.filter(blur) for im in batch.images])
        return NodeOutput((ImageBatch(blurred),))


class SolidMask(Node):
    name = "SolidMask"
    definition = stock_definition(name)

    async def run(self, ctx: RunContext, **inputs: Any) -> NodeOutput:
        mask = Image.new("F", (inputs["width"], inputs["height"]), float(inputs["value"]))
        return NodeOutput((MaskBatch([mask]),))


IMAGE_NODES: tuple[Node, ...] = (
    EmptyImage(),
    LoadImage(),
    LoadImageMask(),
    ImageInvert(),
    ImageScale(),
    ImageBlur(),
    SolidMask(),
)
