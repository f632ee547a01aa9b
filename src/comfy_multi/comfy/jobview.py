"""A platform job in ComfyUI's shapes: `/jobs` items (comfy_execution/jobs.py),
`/queue` items, `/history` entries and `execution_error` payloads.

The pinned frontend parses `/jobs` with a strict schema and shows an empty
list on any mismatch, so every field here keeps the exact type it expects
(numbers for times, strings for node ids, `type` one of input/output/temp).
"""

from __future__ import annotations

from typing import Any

from comfy_multi.queue.models import Job, JobState
from comfy_multi.services import outputs as output_rules

STATUS = {
    JobState.PENDING: "pending",
    JobState.RUNNING: "in_progress",
    JobState.DONE: "completed",
    JobState.FAILED: "failed",
    JobState.CANCELLED: "cancelled",
}
ALL_STATUSES = ("pending", "in_progress", "completed", "failed", "cancelled")
FILE_TYPES = ("input", "output", "temp")
# ComfyUI keeps the participant's comfy.org credentials out of queue and history
PRIVATE_EXTRA = ("auth_token_comfy_org", "api_key_comfy_org")


def visible(job: Job) -> bool:
    """A waiting job removed before it ran vanishes, as a deleted queue item
    does in ComfyUI; everything else shows in the participant's history."""
    return not (job.state == JobState.CANCELLED and job.started_ms is None)


def extra_data(job: Job) -> dict[str, Any]:
    out = {k: v for k, v in job.extra_data.items() if k not in PRIVATE_EXTRA}
    if job.client_id:
        out["client_id"] = job.client_id
    out.setdefault("create_time", job.queued_ms)
    return out


def workflow_id(job: Job) -> str | None:
    pnginfo = job.extra_data.get("extra_pnginfo")
    workflow = pnginfo.get("workflow") if isinstance(pnginfo, dict) else None
    value = workflow.get("id") if isinstance(workflow, dict) else None
    return value if isinstance(value, str) else None


def outputs_summary(outputs: dict[str, Any]) -> tuple[int, int, dict[str, Any] | None]:
    """(count, previewable count, preview item). Previewable follows the
    frontend's rule (services.outputs); ComfyUI prefers an `output` file for
    the preview, else the first temp one."""
    count = sum(
        len(items)
        for node_outputs in outputs.values()
        if isinstance(node_outputs, dict)
        for media_type, items in node_outputs.items()
        if media_type != "animated" and isinstance(items, list)
    )
    previewable = 0
    preview: dict[str, Any] | None = None
    fallback: dict[str, Any] | None = None
    for node_id, media_type, item in output_rules.file_items(outputs):
        if not output_rules.is_previewable(media_type, item):
            continue
        previewable += 1
        enriched = {"subfolder": "", **item, "nodeId": node_id, "mediaType": media_type}
        if preview is None and item.get("type") == "output":
            preview = enriched
        elif fallback is None:
            fallback = enriched
    return count, previewable, preview or fallback


def execution_error(job: Job) -> dict[str, Any]:
    return error_payload(job.id, job.error, job.finished_ms or job.started_ms or job.queued_ms)


def error_payload(job_id: str, error: dict[str, Any] | None, timestamp: int) -> dict[str, Any]:
    """ComfyUI's execution_error payload for a failed job, built from what the
    worker reported (ComfyUI's own payload passes through) or the platform's
    own reason (a lost worker, a timeout)."""
    error = error or {}
    base: dict[str, Any] = {
        "prompt_id": job_id,
        "timestamp": timestamp,
        "node_id": "",
        "node_type": "",
        "executed": [],
        "exception_message": "",
        "exception_type": "",
        "traceback": [],
        "current_inputs": {},
        "current_outputs": {},
    }
    if "exception_message" in error:
        base.update({k: v for k, v in error.items() if k in base})
        base["prompt_id"] = job_id
    elif isinstance(error.get("error"), dict):  # ComfyUI refused the prompt (/prompt 400 body)
        inner = error["error"]
        details = f": {inner['details']}" if inner.get("details") else ""
        base["exception_message"] = f"{inner.get('message', 'invalid prompt')}{details}"
        base["exception_type"] = str(inner.get("type", "invalid_prompt"))
    else:
        base["exception_message"] = str(
            error.get("message") or error.get("type") or "the job failed"
        )
        base["exception_type"] = str(error.get("type") or "error")
    # the frontend's schema wants these exact types
    base["node_id"] = "" if base["node_id"] is None else str(base["node_id"])
    base["node_type"] = "" if base["node_type"] is None else str(base["node_type"])
    base["exception_message"] = str(base["exception_message"])
    base["exception_type"] = str(base["exception_type"])
    base["traceback"] = (
        [str(t) for t in base["traceback"]] if isinstance(base["traceback"], list) else []
    )
    base["executed"] = (
        [str(n) for n in base["executed"]] if isinstance(base["executed"], list) else []
    )
    return base


def job_item(job: Job) -> dict[str, Any]:
    """One `/jobs` list item."""
    count, previewable, preview = outputs_summary(job.outputs)
    item: dict[str, Any] = {
        "id": job.id,
        "status": STATUS[job.state],
        "priority": job.seq,
        "create_time": job.queued_ms,
        "outputs_count": count,
        "previewable_outputs_count": previewable,
    }
    if job.started_ms is not None:
        item["execution_start_time"] = job.started_ms
        if job.state.final and job.finished_ms is not None:
            item["execution_end_time"] = job.finished_ms
    if preview is not None:
        item["preview_output"] = preview
    if job.state == JobState.FAILED:
        item["execution_error"] = execution_error(job)
    wid = workflow_id(job)
    if wid is not None:
        item["workflow_id"] = wid
    return item


def status_info(job: Job) -> dict[str, Any]:
    """A history entry's `status`: ComfyUI's status_str, completed and messages."""
    messages: list[list[Any]] = []
    if job.started_ms is not None:
        start = {"prompt_id": job.id, "timestamp": job.started_ms}
        messages.append(["execution_start", start])
        messages.append(["execution_cached", {"nodes": [], **start}])
    end = {"prompt_id": job.id, "timestamp": job.finished_ms}
    if job.state == JobState.DONE:
        messages.append(["execution_success", end])
    elif job.state == JobState.FAILED:
        messages.append(["execution_error", execution_error(job)])
    elif job.state == JobState.CANCELLED:
        interrupted: dict[str, Any] = {"node_id": None, "node_type": None, "executed": [], **end}
        messages.append(["execution_interrupted", interrupted])
    done = job.state == JobState.DONE
    return {"status_str": "success" if done else "error", "completed": done, "messages": messages}


def job_detail(job: Job) -> dict[str, Any]:
    """`/jobs/{id}`: the list item plus outputs, status and the workflow."""
    item = job_item(job)
    item["outputs"] = job.outputs
    item["execution_status"] = status_info(job) if job.state.final else {}
    item["workflow"] = {"prompt": job.prompt, "extra_data": extra_data(job)}
    if job.finished_ms is not None:
        item["update_time"] = job.finished_ms
    return item


def output_nodes(job: Job, object_info: dict[str, Any]) -> list[str]:
    return [
        str(node_id)
        for node_id, node in job.prompt.items()
        if isinstance(node, dict)
        and object_info.get(str(node.get("class_type")), {}).get("output_node")
    ]


def queue_item(job: Job, object_info: dict[str, Any]) -> list[Any]:
    """ComfyUI's `[number, prompt_id, prompt, extra_data, outputs_to_execute]`."""
    return [job.seq, job.id, job.prompt, extra_data(job), output_nodes(job, object_info)]


def history_entry(job: Job, object_info: dict[str, Any]) -> dict[str, Any]:
    return {
        "prompt": queue_item(job, object_info),
        "outputs": job.outputs,
        "status": status_info(job),
        "meta": job.meta,
    }
