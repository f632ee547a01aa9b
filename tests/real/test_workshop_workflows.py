"""Every workflow shipped for a workshop is consistent with the node
definitions it targets, wherever those definitions are available: the real
ComfyUI here (0.3.64, with the LTX-Video 0.9 core nodes) answers /object_info.

Checked per node: the class exists, each widget value fits its input (type,
range, choice list), required inputs are linked, and every link joins an
output and an input of the same type. Not checkable here, and listed so a new
gap fails the test until someone looks at it:
- nodes that arrived after ComfyUI 0.3.64 (LTX-2's Gemma text encoder loader);
- model file names: this CPU build has no weights, so its loader lists are empty
  (the names are checked against the workshop manifest instead).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.comfy.procs import ROOT
from tests.real.comfyui import RealComfyUI

pytestmark = [pytest.mark.comfyui, pytest.mark.slow]

WORKSHOPS = ROOT / "workshops"
WORKFLOWS = sorted(WORKSHOPS.glob("*/*.json"))
# node types newer than the real ComfyUI here: their definitions are not available
NOT_IN_COMFYUI_0_3_64 = {"LTXAVTextEncoderLoader"}
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
FRONTEND_ONLY = {"Note", "MarkdownNote", "Reroute", "PrimitiveNode"}


@pytest.fixture(scope="module")
def object_info(comfyui: RealComfyUI) -> dict[str, Any]:
    info: dict[str, Any] = httpx.get(f"{comfyui.url}/object_info", timeout=60).json()
    return info


def _inputs(definition: dict[str, Any]) -> list[tuple[str, list[Any], bool]]:
    groups = definition.get("input") or {}
    return [
        (name, spec, group == "required")
        for group in ("required", "optional")
        for name, spec in (groups.get(group) or {}).items()
    ]


def _is_widget(spec: list[Any]) -> bool:
    return isinstance(spec[0], list) or spec[0] in WIDGET_TYPES


def _options(spec: list[Any]) -> list[Any]:
    if isinstance(spec[0], list):
        return spec[0]
    return list((spec[1] if len(spec) > 1 else {}).get("options") or [])


def _value_problem(name: str, spec: list[Any], value: Any, models: set[str]) -> str | None:
    opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    kind = "COMBO" if isinstance(spec[0], list) else spec[0]
    if kind == "COMBO":
        if opts.get("image_upload") or opts.get("video_upload") or opts.get("audio_upload"):
            return None if isinstance(value, str) else f"{name}: a file name, not {value!r}"
        choices = _options(spec)
        if not choices:  # a model folder, empty on this machine
            return None if value in models else f"{name}: {value!r} is not in the manifest"
        return None if value in choices else f"{name}: {value!r} not one of {choices[:8]}"
    if kind == "BOOLEAN":
        return None if isinstance(value, bool) else f"{name}: {value!r} is not a boolean"
    if kind == "STRING":
        return None if isinstance(value, str) else f"{name}: {value!r} is not text"
    number = int if kind == "INT" else (int, float)
    if not isinstance(value, number) or isinstance(value, bool):
        return f"{name}: {value!r} is not {kind}"
    if "min" in opts and value < opts["min"]:
        return f"{name}: {value} below {opts['min']}"
    if "max" in opts and value > opts["max"]:
        return f"{name}: {value} above {opts['max']}"
    return None


def manifest_models(workflow: Path) -> set[str]:
    manifest = workflow.parent.with_suffix(".toml")
    if not manifest.is_file():
        return set()
    data = tomllib.loads(manifest.read_text())
    return {Path(m["file"]).name for m in data.get("models", [])}


def check_node(node: dict[str, Any], definition: dict[str, Any], models: set[str]) -> list[str]:
    problems: list[str] = []
    where = f"node {node['id']} {node['type']}"
    values = list(node.get("widgets_values") or [])
    linked = {i["name"] for i in node.get("inputs") or [] if i.get("link") is not None}
    for name, spec, required in _inputs(definition):
        if not _is_widget(spec):
            if required and name not in linked:
                problems.append(f"{where}: required input {name} is not linked")
            continue
        if not values:
            return [*problems, f"{where}: no widget value for {name}"]
        problem = _value_problem(name, spec, values.pop(0), models)
        if problem:
            problems.append(f"{where}: {problem}")
        opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
        if opts.get("control_after_generate"):
            after = values.pop(0) if values else None
            if after not in ("fixed", "increment", "decrement", "randomize"):
                problems.append(f"{where}: {name} control {after!r}")
    if values:
        problems.append(f"{where}: {len(values)} widget values too many")
    return problems


def check_links(workflow: dict[str, Any], info: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    nodes = {n["id"]: n for n in workflow["nodes"]}
    for link_id, src, slot, dst, dst_slot, kind in workflow["links"]:
        source, target = nodes[src], nodes[dst]
        out_type = source["outputs"][slot]["type"]
        in_type = target["inputs"][dst_slot]["type"]
        src_def = info.get(source["type"])
        if src_def is not None and src_def["output"][slot] != out_type:
            problems.append(f"link {link_id}: {source['type']} output {slot} is not {out_type}")
        if not (out_type == in_type == kind or "*" in (out_type, in_type)):
            problems.append(f"link {link_id}: {out_type} into {in_type}")
    return problems


def check_api(prompt: dict[str, Any], info: dict[str, Any], models: set[str]) -> list[str]:
    """An API-format workflow: literal inputs by name, links to existing nodes."""
    problems: list[str] = []
    for node_id, node in prompt.items():
        definition = info.get(node["class_type"])
        if definition is None:
            problems.append(f"node {node_id} {node['class_type']}: no such node in ComfyUI")
            continue
        specs = {name: spec for name, spec, _ in _inputs(definition)}
        for name, value in node["inputs"].items():
            spec = specs.get(name)
            if spec is None:
                problems.append(f"node {node_id}: no input {name}")
            elif isinstance(value, list):
                if str(value[0]) not in prompt:
                    problems.append(f"node {node_id}: {name} links to missing node {value[0]}")
            elif (problem := _value_problem(name, spec, value, models)) is not None:
                problems.append(f"node {node_id}: {problem}")
    return problems


def check(workflow: dict[str, Any], info: dict[str, Any], models: set[str]) -> list[str]:
    if "nodes" not in workflow:
        return check_api(workflow, info, models)
    problems: list[str] = []
    for node in workflow["nodes"]:
        definition = info.get(node["type"])
        if definition is not None:
            problems.extend(check_node(node, definition, models))
        elif node["type"] not in NOT_IN_COMFYUI_0_3_64 | FRONTEND_ONLY:
            problems.append(f"node {node['id']} {node['type']}: no such node in ComfyUI")
    return problems + check_links(workflow, info)


def test_there_are_video_workflows_for_ltx2() -> None:
    names = {p.name for p in WORKFLOWS if p.parent.name == "ltx2-video"}
    assert names >= {"text-to-video.json", "image-to-video.json"}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_workflow_matches_the_node_definitions(path: Path, object_info: dict[str, Any]) -> None:
    workflow = orjson.loads(path.read_bytes())
    assert check(workflow, object_info, manifest_models(path)) == []


def test_the_check_catches_what_it_should(object_info: dict[str, Any]) -> None:
    path = WORKSHOPS / "ltx2-video" / "text-to-video.json"
    workflow = orjson.loads(path.read_bytes())
    scheduler = next(n for n in workflow["nodes"] if n["type"] == "LTXVScheduler")
    scheduler["widgets_values"][0] = 0  # steps below 1
    video = next(n for n in workflow["nodes"] if n["type"] == "SaveVideo")
    video["widgets_values"][1] = "gif"  # not a format SaveVideo offers
    workflow["nodes"].append({"id": 99, "type": "NoSuchNode", "inputs": [], "outputs": []})
    problems = check(workflow, object_info, manifest_models(path))
    assert any("steps: 0 below 1" in p for p in problems), problems
    assert any("'gif' not one of" in p for p in problems), problems
    assert any("NoSuchNode: no such node" in p for p in problems), problems
    # model names are checked against the manifest
    assert any("is not in the manifest" in p for p in check(workflow, object_info, set()))
    assert not any("is not in the manifest" in p for p in problems), problems
