"""The only module that spells a Redis key or channel name.

Every key is `PREFIX` followed by one of the templates in `TEMPLATES` (a
`{}` stands for a job id, user, class or worker id). Python code calls the
functions and constants below; the Lua scripts get the same templates as a
table `K` of keys and key builders that `store/scripts.py` generates from
`TEMPLATES` (`K.config`, `K.job(id)`, `K.pending_user(c, u)`), with the
prefix passed in as `KEYS[1]`. A test reads every script and fails on a key
spelled anywhere else.
"""

from __future__ import annotations

from typing import Any

PREFIX = "cm:"

# name -> spelling after PREFIX; the Lua scripts use the same names
TEMPLATES: dict[str, str] = {
    "seq": "seq",  # counter: a job's place in the queue
    "frontseq": "frontseq",  # counter: move-to-front places (negated)
    "servedtick": "servedtick",  # counter: fair round-robin clock
    "lastserved": "lastserved",  # hash user -> tick of their last claim
    "config": "config",  # hash: mode, paused, cap, broadcast
    "caps": "caps",  # hash user -> pending cap
    "running": "running",  # zset job -> lease deadline (ms)
    "finished": "finished",  # zset job -> finish time (ms), bounded
    "events_channel": "ev",  # pub/sub: JSON platform events
    "preview_channel": "ev:preview",  # pub/sub: binary previews
    "events_stream": "events",  # stream: recent events for catch-up
    "users": "users",  # set of user names
    "workers": "workers",  # zset worker -> last seen (ms)
    "wtokens": "wtokens",  # hash token name -> sha256(token)
    "objinfo": "objinfo",  # hash digest -> object_info JSON
    "wdigests": "wdigests",  # hash worker -> digest of its last object_info
    "webext": "webext",  # hash digest -> web extension manifest JSON {url path: sha256}
    "wwebext": "wwebext",  # hash worker -> digest of its last web extension set
    "stats": "stats",  # hash: run_ms_avg (run-time moving average), ...
    "metrics": "metrics",  # hash: /metrics histograms and counters of finished jobs
    "roomclock": "roomclock",  # hash: started_ms, stopped_ms, served_ms (uptime)
    "feedback": "feedback",  # hash user -> JSON answer {rating, comment, at_ms}
    "job": "job:{}",  # hash: one job
    "pending_all": "pending:{}:all",  # zset job -> seq: FIFO order of one class
    "pending_users": "pending:{}:users",  # zset user -> fair score, one class
    "pending_user": "pending:{}:u:{}",  # zset job -> seq: one user's jobs in one class
    "upending": "upending:{}",  # zset job -> seq: one user's pending jobs, any class
    "urunning": "urunning:{}",  # zset job -> started (ms): one user's running jobs
    "uhistory": "uhistory:{}",  # zset job -> finished (ms): one user's history, bounded
    "user": "user:{}",  # hash: one account
    "apitoken": "apitoken:{}",  # hash: one API token, by its digest
    "signin": "signin:{}",  # hash: one sign-in link, by its digest
    "worker": "worker:{}",  # hash: one worker
    "worker_nodes": "worker:{}:nodes",  # set: node class names the worker's ComfyUI offers
    "worker_cancel": "worker:{}:cancel",  # set: running job ids the worker must interrupt
    "session": "session:{}",  # string: a session's user, by the digest of its id
    "usessions": "usessions:{}",  # set: one user's session digests
    "utokens": "utokens:{}",  # hash: one user's API tokens, digest -> JSON
    "loginfail": "loginfail:{}",  # counter: failed sign-ins of one scope
    "loginlock": "loginlock:{}",  # string: present while a scope must wait (TTL = wait)
    "upromptbytes": "upromptbytes:{}",  # counter: one user's stored prompt bytes
    "promptdropmark": "promptdropmark",  # finish time (ms) up to which prompts are dropped
}


def _key(name: str, *parts: object) -> str:
    return PREFIX + TEMPLATES[name].format(*parts)


SEQ = _key("seq")
FRONT_SEQ = _key("frontseq")
SERVED_TICK = _key("servedtick")
LAST_SERVED = _key("lastserved")
CONFIG = _key("config")
USER_CAPS = _key("caps")
RUNNING = _key("running")
FINISHED = _key("finished")
EVENTS_CHANNEL = _key("events_channel")
PREVIEW_CHANNEL = _key("preview_channel")
EVENTS_STREAM = _key("events_stream")
USERS = _key("users")
WORKERS = _key("workers")
WORKER_TOKENS = _key("wtokens")
OBJECT_INFO = _key("objinfo")
WORKER_DIGESTS = _key("wdigests")
WEB_EXTENSIONS = _key("webext")
WORKER_WEB_EXTENSIONS = _key("wwebext")
STATS = _key("stats")
METRICS = _key("metrics")
ROOM_CLOCK = _key("roomclock")
FEEDBACK = _key("feedback")
FEEDBACK_OPEN = "feedback"  # field of CONFIG: "1" while the instructor asks the room


def text_map(raw: dict[Any, Any]) -> dict[str, str]:
    """A hash as read with decode_responses=True, typed as the str it is."""
    return {str(k): str(v) for k, v in raw.items()}


def job(job_id: str) -> str:
    return _key("job", job_id)


def pending_all(cls: int) -> str:
    """FIFO order of one class: job -> seq."""
    return _key("pending_all", cls)


def pending_users(cls: int) -> str:
    """Fair order of one class: user -> round-robin score."""
    return _key("pending_users", cls)


def pending_user(cls: int, user: str) -> str:
    """One user's jobs in one class: job -> seq."""
    return _key("pending_user", cls, user)


def user_pending(user: str) -> str:
    """All of one user's pending jobs, any class: job -> seq."""
    return _key("upending", user)


def user_running(user: str) -> str:
    """One user's running jobs: job -> started (ms)."""
    return _key("urunning", user)


def user_history(user: str) -> str:
    """One user's finished jobs: job -> finish time (ms), bounded."""
    return _key("uhistory", user)


def user(name: str) -> str:
    return _key("user", name)


def api_token(digest: str) -> str:
    return _key("apitoken", digest)


def signin_token(digest: str) -> str:
    return _key("signin", digest)


def worker(worker_id: str) -> str:
    return _key("worker", worker_id)


def worker_nodes(worker_id: str) -> str:
    """Set of node class names the worker's ComfyUI offers."""
    return _key("worker_nodes", worker_id)


def cancel_requests(worker_id: str) -> str:
    """Set of running job ids the worker must interrupt."""
    return _key("worker_cancel", worker_id)


# sign-in: sessions, API tokens, login throttling ------------------------------


def session(digest: str) -> str:
    """A signed-in browser: the user's name, keyed by sha256 of the cookie's id."""
    return _key("session", digest)


def user_sessions(name: str) -> str:
    """Set of one user's session digests, so a password change can end them all."""
    return _key("usessions", name)


def user_api_tokens(name: str) -> str:
    """Hash of one user's API tokens: sha256 -> JSON (id, label, created, expires)."""
    return _key("utokens", name)


def login_failures(scope: str) -> str:
    """Counter of failed sign-ins of one scope ("addr:<ip>" or "acct:<name>@<ip>")."""
    return _key("loginfail", scope)


def login_lock(scope: str) -> str:
    """Present while sign-ins of one scope must wait; its TTL is the wait."""
    return _key("loginlock", scope)


def user_prompt_bytes(name: str) -> str:
    """Bytes of prompt and extra_data one user has stored (until they are dropped)."""
    return _key("upromptbytes", name)


PROMPT_DROP_MARK = _key("promptdropmark")  # finish time (ms) up to which prompts are dropped
