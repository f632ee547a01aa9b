"""ComfyUI's prompt validation (execution.py validate_prompt), with its error shapes."""

from __future__ import annotations

import sys
import traceback
from dataclasses import dataclass, field
from typing import Any

from .node_base import Node, Registry
from .paths import Dirs

Error = dict[str, Any]
Verdict = tuple[bool, list[Error], str]


def _error(kind: str, message: str, details: str, extra_info: dict[str, Any]) -> Error:
    return {"type": kind, "message": message, "details": details, "extra_info": extra_info}


def full_type_name(klass: type) -> str:
    module = klass.__module__
    return klass.__qualname__ if module == "builtins" else f"{module}.{klass.__qualname__}"


def type_matches(received: Any, expected: Any) -> bool:
    """ComfyUI's validate_node_input, non-strict: comma-separated types must overlap."""
    if received == expected:
        return True
    if not isinstance(received, str) or not isinstance(expected, str):
        return False
    got = {t.strip() for t in received.split(",")}
    want = {t.strip() for t in expected.split(",")}
    return bool(got & want)


def input_info(definition: dict[str, Any], name: str) -> tuple[Any, str | None, dict[str, Any]]:
    """(type, category, options) of one input, or (None, None, {}) if the node has none."""
    for category in ("required", "optional", "hidden"):
        spec = definition.get("input", {}).get(category, {})
        if name in spec:
            entry = spec[name]
            if isinstance(entry, str):
                return entry, category, {}
            extra = entry[1] if len(entry) > 1 else {}
            return entry[0], category, extra
    return None, None, {}


_CONVERT = {"INT": int, "FLOAT": float, "STRING": str, "BOOLEAN": bool}


@dataclass
class Validator:
    registry: Registry
    dirs: Dirs
    prompt: dict[str, Any]
    validated: dict[str, Verdict] = field(default_factory=dict)

    def definition(self, node_id: str) -> tuple[Node, dict[str, Any]]:
        node = self.registry.get(self.prompt[node_id]["class_type"])
        assert node is not None
        return node, node.object_info(self.dirs)

    def node(self, node_id: str) -> Verdict:
        if node_id in self.validated:
            return self.validated[node_id]
        node, definition = self.definition(node_id)
        inputs = self.prompt[node_id]["inputs"]
        errors: list[Error] = []
        valid = True
        names = [
            *definition["input"].get("required", {}),
            *definition["input"].get("optional", {}),
        ]
        for name in names:
            kind, category, extra = input_info(definition, name)
            if name not in inputs:
                if category == "required":
                    errors.append(
                        _error(
                            "required_input_missing",
                            "Required input is missing",
                            name,
                            {"input_name": name},
                        )
                    )
                continue
            if isinstance(inputs[name], list):
                ok = self._link(node_id, name, (kind, extra), errors)
            else:
                ok = self._constant(node, inputs, name, (kind, extra), errors)
            valid = valid and ok
        if node.validate_args:
            values = {a: inputs.get(a) for a in node.validate_args if a in inputs}
            verdict = node.validate(self.dirs, **values)
            if verdict is not True:
                for name in values:
                    details = name if verdict is False else f"{name} - {verdict}"
                    errors.append(
                        _error(
                            "custom_validation_failed",
                            "Custom validation failed for node",
                            details,
                            {"input_name": name},
                        )
                    )
        result: Verdict = (not errors and valid, errors, node_id)
        self.validated[node_id] = result
        return result

    def _link(
        self, node_id: str, name: str, info: tuple[Any, dict[str, Any]], errors: list[Error]
    ) -> bool:
        value = self.prompt[node_id]["inputs"][name]
        if len(value) != 2:
            errors.append(
                _error(
                    "bad_linked_input",
                    "Bad linked input, must be a length-2 list of [node_id, slot_index]",
                    name,
                    {"input_name": name, "input_config": info, "received_value": value},
                )
            )
            return True
        source, slot = value
        source_node = self.registry.get(self.prompt[source]["class_type"])
        assert source_node is not None
        received = source_node.return_types[slot]
        if not type_matches(received, info[0]):
            details = f"{name}, received_type({received}) mismatch input_type({info[0]})"
            errors.append(
                _error(
                    "return_type_mismatch",
                    "Return type mismatch between linked nodes",
                    details,
                    {
                        "input_name": name,
                        "input_config": info,
                        "received_type": received,
                        "linked_node": value,
                    },
                )
            )
            return True
        try:
            return self.node(source)[0] is not False
        except Exception as ex:
            _, _, tb = sys.exc_info()
            reasons = [
                _error(
                    "exception_during_inner_validation",
                    "Exception when validating inner node",
                    str(ex),
                    {
                        "input_name": name,
                        "input_config": info,
                        "exception_message": str(ex),
                        "exception_type": full_type_name(type(ex)),
                        "traceback": traceback.format_tb(tb),
                        "linked_node": value,
                    },
                )
            ]
            self.validated[source] = (False, reasons, source)
            return False

    def _constant(
        self,
        node: Node,
        inputs: dict[str, Any],
        name: str,
        info: tuple[Any, dict[str, Any]],
        errors: list[Error],
    ) -> bool:
        kind, extra = info
        value = inputs[name]
        try:
            if isinstance(value, dict) and "__value__" in value:
                value = inputs[name] = value["__value__"]
            if isinstance(kind, str) and kind in _CONVERT:
                value = inputs[name] = _CONVERT[kind](value)
        except Exception as ex:
            errors.append(
                _error(
                    "invalid_input_type",
                    f"Failed to convert an input value to a {kind} value",
                    f"{name}, {value}, {ex}",
                    {
                        "input_name": name,
                        "input_config": info,
                        "received_value": value,
                        "exception_message": str(ex),
                    },
                )
            )
            return True
        if name in node.validate_args:
            return True
        if "min" in extra and value < extra["min"]:
            errors.append(
                _error(
                    "value_smaller_than_min",
                    "Value {} smaller than min of {}".format(value, extra["min"]),
                    name,
                    {"input_name": name, "input_config": info, "received_value": value},
                )
            )
        elif "max" in extra and value > extra["max"]:
            errors.append(
                _error(
                    "value_bigger_than_max",
                    "Value {} bigger than max of {}".format(value, extra["max"]),
                    name,
                    {"input_name": name, "input_config": info, "received_value": value},
                )
            )
        elif isinstance(kind, list) and value not in kind:
            config: Any = info
            listed = str(kind)
            if len(kind) > 20:
                listed, config = f"(list of length {len(kind)})", None
            errors.append(
                _error(
                    "value_not_in_list",
                    "Value not in list",
                    f"{name}: '{value}' not in {listed}",
                    {"input_name": name, "input_config": config, "received_value": value},
                )
            )
        return True


@dataclass
class Outcome:
    ok: bool
    error: Error | None
    outputs: list[str]
    node_errors: dict[str, Any]


def _structure_error(prompt: Any, registry: Registry) -> Error | None:
    if not isinstance(prompt, dict):
        return _error("invalid_prompt", "Prompt must be an object of nodes.", "", {})
    for node_id, node in prompt.items():
        if not isinstance(node, dict) or "class_type" not in node:
            return _error(
                "invalid_prompt",
                "Cannot execute because a node is missing the class_type property.",
                f"Node ID '#{node_id}'",
                {},
            )
        if node["class_type"] not in registry:
            return _error(
                "invalid_prompt",
                f"Cannot execute because node {node['class_type']} does not exist.",
                f"Node ID '#{node_id}'",
                {},
            )
        if not isinstance(node.get("inputs", {}), dict):
            return _error(
                "invalid_prompt", "Node inputs must be an object.", f"Node ID '#{node_id}'", {}
            )
        node.setdefault("inputs", {})
    return None


def validate_prompt(
    registry: Registry, dirs: Dirs, prompt: Any, partial: list[str] | None = None
) -> Outcome:
    """Check a prompt as ComfyUI does; converts constant inputs in place like ComfyUI."""
    structure = _structure_error(prompt, registry)
    if structure is not None:
        return Outcome(False, structure, [], {})
    outputs = [
        node_id
        for node_id, node in prompt.items()
        if registry.nodes[node["class_type"]].output_node
        and (partial is None or node_id in partial)
    ]
    if not outputs:
        return Outcome(False, _error("prompt_no_outputs", "Prompt has no outputs", "", {}), [], {})

    validator = Validator(registry, dirs, prompt)
    good: list[str] = []
    failed: list[tuple[str, list[Error]]] = []
    node_errors: dict[str, Any] = {}
    for output in outputs:
        try:
            valid, reasons, _ = validator.node(output)
        except Exception as ex:
            _, _, tb = sys.exc_info()
            valid = False
            reasons = [
                _error(
                    "exception_during_validation",
                    "Exception when validating node",
                    str(ex),
                    {
                        "exception_type": full_type_name(type(ex)),
                        "traceback": traceback.format_tb(tb),
                    },
                )
            ]
            validator.validated[output] = (False, reasons, output)
        if valid:
            good.append(output)
            continue
        failed.append((output, reasons))
        for node_id, (ok, node_reasons, _) in validator.validated.items():
            if ok or not node_reasons:
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
        lines = [f"{e['message']}: {e['details']}" for _, errors in failed for e in errors]
        error = _error(
            "prompt_outputs_failed_validation",
            "Prompt outputs failed validation",
            "\n".join(lines),
            {},
        )
        return Outcome(False, error, [], node_errors)
    return Outcome(True, None, good, node_errors)
