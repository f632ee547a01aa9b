"""What a ComfyUI server can run, read from its ``/object_info``."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

MODEL_SUFFIXES = (
    ".safetensors", ".sft", ".ckpt", ".pt", ".pt2", ".pth", ".bin", ".gguf", ".onnx", ".pkl",
)  # fmt: skip

# Loader inputs whose name alone says the model folder.
_FOLDER_BY_INPUT = {
    "ckpt_name": "checkpoints",
    "config_name": "configs",
    "lora_name": "loras",
    "vae_name": "vae",
    "unet_name": "diffusion_models",
    "control_net_name": "controlnet",
    "style_model_name": "style_models",
    "gligen_name": "gligen",
    "hypernetwork_name": "hypernetworks",
    "photomaker_model_name": "photomaker",
    "model_name": "upscale_models",
    "clip_name": "text_encoders",
}
# Where the same input name means another folder.
_FOLDER_BY_NODE_INPUT = {
    ("CLIPVisionLoader", "clip_name"): "clip_vision",
    ("unCLIPCheckpointLoader", "ckpt_name"): "checkpoints",
}


@dataclass(frozen=True)
class Capabilities:
    digest: str  # sha256 hex of the object_info bytes
    nodes: list[str]
    models: dict[str, list[str]] = field(default_factory=dict)
    raw: bytes = b""

    @classmethod
    def from_object_info(cls, raw: bytes) -> Capabilities:
        info = json.loads(raw)
        if not isinstance(info, dict):
            raise ValueError("/object_info is not a JSON object")
        return cls(
            digest=hashlib.sha256(raw).hexdigest(),
            nodes=sorted(info),
            models=models_from_object_info(info),
            raw=raw,
        )


def _combo_options(spec: Any) -> list[str] | None:
    """The string choices of a COMBO input, in either the old or the new spelling."""
    if not isinstance(spec, list | tuple) or not spec:
        return None
    head = spec[0]
    if isinstance(head, list):
        options: Any = head
    elif head == "COMBO" and len(spec) > 1 and isinstance(spec[1], dict):
        options = spec[1].get("options")
    else:
        return None
    if not isinstance(options, list):
        return None
    return [o for o in options if isinstance(o, str)]


def _folder(node: str, input_name: str) -> str:
    if (node, input_name) in _FOLDER_BY_NODE_INPUT:
        return _FOLDER_BY_NODE_INPUT[(node, input_name)]
    base = input_name.rstrip("0123456789")
    if base in _FOLDER_BY_INPUT:
        return _FOLDER_BY_INPUT[base]
    return base.removesuffix("_name") or input_name


def models_from_object_info(info: dict[str, Any]) -> dict[str, list[str]]:
    """Model files offered by loader nodes, by model folder.

    A loader is a node whose class name contains "Loader"; its model inputs are
    COMBO lists whose choices look like model files.
    """
    found: dict[str, set[str]] = {}
    for node, definition in info.items():
        if "Loader" not in node or not isinstance(definition, dict):
            continue
        groups = definition.get("input")
        if not isinstance(groups, dict):
            continue
        for group in ("required", "optional"):
            inputs = groups.get(group)
            if not isinstance(inputs, dict):
                continue
            for input_name, spec in inputs.items():
                options = _combo_options(spec)
                if not options:
                    continue
                files = [o for o in options if o.lower().endswith(MODEL_SUFFIXES)]
                if files:
                    found.setdefault(_folder(node, input_name), set()).update(files)
    return {folder: sorted(files) for folder, files in sorted(found.items())}
