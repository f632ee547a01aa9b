"""POST /prompt (ComfyUI server.py `post_prompt`) onto the platform's one submit
service, and GET /prompt for the frontend's polling fallback.

Every refusal, including "no GPU worker yet" and the per-user cap, comes back
in ComfyUI's `{error: {type, message, details, extra_info}, node_errors}`
shape, which the frontend shows in its error dialog.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from comfy_multi.comfy import userjobs
from comfy_multi.comfy.access import Participant
from comfy_multi.errors import PromptInvalid, QueueFull, RequestError
from comfy_multi.services import jsonbody, offload
from comfy_multi.services.auth import PlatformDep
from comfy_multi.services.submit import submit_checked
from comfy_multi.wording import sentence

router = APIRouter()

CANONICAL_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MAX_CLIENT_ID = 200


def comfy_error(kind: str, message: str, status: int, details: str = "") -> JSONResponse:
    body = {
        "error": {"type": kind, "message": message, "details": details, "extra_info": {}},
        "node_errors": {},
    }
    return JSONResponse(body, status_code=status)


def _fields(
    body: dict[str, Any],
) -> tuple[dict[str, Any], str | None, list[str] | None] | JSONResponse:
    extra = body.get("extra_data") or {}
    if not isinstance(extra, dict):
        return comfy_error("invalid_prompt", "extra_data must be an object", 400)
    client_id = body.get("client_id")
    if client_id is not None and (not isinstance(client_id, str) or len(client_id) > MAX_CLIENT_ID):
        return comfy_error("invalid_prompt", "client_id must be a short string", 400)
    partial = body.get("partial_execution_targets")
    if partial is not None and not isinstance(partial, list):
        return comfy_error(
            "invalid_prompt", "partial_execution_targets must be a list of node ids", 400
        )
    return extra, client_id or None, [str(p) for p in partial] if partial is not None else None


@router.post("/prompt")
async def post_prompt(request: Request, user: Participant, platform: PlatformDep) -> JSONResponse:
    async with offload.turn(user.name):  # a large prompt costs memory and CPU: one at a time
        return await _post_prompt(request, user, platform)


async def _post_prompt(request: Request, user: Participant, platform: PlatformDep) -> JSONResponse:
    try:
        body = await jsonbody.read(request)
    except jsonbody.TooDeep as exc:
        return comfy_error("invalid_prompt", exc.message, 400)
    except jsonbody.NotJson:
        return comfy_error("invalid_prompt", "The request body is not valid JSON", 400)
    if not isinstance(body, dict):
        return comfy_error("invalid_prompt", "The request body must be a JSON object", 400)
    if body.get("prompt") is None:
        return comfy_error("no_prompt", "No prompt provided", 400)
    prompt_id = body.get("prompt_id")
    if prompt_id is not None and not (
        isinstance(prompt_id, str) and CANONICAL_UUID.match(prompt_id)
    ):
        return comfy_error(
            "invalid_prompt_id", "prompt_id must be a canonical lowercase UUID", 400, str(prompt_id)
        )
    fields = _fields(body)
    if isinstance(fields, JSONResponse):
        return fields
    extra_data, client_id, partial = fields
    try:
        job, checked = await submit_checked(
            platform,
            user,
            body["prompt"],
            extra_data=extra_data,
            client_id=client_id,
            # "queue front" is the instructor's privilege; a participant's job queues normally
            front=bool(body.get("front")) and user.admin,
            job_id=prompt_id,
            partial=partial,
        )
    except PromptInvalid as exc:
        return JSONResponse(exc.body(), status_code=exc.status)
    except QueueFull as exc:
        # a short heading ComfyUI's error panel has room for, the sentence below it
        return comfy_error(exc.code, exc.title, exc.status, exc.message)
    except RequestError as exc:
        return comfy_error(exc.code, sentence(exc.message), exc.status)
    reply: dict[str, Any] = {
        "prompt_id": job.id,
        "number": job.seq,
        "node_errors": checked.node_errors,
    }
    if checked.omitted:
        reply["node_errors_omitted"] = checked.omitted
    return JSONResponse(reply)


@router.get("/prompt")
async def get_prompt(user: Participant, platform: PlatformDep) -> dict[str, Any]:
    return {"exec_info": {"queue_remaining": await userjobs.remaining(platform, user.name)}}
