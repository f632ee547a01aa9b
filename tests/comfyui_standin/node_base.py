"""The node model: ComfyUI's IMAGE and MASK on Pillow, a node class, and the registry."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, ClassVar, Protocol

from PIL import Image

from .paths import Dirs


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


def stock_definition(name: str) -> dict[str, Any]:
    return _STOCK_DEFS[name]


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
