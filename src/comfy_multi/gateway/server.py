"""uvicorn for the gateway: tells the app the moment it starts stopping, so
long-polls answer at once instead of holding the shutdown for the graceful
timeout (and ending in a cancelled-task traceback)."""

from __future__ import annotations

import asyncio
from types import FrameType

import uvicorn
from fastapi import FastAPI


class GatewayServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self.app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        platform = getattr(self.app.state, "platform", None)
        loop: asyncio.AbstractEventLoop | None = getattr(self.app.state, "loop", None)
        if platform is not None and loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(platform.stopping.set)
        super().handle_exit(sig, frame)
