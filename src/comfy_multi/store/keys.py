"""The only module that spells a Redis key or channel name.

Lua scripts receive `PREFIX` as their first key and derive per-user and
per-class keys from it with the same spelling as the functions below.
"""

from __future__ import annotations

from typing import Any

PREFIX = "cm:"

SEQ = f"{PREFIX}seq"  # counter: a job's place in the queue
FRONT_SEQ = f"{PREFIX}frontseq"  # counter: move-to-front places (negated)
SERVED_TICK = f"{PREFIX}servedtick"  # counter: fair round-robin clock
LAST_SERVED = f"{PREFIX}lastserved"  # hash user -> tick of their last claim
CONFIG = f"{PREFIX}config"  # hash: mode, paused, cap
USER_CAPS = f"{PREFIX}caps"  # hash user -> pending cap
RUNNING = f"{PREFIX}running"  # zset job -> lease deadline (ms)
FINISHED = f"{PREFIX}finished"  # zset job -> finish time (ms), bounded
EVENTS_CHANNEL = f"{PREFIX}ev"  # pub/sub: JSON platform events
PREVIEW_CHANNEL = f"{PREFIX}ev:preview"  # pub/sub: binary previews
EVENTS_STREAM = f"{PREFIX}events"  # stream: recent events for catch-up
USERS = f"{PREFIX}users"  # set of user names
WORKERS = f"{PREFIX}workers"  # zset worker -> last seen (ms)
WORKER_TOKENS = f"{PREFIX}wtokens"  # hash token name -> sha256(token)
OBJECT_INFO = f"{PREFIX}objinfo"  # hash digest -> object_info JSON
WORKER_DIGESTS = f"{PREFIX}wdigests"  # hash worker -> digest of its last object_info
STATS = f"{PREFIX}stats"  # hash of counters (run time EWMA, ...)
METRICS = f"{PREFIX}metrics"  # hash: /metrics histograms and counters folded from finished jobs

FEEDBACK = f"{PREFIX}feedback"  # hash user -> JSON answer {rating, comment, at_ms}
FEEDBACK_OPEN = "feedback"  # field of CONFIG: "1" while the instructor asks the room

CLASSES = range(10)  # priority classes, 0 most urgent


def text_map(raw: dict[Any, Any]) -> dict[str, str]:
    """A hash as read with decode_responses=True, typed as the str it is."""
    return {str(k): str(v) for k, v in raw.items()}


def job(job_id: str) -> str:
    return f"{PREFIX}job:{job_id}"


def pending_all(cls: int) -> str:
    """FIFO order of one class: job -> seq."""
    return f"{PREFIX}pending:{cls}:all"


def pending_users(cls: int) -> str:
    """Fair order of one class: user -> round-robin score."""
    return f"{PREFIX}pending:{cls}:users"


def pending_user(cls: int, user: str) -> str:
    """One user's jobs in one class: job -> seq."""
    return f"{PREFIX}pending:{cls}:u:{user}"


def user_pending(user: str) -> str:
    """All of one user's pending jobs, any class: job -> seq."""
    return f"{PREFIX}upending:{user}"


def user_running(user: str) -> str:
    """One user's running jobs: job -> started (ms)."""
    return f"{PREFIX}urunning:{user}"


def user_history(user: str) -> str:
    """One user's finished jobs: job -> finish time (ms), bounded."""
    return f"{PREFIX}uhistory:{user}"


def user(name: str) -> str:
    return f"{PREFIX}user:{name}"


def api_token(digest: str) -> str:
    return f"{PREFIX}apitoken:{digest}"


def signin_token(digest: str) -> str:
    return f"{PREFIX}signin:{digest}"


def worker(worker_id: str) -> str:
    return f"{PREFIX}worker:{worker_id}"


def worker_nodes(worker_id: str) -> str:
    """Set of node class names the worker's ComfyUI offers."""
    return f"{PREFIX}worker:{worker_id}:nodes"


def cancel_requests(worker_id: str) -> str:
    """Set of running job ids the worker must interrupt."""
    return f"{PREFIX}worker:{worker_id}:cancel"
