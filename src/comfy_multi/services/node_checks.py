"""One node's inputs checked as ComfyUI's execution.py `validate_inputs` does:
required inputs, links and their types, constants converted and held to their
bounds and choices, and upload inputs held to the participant's own files."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from comfy_multi.services.object_info import upload_kind

Error = dict[str, Any]
Verdict = tuple[bool, list[Error], str]
InputExists = Callable[[str], bool]

_CONVERT: dict[str, Callable[[Any], Any]] = {
    "INT": int,
    "FLOAT": float,
    "STRING": str,
    "BOOLEAN": bool,
}


def error(
    kind: str, message: str, details: str = "", extra_info: dict[str, Any] | None = None
) -> Error:
    return {"type": kind, "message": message, "details": details, "extra_info": extra_info or {}}


def type_name(exc: BaseException) -> str:
    cls = type(exc)
    return (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )


def types_match(received: Any, expected: Any) -> bool:
    """ComfyUI's validate_node_input: equal, `*`, or comma lists that overlap."""
    if received == expected:
        return True
    if isinstance(expected, list):  # a COMBO fed by a link: ComfyUI's verdict depends on the node
        return True
    if not isinstance(received, str) or not isinstance(expected, str):
        return False
    got = {t.strip() for t in received.split(",")}
    want = {t.strip() for t in expected.split(",")}
    return "*" in got or "*" in want or bool(got & want)


def _dynamic(kind: Any) -> bool:
    """V3 dynamic inputs (autogrow, dynamic combos) expand into inputs the
    definition does not list; leave them to ComfyUI."""
    return isinstance(kind, str) and kind.startswith("COMFY_") and kind.endswith("_V3")


def input_info(definition: dict[str, Any], name: str) -> tuple[Any, str | None, dict[str, Any]]:
    for category in ("required", "optional", "hidden"):
        specs = definition.get("input", {}).get(category) or {}
        if name in specs:
            spec = specs[name]
            if not isinstance(spec, list | tuple) or not spec:
                return spec, category, {}
            extra = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
            return spec[0], category, extra
    return None, None, {}


def _combo_options(kind: Any, extra: dict[str, Any]) -> list[Any] | None:
    if isinstance(kind, list):
        return kind
    if kind == "COMBO" and isinstance(extra.get("options"), list):
        return list(extra["options"])
    return None


@dataclass
class Validator:
    object_info: dict[str, Any]
    prompt: dict[str, Any]
    input_exists: InputExists | None
    validated: dict[str, Verdict] = field(default_factory=dict)

    def node(self, node_id: str) -> Verdict:
        if node_id in self.validated:
            return self.validated[node_id]
        definition = self.object_info[self.prompt[node_id]["class_type"]]
        inputs = self.prompt[node_id]["inputs"]
        errors: list[Error] = []
        valid = True
        specs = definition.get("input", {})
        for name in [*(specs.get("required") or {}), *(specs.get("optional") or {})]:
            kind, category, extra = input_info(definition, name)
            if _dynamic(kind):
                continue
            if name not in inputs:
                if category == "required":
                    errors.append(
                        error(
                            "required_input_missing",
                            "Required input is missing",
                            name,
                            {"input_name": name},
                        )
                    )
                continue
            info = [kind, extra]
            if isinstance(inputs[name], list):
                valid = self._link(node_id, name, info, errors) and valid
            else:
                self._constant(definition, inputs, name, info, errors)
        verdict: Verdict = (valid and not errors, errors, node_id)
        self.validated[node_id] = verdict
        return verdict

    def _link(self, node_id: str, name: str, info: list[Any], errors: list[Error]) -> bool:
        value = self.prompt[node_id]["inputs"][name]
        if len(value) != 2:
            errors.append(
                error(
                    "bad_linked_input",
                    "Bad linked input, must be a length-2 list of [node_id, slot_index]",
                    name,
                    {"input_name": name, "input_config": info, "received_value": value},
                )
            )
            return True
        source, slot = str(value[0]), value[1]
        # a link to an absent node or slot raises here, as in ComfyUI, and is
        # reported once as exception_during_validation on the output
        outputs = self.object_info[self.prompt[source]["class_type"]].get("output", [])
        received = outputs[slot]
        if not types_match(received, info[0]):
            errors.append(
                error(
                    "return_type_mismatch",
                    "Return type mismatch between linked nodes",
                    f"{name}, received_type({received}) mismatch input_type({info[0]})",
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
            return self.node(source)[0]
        except Exception as exc:
            self.validated[source] = (
                False,
                [
                    error(
                        "exception_during_inner_validation",
                        "Exception when validating inner node",
                        str(exc),
                        {
                            "input_name": name,
                            "input_config": info,
                            "exception_message": str(exc),
                            "exception_type": type_name(exc),
                            "traceback": traceback.format_tb(exc.__traceback__),
                            "linked_node": value,
                        },
                    )
                ],
                source,
            )
            return False

    def _constant(
        self,
        definition: dict[str, Any],
        inputs: dict[str, Any],
        name: str,
        info: list[Any],
        errors: list[Error],
    ) -> None:
        kind = info[0]
        value = inputs[name]
        try:
            if isinstance(value, dict) and "__value__" in value:
                value = inputs[name] = value["__value__"]
            if isinstance(kind, str) and kind in _CONVERT:
                value = inputs[name] = _CONVERT[kind](value)
        except Exception as exc:
            errors.append(
                error(
                    "invalid_input_type",
                    f"Failed to convert an input value to a {kind} value",
                    f"{name}, {value}, {exc}",
                    {
                        "input_name": name,
                        "input_config": info,
                        "received_value": value,
                        "exception_message": str(exc),
                    },
                )
            )
            return
        spec = (definition["input"].get("required") or {}).get(name) or (
            definition["input"].get("optional") or {}
        ).get(name)
        media_kind = upload_kind(spec)
        if media_kind is not None:
            # ComfyUI's loaders validate the file themselves (VALIDATE_INPUTS):
            # it must exist in this participant's input folder
            if self.input_exists is not None and not (
                isinstance(value, str) and self.input_exists(value)
            ):
                errors.append(
                    error(
                        "custom_validation_failed",
                        "Custom validation failed for node",
                        f"{name} - Invalid {media_kind} file: {value}",
                        {"input_name": name},
                    )
                )
            return
        self._range_and_choice(name, value, info, errors)

    @staticmethod
    def _range_and_choice(name: str, value: Any, info: list[Any], errors: list[Error]) -> None:
        kind, extra = info
        details = {"input_name": name, "input_config": info, "received_value": value}
        try:
            if "min" in extra and value < extra["min"]:
                message = "Value {} smaller than min of {}".format(value, extra["min"])
                errors.append(error("value_smaller_than_min", message, name, details))
                return
            if "max" in extra and value > extra["max"]:
                message = "Value {} bigger than max of {}".format(value, extra["max"])
                errors.append(error("value_bigger_than_max", message, name, details))
                return
        except TypeError:
            return  # an unconverted custom type compared to a bound: ComfyUI's call
        options = _combo_options(kind, extra)
        if options is None:
            return
        if extra.get("multiselect") and isinstance(value, list):
            ok = all(v in options for v in value)
        else:
            ok = value in options
        if not ok:
            listed: str = str(options)
            config: list[Any] | None = info
            if len(options) > 20:  # ComfyUI keeps long model lists out of the reply
                listed, config = f"(list of length {len(options)})", None
            errors.append(
                error(
                    "value_not_in_list",
                    "Value not in list",
                    f"{name}: '{value}' not in {listed}",
                    {"input_name": name, "input_config": config, "received_value": value},
                )
            )
