"""One node's inputs checked as ComfyUI's execution.py `validate_inputs` does:
required inputs, links and their types, constants converted and held to their
bounds and choices, and upload inputs held to the participant's own files.

ComfyUI walks the graph by recursion, so a long chain of nodes ends in a
RecursionError. Here each node's check is a generator that yields the node it
links to and is resumed with that node's verdict; `Validator.node` drives them
from an explicit stack, so depth costs memory, not the interpreter's stack.
"""

from __future__ import annotations

import reprlib
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

from comfy_multi.services.object_info import upload_kind

Error = dict[str, Any]
Verdict = tuple[bool, list[Error], str]
InputExists = Callable[[str], bool]
# a node's check: yields the id of a node it links to, receives that node's verdict
Check = Generator[str, Verdict | None, Verdict]

SHORT_TEXT = 200  # characters of a participant's value echoed in an error

_short_repr = reprlib.Repr()
_short_repr.maxstring = SHORT_TEXT
_short_repr.maxother = SHORT_TEXT
_short_repr.maxlevel = 3


class GraphError(ValueError):
    """A node that depends on itself (ComfyUI recurses until RecursionError)."""


def short(value: Any) -> str:
    """A value as text no longer than about SHORT_TEXT characters."""
    text = value if isinstance(value, str) else _short_repr.repr(value)
    return text if len(text) <= SHORT_TEXT else text[:SHORT_TEXT] + f"… ({len(text):,} characters)"


def echoed(value: Any) -> Any:
    """A received value as it may go back in an answer: small ones as they are."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str) and len(value) <= SHORT_TEXT:
        return value
    return short(value)


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
    """The exception's class name as ComfyUI reports it, without our module path."""
    return "ValueError" if isinstance(exc, GraphError) else type(exc).__qualname__


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
        return extra["options"]  # type: ignore[no-any-return]
    return None


@dataclass
class Validator:
    object_info: dict[str, Any]
    prompt: dict[str, Any]
    input_exists: InputExists | None
    validated: dict[str, Verdict] = field(default_factory=dict)
    _option_sets: dict[int, tuple[list[Any], frozenset[Any] | None]] = field(default_factory=dict)

    def node(self, node_id: str) -> Verdict:
        """The node's verdict, checking every node it depends on first.
        Raises what the node's own check raises (ComfyUI's top-level case)."""
        if node_id in self.validated:
            return self.validated[node_id]
        stack: list[tuple[str, Check]] = [(node_id, self._check(node_id))]
        active = {node_id}
        reply: Verdict | Exception | None = None
        while True:
            current, check = stack[-1]
            try:
                wanted = check.throw(reply) if isinstance(reply, Exception) else check.send(reply)
            except StopIteration as done:
                verdict = self._settle(current, done.value)
                stack.pop()
                active.discard(current)
                if not stack:
                    return verdict
                reply = verdict
                continue
            except Exception as exc:
                stack.pop()
                active.discard(current)
                if not stack:
                    raise
                reply = exc  # the linking node records it, as ComfyUI's except does
                continue
            if wanted in self.validated:
                reply = self.validated[wanted]
            elif wanted in active:
                reply = GraphError(f"node {short(wanted)} depends on itself (a dependency cycle)")
            else:
                stack.append((wanted, self._check(wanted)))
                active.add(wanted)
                reply = None

    def _settle(self, node_id: str, verdict: Verdict) -> Verdict:
        """Record a finished check, keeping a cycle error recorded meanwhile."""
        earlier = self.validated.get(node_id)
        if earlier is not None and earlier[1]:
            verdict = (False, [*earlier[1], *verdict[1]], node_id)
        self.validated[node_id] = verdict
        return verdict

    def upstream(self, node_id: str) -> list[str]:
        """The nodes this node's inputs link to."""
        inputs = self.prompt[node_id].get("inputs") or {}
        return [
            str(value[0])
            for value in inputs.values()
            if isinstance(value, list) and len(value) == 2 and str(value[0]) in self.prompt
        ]

    def _check(self, node_id: str) -> Check:
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
                valid = (yield from self._link(node_id, name, info, errors)) and valid
            else:
                self._constant(definition, inputs, name, info, errors)
        return (valid and not errors, errors, node_id)

    def _source(self, value: list[Any]) -> tuple[str, Any]:
        """The linked node and its output type. Raises what ComfyUI's lookup
        raises (KeyError for an absent node, IndexError or TypeError for a bad
        slot), with the same messages, but never more than a short text."""
        source, slot = str(value[0]), value[1]
        node = self.prompt.get(source)
        if node is None:
            raise KeyError(short(source))
        outputs = self.object_info[node["class_type"]].get("output", [])
        if isinstance(slot, bool) or not isinstance(slot, int):
            raise TypeError(f"list indices must be integers or slices, not {type(slot).__name__}")
        if not -len(outputs) <= slot < len(outputs):
            raise IndexError("list index out of range")
        return source, outputs[slot]

    def _link(
        self, node_id: str, name: str, info: list[Any], errors: list[Error]
    ) -> Generator[str, Verdict | None, bool]:
        value = self.prompt[node_id]["inputs"][name]
        if len(value) != 2:
            errors.append(
                error(
                    "bad_linked_input",
                    "Bad linked input, must be a length-2 list of [node_id, slot_index]",
                    name,
                    {"input_name": name, "input_config": info, "received_value": echoed(value)},
                )
            )
            return True
        # a link to an absent node or slot raises here, as in ComfyUI, and is
        # reported once as exception_during_validation on the output
        source, received = self._source(value)
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
            verdict = yield source
        except Exception as exc:
            self.validated[source] = (
                False,
                [
                    error(
                        "exception_during_inner_validation",
                        "Exception when validating inner node",
                        short(str(exc)),
                        {
                            "input_name": name,
                            "input_config": info,
                            "exception_message": short(str(exc)),
                            "exception_type": type_name(exc),
                            "traceback": [],
                            "linked_node": value,
                        },
                    )
                ],
                source,
            )
            return False
        assert verdict is not None
        return verdict[0]

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
                    f"{name}, {short(value)}, {short(str(exc))}",
                    {
                        "input_name": name,
                        "input_config": info,
                        "received_value": echoed(value),
                        "exception_message": short(str(exc)),
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
                        f"{name} - Invalid {media_kind} file: {short(value)}",
                        {"input_name": name},
                    )
                )
            return
        self._range_and_choice(name, value, info, errors)

    def _range_and_choice(
        self, name: str, value: Any, info: list[Any], errors: list[Error]
    ) -> None:
        kind, extra = info
        details = {"input_name": name, "input_config": info, "received_value": echoed(value)}
        try:
            if "min" in extra and value < extra["min"]:
                message = "Value {} smaller than min of {}".format(short(value), extra["min"])
                errors.append(error("value_smaller_than_min", message, name, details))
                return
            if "max" in extra and value > extra["max"]:
                message = "Value {} bigger than max of {}".format(short(value), extra["max"])
                errors.append(error("value_bigger_than_max", message, name, details))
                return
        except TypeError:
            return  # an unconverted custom type compared to a bound: ComfyUI's call
        options = _combo_options(kind, extra)
        if options is None:
            return
        if extra.get("multiselect") and isinstance(value, list):
            ok = all(self._in(v, options) for v in value)
        else:
            ok = self._in(value, options)
        if not ok:
            listed: str = str(options)
            config: list[Any] | None = info
            if len(options) > 20:  # ComfyUI keeps long model lists out of the reply
                listed, config = f"(list of length {len(options)})", None
            errors.append(
                error(
                    "value_not_in_list",
                    "Value not in list",
                    f"{name}: '{short(value)}' not in {listed}",
                    {"input_name": name, "input_config": config, "received_value": echoed(value)},
                )
            )

    def _in(self, value: Any, options: list[Any]) -> bool:
        """`value in options` in constant time: a long model list is checked by
        thousands of nodes. Falls back to the list for unhashable choices."""
        cached = self._option_sets.get(id(options))
        if cached is None or cached[0] is not options:
            try:
                cached = (options, frozenset(options))
            except TypeError:
                cached = (options, None)
            self._option_sets[id(options)] = cached
        choices = cached[1]
        if choices is None:
            return value in options
        try:
            return value in choices
        except TypeError:
            return False  # an unhashable value (list, object) is never a choice
