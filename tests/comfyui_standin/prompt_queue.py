"""The prompt queue (lowest number first) and the history of finished prompts."""

from __future__ import annotations

import asyncio
import copy
import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: extra_data keys ComfyUI keeps out of history
SENSITIVE_EXTRA_DATA_KEYS = ("auth_token_comfy_org", "api_key_comfy_org")
MAXIMUM_HISTORY_SIZE = 10000


@dataclass(order=True)
class QueueItem:
    number: float
    seq: int
    prompt_id: str = field(compare=False)
    prompt: dict[str, Any] = field(compare=False)
    extra_data: dict[str, Any] = field(compare=False)
    outputs: list[str] = field(compare=False)

    def as_list(self) -> list[Any]:
        """ComfyUI's queue item: [number, prompt_id, prompt, extra_data, outputs_to_execute]."""
        return [self.number, self.prompt_id, self.prompt, self.extra_data, self.outputs]


class PromptQueue:
    """Pending prompts, the running one, and history; `on_change` runs on every queue change."""

    def __init__(self, on_change: Callable[[], None]) -> None:
        self._heap: list[QueueItem] = []
        self._seq = itertools.count()
        self._wakeup = asyncio.Event()
        self._on_change = on_change
        self.running: dict[str, QueueItem] = {}
        self.history: dict[str, dict[str, Any]] = {}

    def put(
        self,
        number: float,
        prompt_id: str,
        prompt: dict[str, Any],
        extra_data: dict[str, Any],
        outputs: list[str],
    ) -> None:
        heapq.heappush(
            self._heap, QueueItem(number, next(self._seq), prompt_id, prompt, extra_data, outputs)
        )
        self._wakeup.set()
        self._on_change()

    async def get(self) -> QueueItem:
        while not self._heap:
            self._wakeup.clear()
            await self._wakeup.wait()
        item = heapq.heappop(self._heap)
        self.running[item.prompt_id] = copy.deepcopy(item)
        self._on_change()
        return item

    def task_done(self, item: QueueItem, result: dict[str, Any], status: dict[str, Any]) -> None:
        running = self.running.pop(item.prompt_id, item)
        if len(self.history) > MAXIMUM_HISTORY_SIZE:
            self.history.pop(next(iter(self.history)))
        for key in SENSITIVE_EXTRA_DATA_KEYS:
            running.extra_data.pop(key, None)
        self.history[item.prompt_id] = {
            "prompt": running.as_list(),
            "outputs": {},
            "status": copy.deepcopy(status),
            **result,
        }
        self._on_change()

    def remaining(self) -> int:
        return len(self._heap) + len(self.running)

    def pending(self) -> list[list[Any]]:
        return [item.as_list() for item in sorted(self._heap)]

    def wipe(self) -> None:
        self._heap = []
        self._on_change()

    def delete(self, prompt_id: str) -> bool:
        for index, item in enumerate(self._heap):
            if item.prompt_id == prompt_id:
                self._heap.pop(index)
                heapq.heapify(self._heap)
                self._on_change()
                return True
        return False

    def get_history(
        self, prompt_id: str | None = None, max_items: int | None = None, offset: int = -1
    ) -> dict[str, Any]:
        """ComfyUI's get_history: one entry by id, or a window of the oldest-first history."""
        if prompt_id is not None:
            entry = self.history.get(prompt_id)
            return {prompt_id: copy.deepcopy(entry)} if entry is not None else {}
        if offset < 0 and max_items is not None:
            offset = len(self.history) - max_items
        out: dict[str, Any] = {}
        for index, (key, entry) in enumerate(self.history.items()):
            if index >= offset:
                out[key] = entry
                if max_items is not None and len(out) >= max_items:
                    break
        return out

    def delete_history(self, prompt_id: str) -> None:
        self.history.pop(prompt_id, None)

    def wipe_history(self) -> None:
        self.history = {}
