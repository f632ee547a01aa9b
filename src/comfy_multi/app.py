"""The gateway: one ASGI app for participants, the instructor, workers and scripts.

The composition root: the only module that mounts the three faces (gateway,
comfy, admin) together; none of them imports another."""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from comfy_multi import __version__
from comfy_multi.admin.routes import router as admin_router
from comfy_multi.comfy.routes import router as comfy_router
from comfy_multi.gateway import (
    errors,
    feedback_api,
    health,
    pages,
    platform_api,
    session_api,
    worker_api,
)
from comfy_multi.gateway.headers import SecurityHeaders
from comfy_multi.gateway.limits import BodyLimit
from comfy_multi.gateway.origin import OriginCheck
from comfy_multi.services.auth import Authenticator
from comfy_multi.services.platform import open_platform
from comfy_multi.settings import Settings

MULTIPART_OVERHEAD = 1024 * 1024
SWITCH_INTERVAL_S = 0.001


def body_limits(settings: Settings):  # type: ignore[no-untyped-def]
    def limit_for(path: str) -> int:
        if path.startswith("/worker/v1/jobs/") and path.endswith("/outputs"):
            return settings.max_output_bytes
        if path == "/worker/v1/object_info":
            return settings.max_object_info_bytes
        if "/upload/" in path or "/userdata/" in path:
            return settings.max_upload_bytes + MULTIPART_OVERHEAD
        return settings.max_body_bytes

    return limit_for


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        platform = await open_platform(settings)
        app.state.platform = platform
        app.state.auth = Authenticator(platform)
        app.state.loop = asyncio.get_running_loop()
        # everything loaded so far lives as long as the process: keep it out of
        # the collector's way, which shortens the pauses that make slow requests
        gc.freeze()
        # heavy requests run in worker threads (comfy_multi.offload); hand the
        # GIL back to the event loop after 1 ms of their work, not Python's 5 ms
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        try:
            yield
        finally:
            await platform.close()

    app = FastAPI(
        title="comfy-multi platform API",
        version=__version__,
        description="Jobs, the shared queue, users and workers of a comfy-multi room.",
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    errors.install(app)
    app.add_middleware(BodyLimit, limit_for=body_limits(settings))
    app.add_middleware(OriginCheck, public_url=settings.public_url)
    app.add_middleware(SecurityHeaders)  # outermost: errors and 413s get the headers too
    app.include_router(platform_api.router)
    app.include_router(feedback_api.router)
    app.include_router(session_api.router)
    app.include_router(worker_api.router)
    app.include_router(health.router)
    app.include_router(admin_router)
    app.include_router(pages.router)
    app.include_router(comfy_router)
    return app


def create_app_from_environment() -> FastAPI:
    """The factory each process of `comfy-multi up --workers N` calls: the
    settings come from the environment `up` prepared."""
    from comfy_multi.settings import load_settings

    return create_app(load_settings())
