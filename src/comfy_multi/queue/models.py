"""Job and worker shapes as stored in Redis and shown through the APIs."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import orjson
from pydantic import BaseModel, Field


class JobState(StrEnum):
    PENDING = "pending"  #: waiting in the queue
    RUNNING = "running"  #: claimed by a worker, under lease
    DONE = "done"  #: finished, outputs recorded
    FAILED = "failed"  #: ComfyUI error, or the worker was lost too often
    CANCELLED = "cancelled"  #: by its user or an admin

    @property
    def final(self) -> bool:
        return self in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


class QueueMode(StrEnum):
    FAIR = "fair"  #: round-robin over users
    FIFO = "fifo"  #: oldest arrival first


class InputRef(BaseModel):
    """A file from the user's input folder that the prompt refers to."""

    filename: str
    subfolder: str = ""
    type: str = "input"
    ref: str  # the exact string used in the prompt


def _json(value: str | None, default: Any) -> Any:
    return orjson.loads(value) if value else default


def _int(value: str | None) -> int | None:
    return int(float(value)) if value not in (None, "") else None


class Job(BaseModel):
    id: str
    user: str
    state: JobState
    cls: int = Field(description="priority class, 0 is most urgent")
    seq: int = Field(description="place in the queue; lower runs first")
    prompt: dict[str, Any] = Field(default_factory=dict)
    extra_data: dict[str, Any] = Field(default_factory=dict)
    client_id: str | None = None
    needs: list[str] = Field(default_factory=list)
    inputs: list[InputRef] = Field(default_factory=list)
    queued_ms: int
    started_ms: int | None = None
    finished_ms: int | None = None
    attempts: int = 0
    worker: str | None = None
    outputs: dict[str, Any] = Field(default_factory=dict)
    meta: dict[str, Any] = Field(default_factory=dict)
    error: dict[str, Any] | None = None
    token: int = 0

    @classmethod
    def from_hash(cls, h: dict[str, str]) -> Job:
        return cls(
            id=h["id"],
            user=h["user"],
            state=JobState(h["state"]),
            cls=int(h["cls"]),
            seq=int(float(h["seq"])),
            prompt=_json(h.get("prompt"), {}),
            extra_data=_json(h.get("extra_data"), {}),
            client_id=h.get("client_id") or None,
            needs=_json(h.get("needs"), []),
            inputs=_json(h.get("inputs"), []),
            queued_ms=_int(h.get("queued_ms")) or 0,
            started_ms=_int(h.get("started_ms")),
            finished_ms=_int(h.get("finished_ms")),
            attempts=_int(h.get("attempts")) or 0,
            worker=h.get("worker") or None,
            outputs=_json(h.get("outputs"), {}),
            meta=_json(h.get("meta"), {}),
            error=_json(h.get("error"), None),
            token=_int(h.get("token")) or 0,
        )

    def public(self, *, with_prompt: bool = True) -> dict[str, Any]:
        """The API shape: everything but the fencing token."""
        exclude = {"token"} if with_prompt else {"token", "prompt", "extra_data"}
        return self.model_dump(mode="json", exclude=exclude)


# A worker's own message beside ComfyUI's: the node a job is on, n of m, and
# that node's progress (worker/steps.py makes it, pages and the dashboard show it).
STEP_MESSAGE = "comfy_multi.step"


class ClaimedJob(BaseModel):
    """What a worker receives from a claim."""

    job_id: str
    lease_token: int
    lease_seconds: float
    attempt: int
    user: str
    prompt: dict[str, Any]
    extra_data: dict[str, Any]
    inputs: list[InputRef]
    timeout_seconds: float | None


class QueueConfig(BaseModel):
    mode: QueueMode = QueueMode.FAIR
    paused: bool = False
    default_cap: int = Field(description="pending jobs per user; 0 = no cap")
