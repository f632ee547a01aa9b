"""Test-only nodes: a slow sampler-like node, a large "video" writer and a failing node."""

from __future__ import annotations

import asyncio
import os
import struct
from typing import Any

from .node_base import ImageBatch, Node, NodeOutput, RunContext
from .paths import save_path

_MODULE = "custom_nodes.comfyui_standin"
_CHUNK = 1 << 20


def _definition(
    name: str,
    required: dict[str, Any],
    output: list[str],
    *,
    optional: dict[str, Any] | None = None,
    output_node: bool = False,
    description: str = "",
) -> dict[str, Any]:
    inputs: dict[str, Any] = {"required": required}
    order = {"required": list(required)}
    if optional:
        inputs["optional"] = optional
        order["optional"] = list(optional)
    return {
        "input": inputs,
        "input_order": order,
        "output": output,
        "output_is_list": [False] * len(output),
        "output_name": output,
        "name": name,
        "display_name": name,
        "description": description,
        "python_module": _MODULE,
        "category": "testing/standin",
        "output_node": output_node,
    }


class StandinSlow(Node):
    """Waits `seconds` in `steps` steps, with a progress event and a JPEG preview per step.

    An interrupt is honoured between steps, like a sampler's progress callback.
    """

    name = "StandinSlow"
    cost = 0.0
    definition = _definition(
        name,
        {
            "image": ["IMAGE"],
            "seconds": ["FLOAT", {"default": 1.0, "min": 0.0, "max": 3600.0, "step": 0.01}],
            "steps": ["INT", {"default": 10, "min": 1, "max": 10000}],
        },
        ["IMAGE"],
        description="Passes the image through after a delay, reporting progress per step.",
    )

    async def run(self, ctx: RunContext, **inputs: Any) -> NodeOutput:
        batch: ImageBatch = inputs["image"]
        steps: int = inputs["steps"]
        preview = batch.images[0].copy()
        preview.thumbnail((512, 512))
        for step in range(steps):
            await asyncio.sleep(inputs["seconds"] / steps)
            await ctx.progress(step + 1, steps, ("JPEG", preview))
        return NodeOutput((batch,))


def _write_pattern(path: str, size: int) -> None:
    pattern = bytes(range(256)) * (_CHUNK // 256)
    with open(path, "wb") as f:
        written = 0
        index = 0
        while written < size:
            chunk = (struct.pack(">Q", index) + pattern[8:])[: size - written]
            f.write(chunk)
            written += len(chunk)
            index += 1


class StandinLargeOutput(Node):
    """Writes a `size_mb` MiB file to the output folder and reports it like SaveVideo.

    Each 1 MiB block starts with its index (8 bytes, big-endian) followed by
    bytes 8..255, 0..255, ... so a copy can be checked block by block.
    """

    name = "StandinLargeOutput"
    cost = 0.0
    definition = _definition(
        name,
        {
            "size_mb": ["INT", {"default": 1, "min": 0, "max": 4096}],
            "filename_prefix": ["STRING", {"default": "video/ComfyUI"}],
        },
        [],
        output_node=True,
        description="Writes a large file to the output folder, reported as an animated output.",
    )

    async def run(self, ctx: RunContext, **inputs: Any) -> NodeOutput:
        folder, filename, counter, subfolder = save_path(inputs["filename_prefix"], ctx.dirs.output)
        file = f"{filename}_{counter:05}_.mp4"
        await asyncio.to_thread(
            _write_pattern, os.path.join(folder, file), inputs["size_mb"] * _CHUNK
        )
        result = {"filename": file, "subfolder": subfolder, "type": "output"}
        return NodeOutput(ui={"images": [result], "animated": [True]})


class StandinFail(Node):
    """Raises RuntimeError(message) when it runs, so the prompt ends in execution_error."""

    name = "StandinFail"
    cost = 0.0
    definition = _definition(
        name,
        {"message": ["STRING", {"default": "StandinFail was asked to fail"}]},
        ["IMAGE"],
        optional={"image": ["IMAGE"]},
        output_node=True,
        description="Fails at run time with the given message.",
    )

    async def run(self, ctx: RunContext, **inputs: Any) -> NodeOutput:
        raise RuntimeError(inputs["message"])


STANDIN_NODES: tuple[Node, ...] = (StandinSlow(), StandinLargeOutput(), StandinFail())
