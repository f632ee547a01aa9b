"""Check a prompt against the workers' node definitions before it is queued,
answering in ComfyUI's own `{error, node_errors}` shape (execution.py
`validate_prompt` / `validate_inputs`), so the frontend highlights the bad node
and nobody waits in the queue to learn of a typo.

Where the definitions cannot tell (custom types, V3 dynamic inputs) the check
lets the prompt through: the worker's ComfyUI validates again and its verdict
comes back to the participant verbatim.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import Any

from comfy_multi.errors import PromptInvalid
from comfy_multi.services.node_checks import Error, InputExists, Validator, error, type_name


@dataclass
class Validated:
    outputs: list[str]  # the output nodes that will run
    node_errors: dict[str, Any]  # of outputs that failed while others passed


def _structure(prompt: Any, object_info: dict[str, Any]) -> None:
    if prompt is None:
        raise PromptInvalid(error("no_prompt", "No prompt provided"), {})
    if not isinstance(prompt, dict):
        raise PromptInvalid(error("invalid_prompt", "Prompt must be an object of nodes."), {})
    for node_id, node in prompt.items():
        if not isinstance(node, dict) or "class_type" not in node:
            raise PromptInvalid(
                error(
                    "invalid_prompt",
                    "Cannot execute because a node is missing the class_type property.",
                    f"Node ID '#{node_id}'",
                ),
                {},
            )
        class_type = node["class_type"]
        if not isinstance(class_type, str) or class_type not in object_info:
            raise PromptInvalid(
                error(
                    "invalid_prompt",
                    f"Cannot execute because node {class_type} does not exist.",
                    f"Node ID '#{node_id}'",
                ),
                {},
            )
        if not isinstance(node.setdefault("inputs", {}), dict):
            raise PromptInvalid(
                error("invalid_prompt", "Node inputs must be an object.", f"Node ID '#{node_id}'"),
                {},
            )


def validate_prompt(
    prompt: Any,
    object_info: dict[str, Any],
    *,
    partial: list[str] | None = None,
    input_exists: InputExists | None = None,
) -> Validated:
    """Raise PromptInvalid, or return the output nodes that will run. Converts
    constant inputs in place (`"5"` for an INT becomes 5), as ComfyUI does."""
    _structure(prompt, object_info)
    wanted = {str(p) for p in partial} if partial is not None else None
    outputs = [
        str(node_id)
        for node_id, node in prompt.items()
        if object_info[node["class_type"]].get("output_node")
        and (wanted is None or str(node_id) in wanted)
    ]
    if not outputs:
        raise PromptInvalid(error("prompt_no_outputs", "Prompt has no outputs"), {})
    validator = Validator(object_info, prompt, input_exists)
    good: list[str] = []
    failed: list[list[Error]] = []
    node_errors: dict[str, Any] = {}
    for output in outputs:
        try:
            ok, reasons, _ = validator.node(output)
        except Exception as exc:
            ok, reasons = (
                False,
                [
                    error(
                        "exception_during_validation",
                        "Exception when validating node",
                        str(exc),
                        {
                            "exception_type": type_name(exc),
                            "traceback": traceback.format_tb(exc.__traceback__),
                        },
                    )
                ],
            )
            validator.validated[output] = (False, reasons, output)
        if ok:
            good.append(output)
            continue
        failed.append(reasons)
        for node_id, (node_ok, node_reasons, _) in validator.validated.items():
            if node_ok or not node_reasons:
                continue
            entry = node_errors.setdefault(
                node_id,
                {
                    "errors": node_reasons,
                    "dependent_outputs": [],
                    "class_type": prompt[node_id]["class_type"],
                },
            )
            entry["dependent_outputs"].append(output)
    if not good:
        lines = [f"{e['message']}: {e['details']}" for reasons in failed for e in reasons]
        raise PromptInvalid(
            error(
                "prompt_outputs_failed_validation",
                "Prompt outputs failed validation",
                "\n".join(lines),
            ),
            node_errors,
        )
    return Validated(good, node_errors)
