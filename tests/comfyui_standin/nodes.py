"""The node model and the stock ComfyUI nodes that need no model weights, on Pillow."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import mimetypes
import os
import random
import time
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, ClassVar, Protocol

from PIL import Image, ImageFilter, ImageOps, ImageSequence
from PIL.PngImagePlugin import PngInfo

from .paths import Dirs, save_path


@dataclass
class ImageBatch:
    """ComfyUI's IMAGE: a batch of RGB pictures of one size."""

    images: list[Image.Image]

    def __str__(self) -> str:
        w, h = self.images[0].size
        return f"tensor of shape [{len(self.images)}, {h}, {w}, 3]"


@dataclass
class MaskBatch:
    """ComfyUI's MASK: a batch of one-channel float pictures (mode "F", 0..1)."""

    masks: list[Image.Image]

    def __str__(self) -> str:
        w, h = self.masks[0].size
        return f"tensor of shape [{len(self.masks)}, {h}, {w}]"


@dataclass
class NodeOutput:
    values: tuple[Any, ...] = ()
    ui: dict[str, Any] | None = None


class RunContext(Protocol):
    """What a running node may use (implemented by the executor)."""

    dirs: Dirs
    state: dict[str, Any]

    async def progress(
        self, value: float, total: float, preview: tuple[str, Image.Image] | None = None
    ) -> None: ...

    def check_interrupted(self) -> None: ...


class Node:
    """One node class: its object_info definition, validation hooks and run function."""

    name: ClassVar[str]
    definition: ClassVar[dict[str, Any]]
    #: artificial work, in units of the server's --speed
    cost: ClassVar[float] = 1.0
    #: inputs handed to `validate`; ComfyUI skips its own range/list checks for these
    validate_args: ClassVar[tuple[str, ...]] = ()

    def object_info(self, dirs: Dirs) -> dict[str, Any]:
        return copy.deepcopy(self.definition)

    @property
    def output_node(self) -> bool:
        return bool(self.definition.get("output_node"))

    @property
    def return_types(self) -> tuple[Any, ...]:
        return tuple(self.definition["output"])

    def validate(self, dirs: Dirs, **values: Any) -> bool | str:
        return True

    def fingerprint(self, dirs: Dirs, inputs: dict[str, Any]) -> Any:
        """ComfyUI's IS_CHANGED: a value that changes when the output would."""
        return False

    async def run(self, ctx: RunContext, **inputs: Any) -> NodeOutput:
        raise NotImplementedError


#: object_info of the stock nodes, as ComfyUI 0.3.64 answers it
_STOCK_DEFS: dict[str, dict[str, Any]] = json.loads(
    resources.files(__package__).joinpath("node_defs.json").read_text("utf-8")
)


def _stock(name: str) -> dict[str, Any]:
    return _STOCK_DEFS[name]


def _rgb_batch(images: list[Image.Image]) -> ImageBatch:
    return ImageBatch([im.convert("RGB") for im in images])


class EmptyImage(Node):
    name = "EmptyImage"
    definition = _stock(name)

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
    definition = _stock(name)
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
    return bool(kind) and kind.split("/")[0] == "image"


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
    definition = _stock(name)

    def object_info(self, dirs: Dirs) -> dict[str, Any]:
        info = Node.object_info(self, dirs)
        info["input"]["required"]["image"][0] = dirs.list_input_files()
        return info

    async def run(self, ctx: RunContext, **inputs: Any) -> NodeOutput:
        path = ctx.dirs.annotated_path(inputs["image"]) or ""
        return NodeOutput((await asyncio.to_thread(_load_mask, path, inputs["channel"]),))


class ImageInvert(Node):
    name = "ImageInvert"
    definition = _stock(name)

    async def run(self, ctx: RunContext, **inputs: Any) -> NodeOutput:
        batch: ImageBatch = inputs["image"]
        return NodeOutput((ImageBatch([ImageOps.invert(im) for im in batch.images]),))


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
    definition = _stock(name)

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
    definition = _stock(name)

    async def run(self, ctx: RunContext, **inputs: Any) -> NodeOutput:
        batch: ImageBatch = inputs["image"]
        blur = ImageFilter.GaussianBlur(radius=inputs["sigma"])
        blurred = await asyncio.to_thread(lambda: [im.filter(blur) for im in batch.images])
        return NodeOutput((ImageBatch(blurred),))


class SolidMask(Node):
    name = "SolidMask"
    definition = _stock(name)

    async def run(self, ctx: RunContext, **inputs: Any) -> NodeOutput:
        mask = Image.new("F", (inputs["width"], inputs["height"]), float(inputs["value"]))
        return NodeOutput((MaskBatch([mask]),))


def _png_info(prompt: Any, extra_pnginfo: Any) -> PngInfo:
    info = PngInfo()
    if prompt is not None:
        info.add_text("prompt", json.dumps(prompt))
    if isinstance(extra_pnginfo, dict):
        for key, value in extra_pnginfo.items():
            info.add_text(key, json.dumps(value))
    return info


class SaveImage(Node):
    name = "SaveImage"
    definition = _stock(name)
    folder_type = "output"
    compress_level = 4

    def prefix_append(self, ctx: RunContext) -> str:
        return ""

    async def run(self, ctx: RunContext, **inputs: Any) -> NodeOutput:
        batch: ImageBatch = inputs["images"]
        prefix = inputs.get("filename_prefix", "ComfyUI") + self.prefix_append(ctx)
        base = ctx.dirs.by_type(self.folder_type) or ""
        w, h = batch.images[0].size
        folder, filename, counter, subfolder = save_path(prefix, base, w, h)
        info = _png_info(inputs.get("prompt"), inputs.get("extra_pnginfo"))
        results = []
        for number, im in enumerate(batch.images):
            file = f"{filename.replace('%batch_num%', str(number))}_{counter:05}_.png"
            path = os.path.join(folder, file)
            await asyncio.to_thread(
                im.save, path, pnginfo=info, compress_level=self.compress_level
            )
            results.append({"filename": file, "subfolder": subfolder, "type": self.folder_type})
            counter += 1
        return NodeOutput(ui={"images": results})


class PreviewImage(SaveImage):
    name = "PreviewImage"
    definition = _stock(name)
    folder_type = "temp"
    compress_level = 1

    def prefix_append(self, ctx: RunContext) -> str:
        if "prefix" not in ctx.state:
            letters = "abcdefghijklmnopqrstupvxyz"
            ctx.state["prefix"] = "_temp_" + "".join(random.choice(letters) for _ in range(5))
        return str(ctx.state["prefix"])


class SaveImageWebsocket(Node):
    name = "SaveImageWebsocket"
    definition = _stock(name)

    def fingerprint(self, dirs: Dirs, inputs: dict[str, Any]) -> Any:
        return time.time()

    async def run(self, ctx: RunContext, **inputs: Any) -> NodeOutput:
        batch: ImageBatch = inputs["images"]
        total = len(batch.images)
        for step, im in enumerate(batch.images):
            await ctx.progress(step, total, ("PNG", im))
        return NodeOutput()


class SaveAnimatedWEBP(Node):
    name = "SaveAnimatedWEBP"
    definition = _stock(name)
    methods: ClassVar[dict[str, int]] = {"default": 4, "fastest": 0, "slowest": 6}

    async def run(self, ctx: RunContext, **inputs: Any) -> NodeOutput:
        frames: list[Image.Image] = inputs["images"].images
        w, h = frames[0].size
        folder, filename, counter, subfolder = save_path(
            inputs["filename_prefix"], ctx.dirs.output, w, h
        )
        exif = frames[0].getexif()
        if inputs.get("prompt") is not None:
            exif[0x0110] = "prompt:{}".format(json.dumps(inputs["prompt"]))
        tag = 0x010F
        for key, value in (inputs.get("extra_pnginfo") or {}).items():
            exif[tag] = f"{key}:{json.dumps(value)}"
            tag -= 1
        file = f"{filename}_{counter:05}_.webp"
        await asyncio.to_thread(
            frames[0].save,
            os.path.join(folder, file),
            save_all=True,
            duration=int(1000.0 / inputs["fps"]),
            append_images=frames[1:],
            exif=exif,
            lossless=inputs["lossless"],
            quality=inputs["quality"],
            method=self.methods[inputs["method"]],
        )
        result = {"filename": file, "subfolder": subfolder, "type": "output"}
        return NodeOutput(ui={"images": [result], "animated": [len(frames) != 1]})


@dataclass
class Registry:
    """Node classes by name, as NODE_CLASS_MAPPINGS."""

    nodes: dict[str, Node] = field(default_factory=dict)

    def add(self, *nodes: Node) -> None:
        for node in nodes:
            self.nodes[node.name] = node

    def get(self, name: Any) -> Node | None:
        return self.nodes.get(name) if isinstance(name, str) else None

    def __contains__(self, name: object) -> bool:
        return name in self.nodes


STOCK_NODES: tuple[Node, ...] = (
    EmptyImage(),
    LoadImage(),
    LoadImageMask(),
    ImageInvert(),
    ImageScale(),
    ImageBlur(),
    SolidMask(),
    SaveImage(),
    PreviewImage(),
    SaveImageWebsocket(),
    SaveAnimatedWEBP(),
)
