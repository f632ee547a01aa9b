"""Runs queued prompts one at a time and emits ComfyUI's websocket events in its order."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import traceback
import uuid
from typing import Any

from .events import Interrupted, NodeContext, Run
from .graph import ExecutionList, is_link
from .hub import Hub
from .node_base import Node, Registry
from .paths import Dirs
from .prompt_queue import PromptQueue
from .validation import full_type_name

logger = logging.getLogger(__name__)


class NodeFailed(Exception):
    def __init__(self, node_id: str, details: dict[str, Any], cause: BaseException) -> None:
        super().__init__(f"node {node_id} failed: {cause!r}")
        self.node_id = node_id
        self.details = details
        self.cause = cause


def _format_value(value: Any) -> Any:
    if value is None or isinstance(value, (int, float, bool, str)):
        return value
    return str(value)


class Executor:
    """One prompt at a time, with ComfyUI's classic output cache keyed by input signature."""

    def __init__(
        self, registry: Registry, dirs: Dirs, hub: Hub, queue: PromptQueue, speed: float
    ) -> None:
        self.registry = registry
        self.dirs = dirs
        self.hub = hub
        self.queue = queue
        self.speed = speed
        self.outputs: dict[str, tuple[Any, ...]] = {}
        self.ui: dict[str, dict[str, Any]] = {}
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.interrupt_requested = False
        self.free_requested = False
        self.current: Run | None = None
        self.last_node_id: str | None = None

    def interrupt(self, prompt_id: str | None = None) -> None:
        """POST /interrupt: any running prompt, or only the given one."""
        if prompt_id is None or (self.current is not None and self.current.prompt_id == prompt_id):
            self.interrupt_requested = True

    def request_free(self) -> None:
        """POST /free with free_memory: drop the caches once no prompt is running."""
        self.free_requested = True
        if self.current is None:
            self._free()

    def _free(self) -> None:
        self.free_requested = False
        self.outputs.clear()
        self.ui.clear()
        self.objects.clear()

    async def run_forever(self) -> None:
        while True:
            item = await self.queue.get()
            run = Run(self, item)
            self.current = run
            try:
                result, success = await self.execute(run)
            except Exception:
                logger.exception("prompt %s crashed the stand-in", item.prompt_id)
                result, success = {"outputs": {}, "meta": {}}, False
            finally:
                self.current = None
            status = {
                "status_str": "success" if success else "error",
                "completed": success,
                "messages": run.messages,
            }
            self.queue.task_done(item, result, status)
            run.send("executing", {"node": None, "prompt_id": run.prompt_id})
            if self.free_requested:
                self._free()

    def _signature(self, prompt: dict[str, Any], node_id: str, memo: dict[str, str]) -> str:
        if node_id in memo:
            return memo[node_id]
        node = prompt[node_id]
        cls = self.registry.nodes[node["class_type"]]
        inputs = node["inputs"]
        constants = {k: v for k, v in inputs.items() if not is_link(v)}
        try:
            changed = cls.fingerprint(self.dirs, constants)
        except Exception:
            changed = uuid.uuid4().hex  # ComfyUI uses NaN: never equal, never cached
        parts: list[Any] = [node["class_type"], changed]
        for key in sorted(inputs):
            value = inputs[key]
            if is_link(value) and value[0] in prompt:
                parts.append([key, "LINK", self._signature(prompt, value[0], memo), value[1]])
            else:
                parts.append([key, value])
        memo[node_id] = json.dumps(parts, sort_keys=True, default=str)
        return memo[node_id]

    def _signatures(self, prompt: dict[str, Any]) -> dict[str, str]:
        memo: dict[str, str] = {}
        for node_id in prompt:
            self._signature(prompt, node_id, memo)
        return memo

    async def execute(self, run: Run) -> tuple[dict[str, Any], bool]:
        self.interrupt_requested = False
        run.add_message("execution_start", {"prompt_id": run.prompt_id})
        run.signatures = await asyncio.to_thread(self._signatures, run.prompt)
        used = set(run.signatures.values())
        for cache in (self.outputs, self.ui):
            for key in [k for k in cache if k not in used]:
                del cache[key]
        live = {(nid, node["class_type"]) for nid, node in run.prompt.items()}
        self.objects = {k: v for k, v in self.objects.items() if k in live}
        cached = [nid for nid in run.prompt if run.signatures[nid] in self.outputs]
        run.add_message("execution_cached", {"nodes": cached, "prompt_id": run.prompt_id})

        todo = ExecutionList(run.prompt, self.registry, lambda n: run.signatures[n] in self.outputs)
        for output in run.item.outputs:
            todo.add_node(output)
        success = True
        while not todo.is_empty():
            node_id = todo.stage()
            try:
                if node_id is None:
                    raise NodeFailed(*_cycle_error(todo))
                await self._execute_node(run, node_id)
            except NodeFailed as failure:
                self._report_failure(run, failure)
                success = False
                break
            todo.complete(node_id)
        else:
            run.add_message("execution_success", {"prompt_id": run.prompt_id})
        self.last_node_id = None
        outputs, meta = {}, {}
        for node_id in run.prompt:
            entry = self.ui.get(run.signatures[node_id])
            if entry is not None:
                outputs[node_id] = entry["output"]
                meta[node_id] = entry["meta"]
        return {"outputs": outputs, "meta": meta}, success

    def _inputs(self, run: Run, node_id: str, node: Node) -> dict[str, Any]:
        definition = node.object_info(self.dirs)
        declared = {
            *definition["input"].get("required", {}),
            *definition["input"].get("optional", {}),
        }
        values: dict[str, Any] = {}
        for name, value in run.prompt[node_id]["inputs"].items():
            if is_link(value):
                values[name] = self.outputs[run.signatures[value[0]]][value[1]]
            elif name in declared:
                values[name] = value
        for name, kind in definition["input"].get("hidden", {}).items():
            if kind == "PROMPT":
                values[name] = run.prompt
            elif kind == "EXTRA_PNGINFO":
                values[name] = run.item.extra_data.get("extra_pnginfo")
            elif kind == "UNIQUE_ID":
                values[name] = node_id
        return values

    async def _execute_node(self, run: Run, node_id: str) -> None:
        class_type = run.prompt[node_id]["class_type"]
        node = self.registry.nodes[class_type]
        signature = run.signatures[node_id]
        if signature in self.outputs:
            if run.client_id is not None:
                entry = self.ui.get(signature) or {}
                run.send(
                    "executed",
                    {
                        "node": node_id,
                        "display_node": node_id,
                        "output": entry.get("output"),
                        "prompt_id": run.prompt_id,
                    },
                )
            run.finish_progress(node_id)
            return
        run.start_progress(node_id)
        inputs: dict[str, Any] | None = None
        try:
            inputs = self._inputs(run, node_id, node)
            if run.client_id is not None:
                self.last_node_id = node_id
            run.send(
                "executing", {"node": node_id, "display_node": node_id, "prompt_id": run.prompt_id}
            )
            ctx = NodeContext(run, node_id, self.objects.setdefault((node_id, class_type), {}))
            ctx.check_interrupted()
            if node.cost and self.speed:
                await asyncio.sleep(node.cost * self.speed)
            result = await node.run(ctx, **inputs)
        except Interrupted as ex:
            raise NodeFailed(node_id, {"node_id": node_id}, ex) from ex
        except Exception as ex:
            _, _, tb = sys.exc_info()
            logger.info(
                "node %s (%s) of prompt %s failed: %s", node_id, class_type, run.prompt_id, ex
            )
            current = {k: [_format_value(v)] for k, v in (inputs or {}).items()}
            details = {
                "node_id": node_id,
                "exception_message": f"{ex}\n",
                "exception_type": full_type_name(type(ex)),
                "traceback": traceback.format_tb(tb),
                "current_inputs": current,
            }
            raise NodeFailed(node_id, details, ex) from ex
        if result.ui:
            meta = {
                "node_id": node_id,
                "display_node": node_id,
                "parent_node": None,
                "real_node_id": node_id,
            }
            self.ui[signature] = {"meta": meta, "output": result.ui}
            run.send(
                "executed",
                {
                    "node": node_id,
                    "display_node": node_id,
                    "output": result.ui,
                    "prompt_id": run.prompt_id,
                },
            )
        self.outputs[signature] = result.values
        run.finish_progress(node_id)
        run.executed.append(node_id)

    def _report_failure(self, run: Run, failure: NodeFailed) -> None:
        node_id = failure.node_id
        base = {
            "prompt_id": run.prompt_id,
            "node_id": node_id,
            "node_type": run.prompt[node_id]["class_type"],
            "executed": list(run.executed),
        }
        if isinstance(failure.cause, Interrupted):
            run.add_message("execution_interrupted", base, broadcast=True)
            return
        details = failure.details
        run.add_message(
            "execution_error",
            {
                **base,
                "exception_message": details["exception_message"],
                "exception_type": details["exception_type"],
                "traceback": details["traceback"],
                "current_inputs": details["current_inputs"],
                "current_outputs": list(run.prompt),
            },
        )


def _cycle_error(todo: ExecutionList) -> tuple[str, dict[str, Any], BaseException]:
    blamed = todo.pending_ids()[0]
    details = {
        "node_id": blamed,
        "exception_message": "Dependency cycle detected",
        "exception_type": "graph.DependencyCycleError",
        "traceback": [],
        "current_inputs": [],
    }
    return blamed, details, RuntimeError("Dependency cycle detected")
