"""Submitting a prompt: one service behind both the platform API and ComfyUI's
POST /prompt, so validation, class rules and input discovery live once."""

from __future__ import annotations

from typing import Any

from comfy_multi.errors import Forbidden, NoWorkerYet, RequestError
from comfy_multi.queue.models import Job
from comfy_multi.services.files import split_annotated
from comfy_multi.services.object_info import for_user
from comfy_multi.services.platform import Platform
from comfy_multi.services.users import User
from comfy_multi.services.validation import validate_prompt


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


def has_input(platform: Platform, user: str, ref: str) -> bool:
    """Whether a prompt's file reference names a file in the user's input folder."""
    name, kind = split_annotated(ref)
    if kind not in (None, "input"):
        return False
    try:
        return platform.files.resolve(user, "input", "", name).is_file()
    except RequestError:
        return False


async def submit_checked(
    platform: Platform,
    user: User,
    prompt: Any,
    *,
    extra_data: dict[str, Any] | None = None,
    client_id: str | None = None,
    cls: int | None = None,
    front: bool = False,
    job_id: str | None = None,
    partial: list[str] | None = None,
) -> tuple[Job, dict[str, Any]]:
    """Validate against the node definitions as this user sees them (their own
    input files) and enqueue; also returns the node_errors of outputs that
    failed while others passed (ComfyUI runs the rest)."""
    merged = await platform.workers.merged_object_info()
    if not merged:
        raise NoWorkerYet()
    object_info = for_user(merged, platform.files.folder(user.name, "input"))
    checked = validate_prompt(
        prompt,
        object_info,
        partial=partial,
        input_exists=lambda ref: has_input(platform, user.name, ref),
    )
    if front and not user.admin:
        raise Forbidden("only the instructor can put a job at the front of the queue")
    job = await platform.queue.submit(
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
    return job, checked.node_errors
