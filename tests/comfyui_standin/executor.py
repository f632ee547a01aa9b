"""Runs queued prompts one at a time and emits ComfyUI's websocket events in its order."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
import time
import traceback
import uuid
from typing import Any

from PIL import Image

from .graph import ExecutionList, is_link
from .hub import Hub
from .nodes import Node, Registry
from .paths import Dirs
from .prompt_queue import PromptQueue, QueueItem
from .validation import full_type_name

logger = logging.getLogger(__name__)


class Interrupted(Exception):
    """ComfyUI's InterruptProcessingException."""


class NodeFailed(Exception):
    def __init__(self, node_id: str, details: dict[str, Any], cause: BaseException) -> None:
        super().__init__(f"node {node_id} failed: {cause!r}")
        self.node_id = node_id
        self.details = details
        self.cause = cause


def _now_ms() -> int:
    return int(time.time() * 1000)


def _format_value(value: Any) -> Any:
    if value is None or isinstance(value, (int, float, bool, str)):
        return value
    return str(value)


class Run:
    """The state of one prompt while it executes."""

    def __init__(self, executor: Executor, item: QueueItem) -> None:
        self.executor = executor
        self.item = item
        self.prompt = item.prompt
        self.prompt_id = item.prompt_id
        client_id = item.extra_data.get("client_id")
        self.client_id: str | None = client_id if isinstance(client_id, str) else None
        self.messages: list[list[Any]] = []
        self.executed: list[str] = []
        self.progress: dict[str, dict[str, Any]] = {}
        self.signatures: dict[str, str] = {}

    @property
    def hub(self) -> Hub:
        return self.executor.hub

    def send(self, event: str, data: dict[str, Any]) -> None:
        """Events addressed to the prompt's client; dropped when the prompt has none."""
        if self.client_id is not None:
            self.hub.send(event, data, self.client_id)

    def add_message(self, event: str, data: dict[str, Any], broadcast: bool = False) -> None:
        data = {**data, "timestamp": _now_ms()}
        self.messages.append([event, data])
        if self.client_id is not None or broadcast:
            self.hub.send(event, data, self.client_id)

    def _progress_state(self) -> None:
        nodes = {
            node_id: {
                "value": state["value"],
                "max": state["max"],
                "state": state["state"],
                "node_id": node_id,
                "prompt_id": self.prompt_id,
                "display_node_id": node_id,
                "parent_node_id": None,
                "real_node_id": node_id,
            }
            for node_id, state in self.progress.items()
            if state["state"] != "pending"
        }
        # sent to the client, or to every socket when the prompt has no client
        self.hub.send("progress_state", {"prompt_id": self.prompt_id, "nodes": nodes}, self.client_id)

    def _entry(self, node_id: str) -> dict[str, Any]:
        return self.progress.setdefault(node_id, {"state": "pending", "value": 0, "max": 1})

    def start_progress(self, node_id: str) -> None:
        self._entry(node_id).update(state="running", value=0.0, max=1.0)
        self._progress_state()

    def update_progress(self, node_id: str, value: float, total: float) -> None:
        self._entry(node_id).update(state="running", value=value, max=total)
        self._progress_state()

    def finish_progress(self, node_id: str) -> None:
        entry = self._entry(node_id)
        entry.update(state="finished", value=entry["max"])
        self._progress_state()


class NodeContext:
    """What a node sees while it runs (implements nodes.RunContext)."""

    def __init__(self, run: Run, node_id: str, state: dict[str, Any]) -> None:
        self.run = run
        self.node_id = node_id
        self.state = state
        self.dirs = run.executor.dirs

    def check_interrupted(self) -> None:
        if self.run.executor.interrupt_requested:
            raise Interrupted("Processing interrupted")

    async def progress(
        self, value: float, total: float, preview: tuple[str, Image.Image] | None = None
    ) -> None:
        """ComfyUI's progress hook: may raise Interrupted, then progress_state, progress, preview."""
        self.check_interrupted()
        run, hub, sid = self.run, self.run.hub, self.run.client_id
        run.update_progress(self.node_id, value, total)
        encoded = _encode_preview(*preview) if preview else None
        with_metadata = hub.supports(sid, "supports_preview_metadata")
        if encoded and with_metadata:
            metadata = {
                "node_id": self.node_id,
                "prompt_id": run.prompt_id,
                "display_node_id": self.node_id,
                "parent_node_id": None,
                "real_node_id": self.node_id,
            }
            hub.send_preview(preview[0] if preview else "JPEG", encoded, sid, metadata)
        progress = {"value": value, "max": total, "prompt_id": run.prompt_id, "node": self.node_id}
        hub.send("progress", progress, sid)
        if encoded and not with_metadata:
            hub.send_preview(preview[0] if preview else "JPEG", encoded, sid, None)
        await asyncio.sleep(0)


def _encode_preview(fmt: str, image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, quality=95, compress_level=1)
    return buffer.getvalue()


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
        self.current: Run | None = None
        self.last_node_id: str | None = None

    def interrupt(self, prompt_id: str | None = None) -> None:
        """POST /interrupt: any running prompt, or only the given one."""
        if prompt_id is None or (self.current is not None and self.current.prompt_id == prompt_id):
            self.interrupt_requested = True

    def free(self) -> None:
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
            run.send("executing", {"node": node_id, "display_node": node_id, "prompt_id": run.prompt_id})
            ctx = NodeContext(run, node_id, self.objects.setdefault((node_id, class_type), {}))
            ctx.check_interrupted()
            if node.cost and self.speed:
                await asyncio.sleep(node.cost * self.speed)
            result = await node.run(ctx, **inputs)
        except Interrupted as ex:
            raise NodeFailed(node_id, {"node_id": node_id}, ex) from ex
        except Exception as ex:
            _, _, tb = sys.exc_info()
            logger.info("node %s (%s) of prompt %s failed: %s", node_id, class_type, run.prompt_id, ex)
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
            meta = {"node_id": node_id, "display_node": node_id, "parent_node": None, "real_node_id": node_id}
            self.ui[signature] = {"meta": meta, "output": result.ui}
            run.send(
                "executed",
                {"node": node_id, "display_node": node_id, "output": result.ui, "prompt_id": run.prompt_id},
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
