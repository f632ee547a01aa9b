"""A small custom node with a web extension, loaded into the real ComfyUI and
the stand-in by the tests: the node echoes a text as a `text` ui output, and
web/badge.js registers a frontend extension that leaves visible marks (a
badge on the page, a colour on the node) so a test can see it ran."""

from __future__ import annotations

from typing import Any


class CMBadge:
    """Shows its text on the node and passes it on."""

    CATEGORY = "testing/comfy_multi"
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"text": ("STRING", {"default": "hello from a custom node"})}}

    def run(self, text: str) -> dict[str, Any]:
        return {"ui": {"text": [text]}, "result": (text,)}


NODE_CLASS_MAPPINGS = {"CMBadge": CMBadge}
NODE_DISPLAY_NAME_MAPPINGS = {"CMBadge": "Badge (comfy-multi test)"}
WEB_DIRECTORY = "./web"
