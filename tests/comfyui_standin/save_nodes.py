"""The stock ComfyUI output nodes: PNGs to output or temp, websocket images, animated WebP."""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from typing import Any, ClassVar

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from .node_base import ImageBatch, Node, NodeOutput, RunContext, stock_definition
from .paths import Dirs, save_path


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
    definition = stock_definition(name)
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
            await asyncio.to_thread(im.save, path, pnginfo=info, compress_level=self.compress_level)
            results.append({"filename": file, "subfolder": subfolder, "type": self.folder_type})
            counter += 1
        return NodeOutput(ui={"images": results})


class PreviewImage(SaveImage):
    name = "PreviewImage"
    definition = stock_definition(name)
    folder_type = "temp"
    compress_level = 1

    def prefix_append(self, ctx: RunContext) -> str:
        if "prefix" not in ctx.state:
            letters = "abcdefghijklmnopqrstupvxyz"
            ctx.state["prefix"] = "_temp_" + "".join(random.choice(letters) for _ in range(5))
        return str(ctx.state["prefix"])


class SaveImageWebsocket(Node):
    name = "SaveImageWebsocket"
    definition = stock_definition(name)

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
    definition = stock_definition(name)
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


SAVE_NODES: tuple[Node, ...] = (
    SaveImage(),
    PreviewImage(),
    SaveImageWebsocket(),
    SaveAnimatedWEBP(),
)
