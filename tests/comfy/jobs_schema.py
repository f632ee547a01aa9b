"""The pinned frontend's `/jobs` schema (zod, in frontend 1.58.1's api-*.js), in Python.

The frontend parses `/api/jobs` with it and shows an empty queue and history
on any mismatch, without an error, so the gateway's replies are held to it.
"""

from __future__ import annotations

from typing import Any

STATUSES = {"pending", "in_progress", "completed", "failed", "cancelled"}
FILE_TYPES = {"input", "output", "temp"}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _optional(job: dict[str, Any], key: str, check: Any, *, nullable: bool = True) -> None:
    if key not in job:
        return
    value = job[key]
    if value is None:
        assert nullable, f"{key} may not be null"
        return
    assert check(value), f"{key} has the wrong type: {value!r}"


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def check_preview(item: Any) -> bool:
    assert isinstance(item, dict)
    assert isinstance(item.get("nodeId"), str), item
    assert isinstance(item.get("mediaType"), str), item
    for key in ("filename", "subfolder", "content", "display_name"):
        _optional(item, key, lambda v: isinstance(v, str), nullable=False)
    _optional(item, "type", lambda v: v in FILE_TYPES, nullable=False)
    return True


def check_error(error: Any) -> bool:
    assert isinstance(error, dict)
    for key in ("node_id", "node_type", "exception_message", "exception_type"):
        assert isinstance(error.get(key), str), (key, error)
    assert _strings(error.get("traceback")), error
    _optional(error, "prompt_id", lambda v: isinstance(v, str), nullable=False)
    _optional(error, "timestamp", _number, nullable=False)
    _optional(error, "executed", _strings, nullable=False)
    return True


def check_job(job: Any) -> None:
    """One item of `GET /jobs`."""
    assert isinstance(job, dict)
    assert isinstance(job.get("id"), str)
    assert job.get("status") in STATUSES, job.get("status")
    assert _number(job.get("create_time")), job
    _optional(job, "execution_start_time", _number)
    _optional(job, "execution_end_time", _number)
    _optional(job, "preview_output", check_preview)
    _optional(job, "outputs_count", lambda v: isinstance(v, int) and not isinstance(v, bool))
    _optional(
        job, "previewable_outputs_count", lambda v: isinstance(v, int) and not isinstance(v, bool)
    )
    _optional(job, "execution_error", check_error)
    _optional(job, "workflow_id", lambda v: isinstance(v, str))
    _optional(job, "priority", _number, nullable=False)


def check_file(item: Any) -> bool:
    assert isinstance(item, dict)
    for key in ("filename", "subfolder", "display_name", "id", "preview_id"):
        _optional(item, key, lambda v: isinstance(v, str), nullable=False)
    _optional(item, "type", lambda v: v in FILE_TYPES, nullable=False)
    return True


def check_outputs(outputs: Any) -> bool:
    assert isinstance(outputs, dict)
    for node in outputs.values():
        assert isinstance(node, dict)
        for media in ("audio", "images", "video"):
            _optional(
                node,
                media,
                lambda v: isinstance(v, list) and all(check_file(i) for i in v),
                nullable=False,
            )
        _optional(
            node,
            "animated",
            lambda v: isinstance(v, list) and all(isinstance(i, bool) for i in v),
            nullable=False,
        )
        _optional(node, "text", lambda v: isinstance(v, str) or _strings(v), nullable=False)
    return True


def check_detail(job: Any) -> None:
    """`GET /jobs/{id}`."""
    check_job(job)
    _optional(job, "workflow", lambda v: isinstance(v, dict), nullable=False)
    _optional(job, "outputs", check_outputs, nullable=False)
    _optional(job, "update_time", _number, nullable=False)
    _optional(job, "execution_status", lambda v: isinstance(v, dict), nullable=False)
    _optional(job, "execution_meta", lambda v: isinstance(v, dict), nullable=False)
    workflow = job.get("workflow")
    if isinstance(workflow, dict):
        extra = workflow.get("extra_data")
        assert extra is None or isinstance(extra, dict)


def check_list(body: Any) -> None:
    """A whole `GET /jobs` reply."""
    assert isinstance(body, dict)
    assert isinstance(body.get("jobs"), list)
    for job in body["jobs"]:
        check_job(job)
    page = body.get("pagination")
    assert isinstance(page, dict)
    for key in ("offset", "limit", "total"):
        assert _number(page.get(key)), (key, page)
    assert isinstance(page.get("has_more"), bool)
