"""ComfyUI's template gallery for a room: upstream's templates (the pinned
`comfyui-workflow-templates` package, which ComfyUI serves as static files
under /templates), with the workshop's own workflows first and the templates
no GPU worker can run left out or marked.

A template needs every node type in its graph (subgraph contents included)
and, to produce anything, the model files it names (`properties.models` on
its loader nodes). Templates with a node no worker offers are hidden; those
whose nodes exist but whose model files no worker lists stay, marked in their
description, since an instructor may yet add the weights.
"""

from __future__ import annotations

import importlib.resources
import io
import logging
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import orjson
from PIL import Image

logger = logging.getLogger(__name__)

WORKSHOP_PREFIX = "workshop--"  # a workshop workflow's template name: never clashes upstream's
_INDEX = re.compile(r"^index(\.[A-Za-z-]+)?\.json$")


@dataclass(frozen=True)
class Needs:
    nodes: frozenset[str]
    models: frozenset[str]


@cache
def templates_dir() -> Path | None:
    """The package's templates folder, or None when it is not installed."""
    try:
        root = importlib.resources.files("comfyui_workflow_templates") / "templates"
    except ModuleNotFoundError:
        return None
    path = Path(str(root))
    return path if path.is_dir() else None


def is_index(file: str) -> bool:
    return bool(_INDEX.match(file))


def _graph_nodes(graph: dict[str, Any]) -> list[dict[str, Any]]:
    nodes = [n for n in graph.get("nodes") or [] if isinstance(n, dict)]
    subgraphs = (graph.get("definitions") or {}).get("subgraphs") or []
    for sub in subgraphs:
        if isinstance(sub, dict):
            nodes.extend(n for n in sub.get("nodes") or [] if isinstance(n, dict))
    return nodes


def needs_of(workflow: dict[str, Any]) -> Needs:
    """Node types and model file names a UI-format workflow uses."""
    subgraph_ids = {
        str(s.get("id"))
        for s in (workflow.get("definitions") or {}).get("subgraphs") or []
        if isinstance(s, dict)
    }
    nodes: set[str] = set()
    models: set[str] = set()
    for node in _graph_nodes(workflow):
        kind = node.get("type")
        # notes and reroutes are frontend-only; a subgraph instance is its contents
        if isinstance(kind, str) and kind not in subgraph_ids and kind not in FRONTEND_ONLY:
            nodes.add(kind)
        props = node.get("properties") if isinstance(node.get("properties"), dict) else {}
        for model in (props or {}).get("models") or []:
            if isinstance(model, dict) and isinstance(model.get("name"), str):
                models.add(model["name"])
    return Needs(frozenset(nodes), frozenset(models))


FRONTEND_ONLY = frozenset({"Note", "MarkdownNote", "Reroute", "PrimitiveNode"})


@cache
def _template_needs(folder: Path, name: str) -> Needs | None:
    path = folder / f"{name}.json"
    try:
        workflow = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return needs_of(workflow) if isinstance(workflow, dict) else None


def offered_files(object_info: dict[str, Any]) -> set[str]:
    """Every string choice of every COMBO input: the model files workers list."""
    found: set[str] = set()
    for definition in object_info.values():
        inputs = definition.get("input") if isinstance(definition, dict) else None
        if not isinstance(inputs, dict):
            continue
        for group in inputs.values():
            if not isinstance(group, dict):
                continue
            for spec in group.values():
                if isinstance(spec, list) and spec and isinstance(spec[0], list):
                    found.update(o for o in spec[0] if isinstance(o, str))
                elif isinstance(spec, list) and len(spec) > 1 and isinstance(spec[1], dict):
                    options = spec[1].get("options")
                    if isinstance(options, list):
                        found.update(o for o in options if isinstance(o, str))
    # a model in a subfolder is listed as "sub/name.safetensors"
    return found | {f.rsplit("/", 1)[-1] for f in found}


def _filtered(
    category: dict[str, Any], folder: Path, nodes: set[str], files: set[str]
) -> dict[str, Any] | None:
    kept = []
    for template in category.get("templates") or []:
        if not isinstance(template, dict) or not isinstance(template.get("name"), str):
            continue
        needs = _template_needs(folder, template["name"])
        if needs is None or not needs.nodes <= nodes:
            continue  # a node no GPU here has: it could not even be queued
        lacking = sorted(needs.models - files)
        if lacking:
            note = "Needs model files no GPU here has: " + ", ".join(lacking) + "."
            description = str(template.get("description") or "")
            template = {**template, "description": f"{note} {description}".strip()}
        kept.append(template)
    return {**category, "templates": kept} if kept else None


def workshop_category(workflows: list[tuple[str, str]]) -> dict[str, Any]:
    """The instructor's workflows as the gallery's first category.
    `workflows`: (template name, title)."""
    return {
        "moduleName": "default",
        "title": "Workshop",
        "type": "image",
        "isEssential": True,
        "templates": [
            {
                "name": name,
                "title": title,
                "mediaType": "image",
                "mediaSubtype": "webp",
                "description": "A workflow prepared for this workshop.",
                "tags": ["Workshop"],
            }
            for name, title in workflows
        ],
    }


def room_index(
    file: str,
    object_info: dict[str, Any],
    workshop: list[tuple[str, str]],
) -> list[dict[str, Any]]:
    """`index.json` (or a translation) as this room can use it."""
    categories: list[dict[str, Any]] = [workshop_category(workshop)] if workshop else []
    folder = templates_dir()
    if folder is None or not (folder / file).is_file():
        return categories
    upstream = orjson.loads((folder / file).read_bytes())
    nodes, files = set(object_info), offered_files(object_info)
    for category in upstream if isinstance(upstream, list) else []:
        if isinstance(category, dict):
            kept = _filtered(category, folder, nodes, files)
            if kept is not None:
                categories.append(kept)
    return categories


@cache
def placeholder_thumbnail() -> bytes:
    """A plain card for workflows without a thumbnail."""
    out = io.BytesIO()
    Image.new("RGB", (256, 256), (36, 52, 86)).save(out, format="WEBP", quality=60)
    return out.getvalue()


def template_file(file: str) -> Path | None:
    """One of upstream's template files (workflow JSON, thumbnail), or None."""
    folder = templates_dir()
    if folder is None or "/" in file or "\\" in file or file.startswith("."):
        return None
    path = folder / file
    return path if path.is_file() else None
