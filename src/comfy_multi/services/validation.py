"""Check a prompt against the workers' node definitions before it is queued,
answering in ComfyUI's own `{error, node_errors}` shape (execution.py
`validate_prompt` / `validate_inputs`), so the frontend highlights the bad node
and nobody waits in the queue to learn of a typo.

Where the definitions cannot tell (custom types, V3 dynamic inputs) the check
lets the prompt through: the worker's ComfyUI validates again and its verdict
comes back to the participant verbatim.

Unlike ComfyUI, the work is linear in the prompt's size and the answer is
bounded: ComfyUI gives every failed node every failed output processed after
it (quadratic in time and size for a prompt of many broken outputs); here a
node lists the failed outputs that really depend on it, at most
MAX_NODE_ERRORS nodes are reported, and the rest are counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from comfy_multi.errors import PromptInvalid
from comfy_multi.services.node_checks import (
    Error,
    InputExists,
    Validator,
    error,
    short,
    type_name,
)

MAX_NODE_ERRORS = 50  # nodes reported in node_errors; the rest are counted
MAX_DEPENDENT_OUTPUTS = 20  # outputs listed per failed node
MAX_DETAIL_LINES = 20  # lines of the top-level details


@dataclass
class Validated:
    outputs: list[str]  # the output nodes that will run
    node_errors: dict[str, Any]  # of outputs that failed while others passed
    omitted: int = 0  # failed nodes left out of node_errors


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
                    f"Node ID '#{short(node_id)}'",
                ),
                {},
            )
        class_type = node["class_type"]
        if not isinstance(class_type, str) or class_type not in object_info:
            raise PromptInvalid(
                error(
                    "invalid_prompt",
                    f"Cannot execute because node {short(class_type)} does not exist.",
                    f"Node ID '#{short(node_id)}'",
                ),
                {},
            )
        if not isinstance(node.setdefault("inputs", {}), dict):
            raise PromptInvalid(
                error(
                    "invalid_prompt",
                    "Node inputs must be an object.",
                    f"Node ID '#{short(node_id)}'",
                ),
                {},
            )


def _check_output(validator: Validator, output: str) -> tuple[bool, list[Error]]:
    try:
        ok, reasons, _ = validator.node(output)
    except Exception as exc:
        reasons = [
            error(
                "exception_during_validation",
                "Exception when validating node",
                short(str(exc)),
                {"exception_type": type_name(exc), "traceback": []},
            )
        ]
        validator.validated[output] = (False, reasons, output)
        return False, reasons
    return ok, reasons


def _dependents(
    validator: Validator, failed: list[str], reported: set[str]
) -> dict[str, list[str]]:
    """For each reported node, the first failed outputs that depend on it.

    Each output walks up through failed nodes. A node already reached by
    MAX_DEPENDENT_OUTPUTS outputs is not entered again: every node above it
    was reached by those same outputs, so nothing would change. Each node is
    therefore entered at most MAX_DEPENDENT_OUTPUTS times: linear work.
    """
    reached: dict[str, int] = {}
    found: dict[str, list[str]] = {node_id: [] for node_id in reported}
    for output in failed:
        seen = {output}
        stack = [output]
        while stack:
            node_id = stack.pop()
            reached[node_id] = reached.get(node_id, 0) + 1
            if node_id in found:
                found[node_id].append(output)
            for source in validator.upstream(node_id):
                verdict = validator.validated.get(source)
                if (
                    source in seen
                    or verdict is None
                    or verdict[0]
                    or reached.get(source, 0) >= MAX_DEPENDENT_OUTPUTS
                ):
                    continue
                seen.add(source)
                stack.append(source)
    return found


def _node_errors(
    validator: Validator, prompt: dict[str, Any], failed: list[str]
) -> tuple[dict[str, Any], int]:
    """ComfyUI's node_errors for the first MAX_NODE_ERRORS failed nodes, and
    how many more failed."""
    with_reasons = [
        node_id for node_id, (ok, reasons, _) in validator.validated.items() if not ok and reasons
    ]
    reported = with_reasons[:MAX_NODE_ERRORS]
    dependents = _dependents(validator, failed, set(reported))
    node_errors = {
        node_id: {
            "errors": validator.validated[node_id][1],
            "dependent_outputs": dependents[node_id],
            "class_type": prompt[node_id]["class_type"],
        }
        for node_id in reported
    }
    return node_errors, len(with_reasons) - len(reported)


def _summary(failed: list[tuple[str, list[Error]]], omitted: int) -> Error:
    lines = [f"{e['message']}: {e['details']}" for _, reasons in failed for e in reasons]
    shown = lines[:MAX_DETAIL_LINES]
    if len(lines) > len(shown):
        shown.append(f"… and {len(lines) - len(shown):,} more")
    if omitted:
        shown.append(f"({omitted:,} more nodes with errors are not listed)")
    return error(
        "prompt_outputs_failed_validation",
        "Prompt outputs failed validation",
        "\n".join(shown),
        {"node_errors_omitted": omitted} if omitted else {},
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
    failed: list[tuple[str, list[Error]]] = []
    for output in outputs:
        ok, reasons = _check_output(validator, output)
        if ok:
            good.append(output)
        else:
            failed.append((output, reasons))
    node_errors, omitted = _node_errors(validator, prompt, [output for output, _ in failed])
    if not good:
        raise PromptInvalid(_summary(failed, omitted), node_errors)
    return Validated(good, node_errors, omitted)
