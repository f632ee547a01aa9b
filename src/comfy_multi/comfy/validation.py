"""Check a prompt against the workers' node definitions before it is queued,
answering in ComfyUI's own `{error, node_errors}` shape."""

from __future__ import annotations

from typing import Any

from comfy_multi.errors import PromptInvalid


def _error(kind: str, message: str, details: str = "") -> dict[str, Any]:
    return {"type": kind, "message": message, "details": details, "extra_info": {}}


def validate_prompt(prompt: Any, object_info: dict[str, Any]) -> list[str]:
    """Raise PromptInvalid, or return the ids of the prompt's output nodes."""
    if not isinstance(prompt, dict) or not prompt:
        raise PromptInvalid(_error("no_prompt", "No prompt provided"), {})
    outputs: list[str] = []
    for node_id, node in prompt.items():
        if not isinstance(node, dict) or "class_type" not in node:
            raise PromptInvalid(
                _error(
                    "invalid_prompt",
                    "Cannot execute because a node is missing the class_type property.",
                    f"Node ID '#{node_id}'",
                ),
                {},
            )
        class_type = node["class_type"]
        definition = object_info.get(class_type)
        if definition is None:
            raise PromptInvalid(
                _error(
                    "invalid_prompt",
                    f"Cannot execute because node {class_type} does not exist.",
                    f"Node ID '#{node_id}'",
                ),
                {},
            )
        if definition.get("output_node"):
            outputs.append(str(node_id))
    if not outputs:
        raise PromptInvalid(_error("prompt_no_outputs", "Prompt has no outputs"), {})
    return outputs
