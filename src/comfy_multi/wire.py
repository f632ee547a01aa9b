"""The worker protocol ``/worker/v1``: every request and answer, as both sides see it.

The gateway (``gateway/worker_api.py``) validates requests and builds answers with
these models; the worker (``worker/channel.py``) builds requests and parses answers
with the same ones, so a change here changes both ends at once. The message
tables of docs/worker-protocol.md are generated from this module
(``scripts/worker-protocol-tables``). Only pydantic and the standard library here:
the worker imports this module and nothing of the gateway's.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

PREFIX = "/worker/v1"
LEASE_HEADER = "X-Lease-Token"
WORKER_ID_HEADER = "X-Worker-Id"  # with the lease token, names the lease
PREVIEW_META_HEADER = "X-Preview-Meta"
PREVIEW_TYPES = ("image/jpeg", "image/png", "image/webp")
WORKER_ID_PATTERN = r"^[A-Za-z0-9_.:-]+$"
MAX_CLAIM_WAIT_S = 60.0
MAX_EVENTS_PER_BATCH = 10_000
# A worker's own message beside ComfyUI's: the node a job is on, n of m, and
# that node's progress (worker/steps.py makes it, pages and the dashboard show it).
STEP_MESSAGE = "comfy_multi.step"

#: the fencing token a claim hands out, random and bound to the worker that claimed;
#: job-scoped calls send it back in ``X-Lease-Token`` with their id in ``X-Worker-Id``
LeaseToken = Annotated[str, Field(min_length=1, max_length=200)]


class Message(BaseModel):
    """A protocol message: unknown fields are refused, so typos fail loudly."""

    model_config = ConfigDict(extra="forbid")


class Answer(BaseModel):
    """A gateway answer: fields a newer gateway adds are ignored by an older worker."""

    model_config = ConfigDict(extra="ignore")


# --- register ------------------------------------------------------------------


class Registration(Message):
    """``POST /register``: who the worker is and what its ComfyUI offers."""

    worker_id: str = Field(min_length=1, max_length=100, pattern=WORKER_ID_PATTERN)
    comfyui_url: str = Field(default="", max_length=500)
    comfyui_version: str = Field(default="", max_length=100)
    object_info_digest: str = Field(min_length=8, max_length=128, pattern=r"^[0-9a-f]+$")
    nodes: list[str] = Field(default_factory=list, max_length=50_000)
    models: dict[str, list[str]] = Field(default_factory=dict)


class Registered(Answer):
    """Answer to ``POST /register``."""

    worker_id: str
    need_object_info: bool
    heartbeat_seconds: float
    lease_seconds: float
    job_timeout_seconds: float | None = None


class ObjectInfoQuery(Message):
    """``PUT /object_info?digest=``: the body is ComfyUI's ``/object_info`` JSON."""

    digest: str = Field(min_length=8, max_length=128, pattern=r"^[0-9a-f]+$")


# --- claim ---------------------------------------------------------------------


class ClaimRequest(Message):
    """``POST /claim``: a long-poll for the next job this worker can run."""

    worker_id: str = Field(min_length=1, max_length=100, pattern=WORKER_ID_PATTERN)
    wait_seconds: float = Field(default=25.0, ge=0)


class InputRef(Answer):
    """A file from the user's input folder that the prompt refers to."""

    filename: str
    subfolder: str = ""
    type: str = "input"
    ref: str  # the exact string used in the prompt


class ClaimedJob(Answer):
    """Answer to ``POST /claim`` (200): the job, leased to this worker."""

    job_id: str
    lease_token: LeaseToken
    lease_seconds: float
    attempt: int
    user: str
    prompt: dict[str, Any]
    extra_data: dict[str, Any]
    inputs: list[InputRef]
    timeout_seconds: float | None


# --- heartbeat -----------------------------------------------------------------


class HeldJob(Message):
    job_id: str
    lease_token: LeaseToken


class Heartbeat(Message):
    """``POST /heartbeat``: alive, and the jobs whose leases to extend."""

    worker_id: str = Field(min_length=1, max_length=100, pattern=WORKER_ID_PATTERN)
    jobs: list[HeldJob] = Field(default_factory=list)


class HeartbeatAnswer(Answer):
    """Answer to ``POST /heartbeat``."""

    cancel: list[str] = Field(default_factory=list)  # interrupt these, report nothing more
    lease_lost: list[str] = Field(default_factory=list)  # drop these
    drain: bool = False  # finish the running job, claim no more


# --- job-scoped ----------------------------------------------------------------


class InputQuery(Message):
    """``GET /jobs/{job_id}/inputs``: one of the job's input files, streamed back."""

    filename: str
    subfolder: str = ""
    type: Literal["input"] = "input"


class Event(Message):
    """One ComfyUI websocket message, ``prompt_id`` rewritten to the job id."""

    type: str = Field(min_length=1, max_length=100)
    data: dict[str, Any] = Field(default_factory=dict)


class Events(Message):
    """``POST /jobs/{job_id}/events``: what the worker buffered, in ComfyUI's order."""

    events: list[Event] = Field(max_length=MAX_EVENTS_PER_BATCH)


class OutputQuery(Message):
    """``PUT /jobs/{job_id}/outputs``: the body is the file, streamed."""

    filename: str
    subfolder: str = ""
    type: Literal["output", "temp"] = "output"


class StoredOutput(Answer):
    """Answer to an output upload: the name it was stored under (it may differ)."""

    filename: str
    subfolder: str
    type: str


class Completion(Message):
    """``POST /jobs/{job_id}/complete``: ComfyUI's history outputs and meta."""

    outputs: dict[str, Any] = Field(default_factory=dict)
    meta: dict[str, Any] = Field(default_factory=dict)


class Failure(Message):
    """``POST /jobs/{job_id}/fail``: ComfyUI's error payload, or the worker's own."""

    error: dict[str, Any]
    requeue: bool = False


class ErrorBody(Answer):
    """Every 4xx/5xx answer of the gateway."""

    error: str
    message: str = ""


# --- the routes ------------------------------------------------------------------


class Route(BaseModel):
    """One call of the protocol: what goes up and what comes back."""

    model_config = ConfigDict(frozen=True)

    method: Literal["GET", "POST", "PUT"]
    path: str  # under PREFIX
    request: str  # a model name above, or what the raw body is
    answer: str
    leased: bool = False  # sends X-Lease-Token


class ExtensionSet(Message):
    """The web extension files the worker's ComfyUI serves: `{url path: {sha256, size}}`."""

    worker_id: str = Field(min_length=1, max_length=100, pattern=WORKER_ID_PATTERN)
    files: dict[str, Any] = Field(default_factory=dict)


class ExtensionsAnswer(Answer):
    """The set's digest and the files (by sha256) the gateway still lacks."""

    digest: str
    missing: list[str]


class WhoAmI(Answer):
    """The worker token's name: a worker started without --name is called after it."""

    name: str


ROUTES: tuple[Route, ...] = (
    Route(method="GET", path="/whoami", request="-", answer="WhoAmI"),
    Route(method="POST", path="/register", request="Registration", answer="Registered"),
    Route(
        method="PUT",
        path="/object_info",
        request="ObjectInfoQuery + JSON body (gzip accepted)",
        answer="204",
    ),
    Route(method="POST", path="/extensions", request="ExtensionSet", answer="ExtensionsAnswer"),
    Route(method="PUT", path="/extensions/files/{sha256}", request="file bytes", answer="204"),
    Route(method="POST", path="/claim", request="ClaimRequest", answer="ClaimedJob | 204"),
    Route(method="POST", path="/heartbeat", request="Heartbeat", answer="HeartbeatAnswer"),
    Route(
        method="GET",
        path="/jobs/{job_id}/inputs",
        request="InputQuery",
        answer="the file's bytes",
        leased=True,
    ),
    Route(method="POST", path="/jobs/{job_id}/events", request="Events", answer="204", leased=True),
    Route(
        method="PUT",
        path="/jobs/{job_id}/preview",
        request="image bytes + X-Preview-Meta",
        answer="204",
        leased=True,
    ),
    Route(
        method="PUT",
        path="/jobs/{job_id}/outputs",
        request="OutputQuery + file bytes",
        answer="StoredOutput",
        leased=True,
    ),
    Route(
        method="POST",
        path="/jobs/{job_id}/complete",
        request="Completion",
        answer="204",
        leased=True,
    ),
    Route(method="POST", path="/jobs/{job_id}/fail", request="Failure", answer="204", leased=True),
    Route(method="POST", path="/jobs/{job_id}/release", request="-", answer="204", leased=True),
    # the lease ended with the cancel: this only confirms that ComfyUI was interrupted
    Route(method="POST", path="/jobs/{job_id}/cancelled", request="-", answer="204"),
)

MODELS: tuple[type[BaseModel], ...] = (
    WhoAmI,
    Registration,
    Registered,
    ExtensionSet,
    ExtensionsAnswer,
    ObjectInfoQuery,
    ClaimRequest,
    ClaimedJob,
    InputRef,
    Heartbeat,
    HeldJob,
    HeartbeatAnswer,
    InputQuery,
    Events,
    Event,
    OutputQuery,
    StoredOutput,
    Completion,
    Failure,
    ErrorBody,
)
