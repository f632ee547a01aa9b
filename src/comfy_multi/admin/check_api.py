"""The dashboard's "Run pre-flight check" button: the same checks as `comfy-multi check`."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request

from comfy_multi.admin import sheet
from comfy_multi.errors import Conflict, Forbidden
from comfy_multi.services.auth import AdminUser, PlatformDep, same_origin
from comfy_multi.services.preflight import preflight

router = APIRouter(prefix="/api/v1", tags=["platform"])
JOB_TIMEOUT_S = 120.0
_running = asyncio.Lock()  # a second click waits for nothing: one check at a time


@router.post("/check")
async def run_check(request: Request, _: AdminUser, platform: PlatformDep) -> dict[str, Any]:
    """Run the pre-flight check; `ok` is false when any line is red."""
    if not same_origin(request):
        raise Forbidden("cross-site request refused: the Origin is not this gateway")
    if _running.locked():
        raise Conflict("a pre-flight check is already running; its result comes shortly")
    async with _running:
        public = sheet.base_url(platform, request)
        lines = [
            line.as_dict()
            async for line in preflight(platform, public, job_timeout_s=JOB_TIMEOUT_S)
        ]
    return {"ok": not any(line["ok"] is False for line in lines), "lines": lines}
