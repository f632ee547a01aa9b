"""Serving the stand-in with uvicorn on a loopback port, in-process or from the command line."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from starlette.applications import Starlette

from .app import DEFAULT_MAX_UPLOAD_MB, DEFAULT_SPEED, Standin, create_app

#: how long to wait for uvicorn to start listening
STARTUP_TIMEOUT = 10.0


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say TCP
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


@dataclass
class RunningStandin:
    """A stand-in served by uvicorn in the current event loop."""

    url: str
    app: Starlette
    server: uvicorn.Server
    task: asyncio.Task[None]
    sock: socket.socket

    @property
    def standin(self) -> Standin:
        standin: Standin = self.app.state.standin
        return standin

    async def stop(self) -> None:
        self.server.should_exit = True
        try:
            await self.task
        finally:
            self.sock.close()


async def start(
    data_dir: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
    speed: float = DEFAULT_SPEED,
    custom_nodes: str | Path | None = None,
) -> RunningStandin:
    """Start serving; returns once uvicorn listens (port 0 picks a free port)."""
    app = create_app(data_dir, max_upload_mb=max_upload_mb, speed=speed, custom_nodes=custom_nodes)
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="on", ws="websockets-sansio"
    )
    server = uvicorn.Server(config)
    sock = bind(host, port)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    running = RunningStandin(f"http://{shown}:{bound_port}", app, server, task, sock)
    try:
        async with asyncio.timeout(STARTUP_TIMEOUT):
            while not server.started:
                if task.done():
                    task.result()
                    raise RuntimeError("the stand-in stopped before it started")
                await asyncio.sleep(0.01)
    except BaseException:
        await running.stop()
        raise
    return running


@contextlib.asynccontextmanager
async def serve(
    data_dir: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
    speed: float = DEFAULT_SPEED,
    custom_nodes: str | Path | None = None,
) -> AsyncIterator[RunningStandin]:
    """Run a stand-in in this event loop for the duration of the block."""
    running = await start(
        data_dir,
        host=host,
        port=port,
        max_upload_mb=max_upload_mb,
        speed=speed,
        custom_nodes=custom_nodes,
    )
    try:
        yield running
    finally:
        await running.stop()
