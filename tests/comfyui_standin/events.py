"""One prompt's run: its messages, progress_state, progress and previews, in ComfyUI's order."""

from __future__ import annotations

import asyncio
import io
import time
from typing import TYPE_CHECKING, Any

from PIL import Image

from .hub import Hub
from .prompt_queue import QueueItem

if TYPE_CHECKING:
    from .executor import Executor


class Interrupted(Exception):
    """ComfyUI's InterruptProcessingException."""


def _now_ms() -> int:
    return int(time.time() * 1000)


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
        self.hub.send(
            "progress_state", {"prompt_id": self.prompt_id, "nodes": nodes}, self.client_id
        )

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
    """What a node sees while it runs (implements node_base.RunContext)."""

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
        """ComfyUI's progress hook: raises if interrupted, else progress_state and progress.

        A preview goes out as a type 4 frame before `progress` to clients that
        announced supports_preview_metadata, else as type 1 after it.
        """
        self.check_interrupted()
        run, hub, sid = self.run, self.run.hub, self.run.client_id
        run.update_progress(self.node_id, value, total)
        fmt, encoded = (preview[0], _encode_preview(*preview)) if preview else ("", b"")
        with_metadata = hub.supports(sid, "supports_preview_metadata")
        if encoded and with_metadata:
            metadata = {
                "node_id": self.node_id,
                "prompt_id": run.prompt_id,
                "display_node_id": self.node_id,
                "parent_node_id": None,
                "real_node_id": self.node_id,
            }
            hub.send_preview(fmt, encoded, sid, metadata)
        progress = {"value": value, "max": total, "prompt_id": run.prompt_id, "node": self.node_id}
        hub.send("progress", progress, sid)
        if encoded and not with_metadata:
            hub.send_preview(fmt, encoded, sid, None)
        await asyncio.sleep(0)


def _encode_preview(fmt: str, image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, quality=95, compress_level=1)
    return buffer.getvalue()
