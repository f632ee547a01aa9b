"""A job's input files: fetched from the gateway, uploaded to ComfyUI, references rewritten."""

from __future__ import annotations

import hashlib
import logging
import mimetypes
from dataclasses import dataclass
from typing import Any

from comfy_multi.wire import ClaimedJob, InputRef
from comfy_multi.worker.channel import Channel
from comfy_multi.worker.comfyui import ComfyUI
from comfy_multi.worker.errors import GatewayUnavailable
from comfy_multi.worker.multipart import safe_filename
from comfy_multi.worker.retry import retrying

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StagedInput:
    ref: str  # the string the user's prompt used
    name: str  # as ComfyUI stored it
    subfolder: str

    @property
    def comfy_ref(self) -> str:
        """How a ComfyUI prompt names a file in a subfolder of its input folder."""
        return f"{self.subfolder}/{self.name}" if self.subfolder else self.name


def job_folder(job: ClaimedJob) -> str:
    """The job's own input subfolder on ComfyUI; one per claim, so attempts never
    share. Named by a digest of the lease token: the token itself stays secret."""
    return f"cm-{job.job_id}-{hashlib.sha256(job.lease_token.encode()).hexdigest()[:12]}"


def _unique_names(inputs: list[InputRef]) -> list[str]:
    names: list[str] = []
    taken: set[str] = set()
    for index, item in enumerate(inputs):
        name = safe_filename(item.filename)
        if name.lower() in taken:
            name = f"{index}-{name}"
        taken.add(name.lower())
        names.append(name)
    return names


async def stage_inputs(job: ClaimedJob, channel: Channel, comfy: ComfyUI) -> list[StagedInput]:
    """Copy every input file of the job into its folder on ComfyUI.

    Streams gateway -> ComfyUI; a gateway hiccup restarts that file. Raises
    ``NotFound`` when the gateway has no such file and ``ComfyUIUnavailable``
    when ComfyUI cannot take it.
    """
    folder = job_folder(job)
    staged: list[StagedInput] = []
    seen: dict[tuple[str, str, str], StagedInput] = {}
    for item, name in zip(job.inputs, _unique_names(list(job.inputs)), strict=True):
        key = (item.filename, item.subfolder, item.type)
        if key in seen:
            staged.append(StagedInput(item.ref, seen[key].name, seen[key].subfolder))
            continue

        async def copy(item: InputRef = item, name: str = name) -> dict[str, Any]:
            async with channel.input_file(job, item) as response:
                size = _length(response.headers)
                content_type = response.headers.get("content-type") or (
                    mimetypes.guess_type(name)[0] or "application/octet-stream"
                )
                return await comfy.upload_input(
                    filename=name,
                    subfolder=folder,
                    content=channel.chunks(response),
                    size=size,
                    content_type=content_type,
                )

        answer = await retrying(
            copy,
            backoff=channel.backoff,
            what=f"job {job.job_id}: copy input {item.ref!r}",
            retry_on=(GatewayUnavailable,),
        )
        result = StagedInput(
            item.ref, str(answer.get("name") or name), str(answer.get("subfolder", folder))
        )
        logger.debug("job %s: input %r is %r on ComfyUI", job.job_id, item.ref, result.comfy_ref)
        seen[key] = result
        staged.append(result)
    return staged


def _length(headers: Any) -> int | None:
    if headers.get("content-encoding"):
        return None
    value = headers.get("content-length")
    return int(value) if value and value.isdigit() else None


def rewrite_prompt(prompt: dict[str, Any], staged: list[StagedInput]) -> dict[str, Any]:
    """A copy of the prompt whose input values name the staged files.

    Only whole string values equal to an input's ``ref`` change; links
    (``[node, slot]``) and other values stay as they are.
    """
    mapping = {s.ref: s.comfy_ref for s in staged}
    if not mapping:
        return prompt
    out: dict[str, Any] = {}
    for node_id, node in prompt.items():
        if not isinstance(node, dict) or not isinstance(node.get("inputs"), dict):
            out[node_id] = node
            continue
        inputs = {
            name: mapping.get(value, value) if isinstance(value, str) else value
            for name, value in node["inputs"].items()
        }
        out[node_id] = {**node, "inputs": inputs}
    return out
