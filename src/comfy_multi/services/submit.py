"""Submitting a prompt: one service behind both the platform API and ComfyUI's
POST /prompt, so validation, class rules and input discovery live once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from comfy_multi.errors import BadRequest, Forbidden, NoWorkerYet
from comfy_multi.queue.models import InputRef, Job
from comfy_multi.services import offload
from comfy_multi.services.jsonbody import MAX_DEPTH, too_deep
from comfy_multi.services.object_info import for_user, upload_inputs
from comfy_multi.services.platform import Platform
from comfy_multi.services.users import User
from comfy_multi.services.validation import Validated, validate_prompt


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


INLINE_NODES = 300  # prompts up to this size are checked on the event loop


@dataclass
class Checked:
    validated: Validated
    inputs: list[InputRef]  # the user's input files the prompt names
    needs: list[str]  # the node classes a worker must offer


def check(
    platform: Platform,
    user: str,
    prompt: Any,
    extra_data: dict[str, Any] | None,
    merged: dict[str, Any],
    partial: list[str] | None,
) -> Checked:
    """Everything about a prompt that costs time in proportion to its size:
    run in a worker thread (`offload`), never on the event loop."""
    for part in (prompt, extra_data):
        if isinstance(part, dict | list) and too_deep(part):
            raise BadRequest(f"the prompt nests more than {MAX_DEPTH} levels deep")
    files = platform.files
    object_info = for_user(merged, files.folder(user, "input"))
    seen: dict[str, bool] = {}  # a hundred LoadImage nodes of one picture: one look

    def input_exists(ref: str) -> bool:
        if ref not in seen:
            seen[ref] = files.has_input(user, ref)
        return seen[ref]

    validated = validate_prompt(prompt, object_info, partial=partial, input_exists=input_exists)
    classes = {str(node["class_type"]) for node in prompt.values()}
    upload_names = {
        cls: {name for _, name, _ in found}
        for cls in classes
        if (found := upload_inputs(merged[cls]))
    }
    return Checked(validated, files.input_refs(user, prompt, upload_names), sorted(classes))


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
) -> tuple[Job, Validated]:
    """Validate against the node definitions as this user sees them (their own
    input files) and enqueue; also returns the verdict, whose node_errors are
    those of outputs that failed while others passed (ComfyUI runs the rest)."""
    merged = await platform.workers.merged_object_info()
    if not merged:
        raise NoWorkerYet()
    args = (platform, user.name, prompt, extra_data, merged, partial)
    if isinstance(prompt, dict) and len(prompt) <= INLINE_NODES:
        checked = check(*args)  # a few milliseconds: not worth queueing behind a large one
    else:
        checked = await offload.run("cpu", check, *args)
    if front and not user.admin:
        raise Forbidden("only the instructor can put a job at the front of the queue")
    job = await platform.queue.submit(
        user.name,
        prompt,
        cls=job_class(platform, user, cls),
        extra_data=extra_data,
        client_id=client_id,
        needs=checked.needs,
        inputs=checked.inputs,
        front=front,
        job_id=job_id,
    )
    return job, checked.validated
