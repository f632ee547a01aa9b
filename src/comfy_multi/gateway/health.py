"""`/health`: is Redis reachable, are workers online, how deep is the queue."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError

from comfy_multi.services.auth import PlatformDep

router = APIRouter(include_in_schema=False)


@router.get("/health")
async def health(platform: PlatformDep) -> JSONResponse:
    body: dict[str, Any] = {"status": "ok"}
    try:
        await platform.redis.ping()
        depth = await platform.views.depth()
        body.update(
            redis="ok",
            workers_online=await platform.workers.online_count(),
            queue_depth=sum(depth.values()),
            running=len(await platform.views.running_ids()),
            paused=(await platform.queue.config()).paused,
        )
        return JSONResponse(body)
    except RedisError as exc:
        body.update(status="unavailable", redis=f"error: {exc}")
        return JSONResponse(body, status_code=503)
