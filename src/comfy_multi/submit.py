"""Submitting a prompt: one service behind both the platform API and ComfyUI's
POST /prompt, so validation, class rules and input discovery live once."""

from __future__ import annotations

from typing import Any

from comfy_multi.comfy.validation import validate_prompt
from comfy_multi.errors import Forbidden, NoWorkerYet
from comfy_multi.gateway.platform import Platform
from comfy_multi.queue.models import Job
from comfy_multi.users import User


def job_class(platform: Platform, user: User, requested: int | None) -> int:
    """Participants may only ask for their own class or a less urgent one."""
    default = platform.settings.admin_class if user.admin else platform.settings.participant_class
    if requested is None:
        return default
    if requested < default and not user.admin:
        raise Forbidden(
            f"participants queue in class {default} or later; "
            "only the instructor can queue more urgently"
        )
    return requested


async def submit_prompt(
    platform: Platform,
    user: User,
    prompt: Any,
    *,
    extra_data: dict[str, Any] | None = None,
    client_id: str | None = None,
    cls: int | None = None,
    front: bool = False,
    job_id: str | None = None,
) -> Job:
    object_info = await platform.workers.merged_object_info()
    if not object_info:
        raise NoWorkerYet()
    validate_prompt(prompt, object_info)
    if front and not user.admin:
        raise Forbidden("only the instructor can put a job at the front of the queue")
    return await platform.queue.submit(
        user.name,
        prompt,
        cls=job_class(platform, user, cls),
        extra_data=extra_data,
        client_id=client_id,
        needs=sorted({str(node["class_type"]) for node in prompt.values()}),
        inputs=platform.files.input_refs(user.name, prompt),
        front=front,
        job_id=job_id,
    )
