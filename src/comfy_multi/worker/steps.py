"""Where a running job is: the node ComfyUI is on, how many of the job's nodes
are done, and that node's own progress, as one `comfy_multi.step` message.

ComfyUI reports a node's progress only for nodes that loop (samplers,
upscalers); for every other node the participant and the instructor would see
nothing for seconds. The worker knows the prompt, so it can name the node
("Load Checkpoint, 2 of 7"). The gateway keeps the latest step of each job and
passes it only to pages that asked for the platform's own messages.
"""

from __future__ import annotations

from typing import Any

from comfy_multi.wire import STEP_MESSAGE

__all__ = ["STEP_MESSAGE", "StepCounter", "node_label"]


def node_label(node: Any, node_id: str) -> str:
    """The title a person gave the node on the canvas, else its type."""
    if isinstance(node, dict):
        meta = node.get("_meta")
        if isinstance(meta, dict) and isinstance(meta.get("title"), str) and meta["title"]:
            return str(meta["title"])[:80]
        if isinstance(node.get("class_type"), str):
            return str(node["class_type"])[:80]
    return f"node {node_id}"


class StepCounter:
    """Follows one prompt's ComfyUI messages; `note` answers the step message
    to relay after a message that moved the job, else None."""

    def __init__(self, prompt: dict[str, Any]) -> None:
        # every node of the prompt counts; in a workshop's workflows they all
        # feed an output (ComfyUI itself never says how many will run)
        self._prompt = prompt
        self._total = sum(1 for n in prompt.values() if isinstance(n, dict))
        self._done: set[str] = set()
        self._node: str | None = None
        self._value = 0
        self._max = 0

    def note(self, kind: str, data: dict[str, Any]) -> dict[str, Any] | None:
        if kind == "execution_cached":
            self._done.update(str(n) for n in data.get("nodes") or [])
            return None  # the first `executing` says where the run starts
        if kind == "executing" and data.get("node") is not None:
            if self._node is not None:
                self._done.add(self._node)
            self._node = str(data["node"])
            self._value = self._max = 0
            return self.step()
        if kind == "progress" and self._node is not None:
            self._value, self._max = _int(data.get("value")), _int(data.get("max"))
            return self.step()
        return None

    def step(self) -> dict[str, Any]:
        node = self._node or ""
        number = len(self._done - {node}) + 1
        return {
            "prompt_id": None,  # the relay puts the job id here
            "node": node,
            "label": node_label(self._prompt.get(node), node),
            "number": number,
            "of": max(self._total, number),
            "value": self._value,
            "max": self._max,
        }


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
