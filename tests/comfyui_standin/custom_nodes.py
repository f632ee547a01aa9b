"""Custom nodes loaded as ComfyUI loads them: each folder's NODE_CLASS_MAPPINGS
becomes nodes (definition from INPUT_TYPES, run by calling FUNCTION) and its
WEB_DIRECTORY is served under /extensions/<folder>/, its `.js` files listed at
/extensions (server.py `get_extensions`)."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .node_base import Node, NodeOutput, RunContext


def _definition(name: str, cls: type, module: str, display: str) -> dict[str, Any]:
    inputs = {k: {n: list(s) for n, s in v.items()} for k, v in cls.INPUT_TYPES().items()}  # type: ignore[attr-defined]
    output = list(getattr(cls, "RETURN_TYPES", ()))
    return {
        "input": inputs,
        "input_order": {k: list(v) for k, v in inputs.items()},
        "output": output,
        "output_is_list": [False] * len(output),
        "output_name": list(getattr(cls, "RETURN_NAMES", output)),
        "name": name,
        "display_name": display,
        "description": cls.__doc__ or "",
        "python_module": module,
        "category": getattr(cls, "CATEGORY", "custom"),
        "output_node": bool(getattr(cls, "OUTPUT_NODE", False)),
    }


def _adapter(name: str, cls: type, module: str, display: str) -> Node:
    class Custom(Node):
        cost = 0.0
        definition = _definition(name, cls, module, display)

        async def run(self, ctx: RunContext, **inputs: Any) -> NodeOutput:
            result = getattr(cls(), cls.FUNCTION)(**inputs)  # type: ignore[attr-defined]
            if isinstance(result, dict):
                return NodeOutput(tuple(result.get("result", ())), result.get("ui"))
            return NodeOutput(tuple(result))

    Custom.name = name
    return Custom()


@dataclass
class CustomNodes:
    nodes: list[Node] = field(default_factory=list)
    web_dirs: dict[str, Path] = field(default_factory=dict)  # folder name -> web directory

    def load(self, folder: Path) -> None:
        """Every package in `folder`, as ComfyUI's custom_nodes."""
        for package in sorted(p for p in folder.iterdir() if (p / "__init__.py").is_file()):
            module_name = f"custom_nodes.{package.name}"
            spec = importlib.util.spec_from_file_location(module_name, package / "__init__.py")
            assert spec is not None
            assert spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
            names = getattr(module, "NODE_DISPLAY_NAME_MAPPINGS", {})
            for name, cls in getattr(module, "NODE_CLASS_MAPPINGS", {}).items():
                self.nodes.append(_adapter(name, cls, module_name, names.get(name, name)))
            web = getattr(module, "WEB_DIRECTORY", None)
            if web:
                self.web_dirs[package.name] = (package / web).resolve()

    def extension_paths(self) -> list[str]:
        return [
            f"/extensions/{quote(name)}/{path.relative_to(web).as_posix()}"
            for name, web in self.web_dirs.items()
            for path in sorted(web.rglob("*.js"))
        ]

    def web_file(self, name: str, rest: str) -> Path | None:
        web = self.web_dirs.get(name)
        if web is None:
            return None
        path = (web / rest).resolve()
        return path if path.is_relative_to(web) and path.is_file() else None
