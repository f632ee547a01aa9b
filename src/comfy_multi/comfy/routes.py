"""ComfyUI's server API per user, under /u/<user>/.

ComfyUI serves every API route both under `/api` and at the root; the
frontend uses `/api`, scripts written for ComfyUI often the root, so both
prefixes are mounted. The frontend's static bundle is the catch-all and comes
last.
"""

from __future__ import annotations

from fastapi import APIRouter

from comfy_multi.comfy import files, frontend, jobs, prompt, system, userdata, ws

api = APIRouter()
for part in (system.router, prompt.router, jobs.router, files.router, userdata.router):
    api.include_router(part)

router = APIRouter(include_in_schema=False)
router.include_router(api, prefix="/u/{name}/api")
router.include_router(api, prefix="/u/{name}")
router.include_router(system.internal, prefix="/u/{name}/internal")
router.include_router(ws.router)
router.include_router(frontend.router)
