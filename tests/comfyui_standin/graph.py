"""Which node runs next: ComfyUI's ExecutionList (a topological dissolve of the prompt)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .node_base import Registry


def is_link(value: Any) -> bool:
    """`[node_id, slot]`, as comfy_execution.graph_utils.is_link."""
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], (int, float))
        and not isinstance(value[1], bool)
    )


class ExecutionList:
    """Nodes still to run; a cached source is not added and does not block its consumers."""

    def __init__(
        self, prompt: dict[str, Any], registry: Registry, is_cached: Callable[[str], bool]
    ) -> None:
        self.prompt = prompt
        self.registry = registry
        self.is_cached = is_cached
        self.pending: dict[str, bool] = {}
        self.block_count: dict[str, int] = {}
        self.blocking: dict[str, dict[str, set[Any]]] = {}

    def add_node(self, node_id: str) -> None:
        stack = [node_id]
        links: list[tuple[str, Any, str]] = []
        while stack:
            current = stack.pop()
            if current in self.pending:
                continue
            self.pending[current] = True
            self.block_count[current] = 0
            self.blocking[current] = {}
            for value in self.prompt[current]["inputs"].values():
                if is_link(value) and not self.is_cached(value[0]):
                    stack.append(value[0])
                    links.append((value[0], value[1], current))
        for source, slot, target in links:
            self._link(source, slot, target)

    def _link(self, source: str, slot: Any, target: str) -> None:
        if self.is_cached(source):
            return
        self.add_node(source)
        if target not in self.blocking[source]:
            self.blocking[source][target] = set()
            self.block_count[target] += 1
        self.blocking[source][target].add(slot)

    def is_empty(self) -> bool:
        return not self.pending

    def pending_ids(self) -> list[str]:
        return list(self.pending)

    def _is_output(self, node_id: str) -> bool:
        return self.registry.nodes[self.prompt[node_id]["class_type"]].output_node

    def stage(self) -> str | None:
        """The next node to run (outputs first, then what feeds them), or None on a cycle."""
        ready = [n for n in self.pending if self.block_count[n] == 0]
        if not ready:
            return None
        for node_id in ready:
            if self._is_output(node_id):
                return node_id
        for node_id in ready:
            if any(self._is_output(b) for b in self.blocking[node_id]):
                return node_id
        for node_id in ready:
            for blocked in self.blocking[node_id]:
                if any(self._is_output(b) for b in self.blocking[blocked]):
                    return node_id
        return ready[0]

    def complete(self, node_id: str) -> None:
        del self.pending[node_id]
        for blocked in self.blocking.pop(node_id):
            self.block_count[blocked] -= 1
