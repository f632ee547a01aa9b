"""What a workshop workflow needs from a GPU: its node classes and model files.

Reads both of ComfyUI's formats: the UI's saved workflow (`nodes`, with
subgraphs under `definitions`) and the API format (`{id: {class_type, inputs}}`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

# nodes that live only in the browser and never reach a worker
FRONTEND_ONLY = frozenset(
    {"Note", "MarkdownNote", "Reroute", "PrimitiveNode", "Label", "GroupNode", "workflow"}
)
MODEL_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf", ".sft", ".onnx")


@dataclass
class Needs:
    nodes: set[str] = field(default_factory=set)
    models: set[str] = field(default_factory=set)


def _models_in(values: Any) -> set[str]:
    if isinstance(values, dict):
        items = list(values.values())
    elif isinstance(values, list):
        items = values
    else:
        return set()
    return {
        v.replace("\\", "/")
        for v in items
        if isinstance(v, str) and v.lower().endswith(MODEL_SUFFIXES)
    }


def _ui_needs(workflow: dict[str, Any]) -> Needs:
    needs = Needs()
    graphs = [workflow]
    subgraphs = (workflow.get("definitions") or {}).get("subgraphs") or []
    graphs += [g for g in subgraphs if isinstance(g, dict)]
    subgraph_ids = {str(g.get("id")) for g in subgraphs if isinstance(g, dict)}
    for graph in graphs:
        for node in graph.get("nodes") or []:
            if not isinstance(node, dict):
                continue
            kind = str(node.get("type") or "")
            if node.get("mode") in (2, 4):  # muted or bypassed: never runs
                continue
            if kind and kind not in FRONTEND_ONLY and kind not in subgraph_ids:
                needs.nodes.add(kind)
            needs.models |= _models_in(node.get("widgets_values") or [])
    return needs


def _api_needs(prompt: dict[str, Any]) -> Needs:
    needs = Needs()
    for node in prompt.values():
        if isinstance(node, dict) and node.get("class_type"):
            needs.nodes.add(str(node["class_type"]))
            needs.models |= _models_in(node.get("inputs") or {})
    return needs


def needs_of(path: Path) -> Needs:
    """Raises ValueError with a readable reason when the file is no workflow."""
    try:
        data = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError("not a ComfyUI workflow (the file is not a JSON object)")
    if isinstance(data.get("nodes"), list):
        return _ui_needs(data)
    if data and all(isinstance(v, dict) and "class_type" in v for v in data.values()):
        return _api_needs(data)
    raise ValueError("not a ComfyUI workflow (no nodes)")


def workflow_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*.json") if p.is_file())


def offered_models(models: dict[str, list[str]]) -> set[str]:
    return {m.replace("\\", "/") for files in models.values() for m in files}
