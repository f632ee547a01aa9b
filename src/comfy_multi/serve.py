"""Run the gateway: one process, or N processes sharing one port (`--workers N`).

Several processes share nothing but Redis: every state change is a Lua script
and every event travels over pub/sub, so a participant's socket on one process
sees the jobs submitted through another.
"""

from __future__ import annotations

import os

import uvicorn

from comfy_multi.settings import Settings

GRACEFUL_SHUTDOWN_S = 5


def serve(settings: Settings, workers: int = 1) -> None:
    if workers == 1:
        from comfy_multi.app import create_app
        from comfy_multi.gateway.server import GatewayServer

        gateway = create_app(settings)
        config = uvicorn.Config(
            gateway,
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
            ws="websockets-sansio",
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        )
        GatewayServer(config, gateway).run()
        return
    # the worker processes are spawned afresh: they read their settings from
    # the environment, which must name this room's Redis and data dir
    os.environ["COMFY_MULTI_DATA_DIR"] = str(settings.data_dir)
    if settings.redis_url:
        os.environ["REDIS_URL"] = settings.redis_url
    uvicorn.run(
        "comfy_multi.app:create_app_from_environment",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=workers,
        log_config=None,
        access_log=False,
        ws="websockets-sansio",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
