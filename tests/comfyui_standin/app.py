"""The stand-in's state and its Starlette app, every route also under /api."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from .custom_nodes import CustomNodes
from .executor import Executor
from .hub import Hub, websocket_endpoint
from .node_base import Registry
from .nodes import IMAGE_NODES
from .paths import Dirs
from .prompt_queue import PromptQueue
from .routes import Api
from .save_nodes import SAVE_NODES
from .standin_nodes import STANDIN_NODES

DEFAULT_MAX_UPLOAD_MB = 100.0
#: seconds each stock node waits, so that events spread out a little as on a GPU
DEFAULT_SPEED = 0.01


@dataclass
class Standin:
    """Everything one stand-in server holds."""

    dirs: Dirs
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB
    speed: float = DEFAULT_SPEED
    registry: Registry = field(default_factory=Registry)
    custom_nodes_dir: Path | None = None

    def __post_init__(self) -> None:
        self.registry.add(*IMAGE_NODES, *SAVE_NODES, *STANDIN_NODES)
        self.custom = CustomNodes()
        if self.custom_nodes_dir is not None:
            self.custom.load(self.custom_nodes_dir)
            self.registry.add(*self.custom.nodes)
        self.hub = Hub(self.features)
        self.queue = PromptQueue(self._queue_changed)
        self.executor = Executor(self.registry, self.dirs, self.hub, self.queue, self.speed)

    @property
    def max_upload_bytes(self) -> int:
        return round(self.max_upload_mb * 1024 * 1024)

    @property
    def features(self) -> dict[str, Any]:
        size = self.max_upload_mb * 1024 * 1024
        return {
            "supports_preview_metadata": True,
            "max_upload_size": int(size) if float(size).is_integer() else size,
        }

    def queue_info(self) -> dict[str, Any]:
        return {"exec_info": {"queue_remaining": self.queue.remaining()}}

    def _queue_changed(self) -> None:
        self.hub.send("status", {"status": self.queue_info()})

    def on_connect(self, sid: str) -> list[tuple[str, Any]]:
        messages: list[tuple[str, Any]] = [("status", {"status": self.queue_info(), "sid": sid})]
        current = self.executor.current
        if current is not None and current.client_id == sid and self.executor.last_node_id:
            messages.append(("executing", {"node": self.executor.last_node_id}))
        return messages


def create_app(
    data_dir: str | Path,
    *,
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
    speed: float = DEFAULT_SPEED,
    custom_nodes: str | Path | None = None,
) -> Starlette:
    """A ComfyUI stand-in whose input, output and temp folders live in `data_dir`.

    The app's `state.standin` is the `Standin` behind it.
    """
    standin = Standin(
        Dirs(Path(data_dir).resolve()),
        max_upload_mb=max_upload_mb,
        speed=speed,
        custom_nodes_dir=Path(custom_nodes) if custom_nodes else None,
    )
    standin.dirs.prepare()
    api = Api(standin)

    async def ws(websocket: WebSocket) -> None:
        await websocket_endpoint(websocket, standin.hub, standin.on_connect)

    routes: list[BaseRoute] = []
    for prefix in ("/api", ""):
        routes.append(WebSocketRoute(prefix + "/ws", ws))
        for method, path, handler in api.table():
            routes.append(Route(prefix + path, handler, methods=[method]))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(standin.executor.run_forever())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.standin = standin
    return app
