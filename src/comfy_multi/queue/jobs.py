"""Job lifecycle: every state change is one Lua script call."""

from __future__ import annotations

import hmac
import logging
import secrets
import uuid
from typing import Any, cast

import orjson
from redis.asyncio import Redis

from comfy_multi.errors import BadRequest, Conflict, JobNotFound, LeaseLost, QueueFull
from comfy_multi.queue import retention
from comfy_multi.queue.models import (
    ClaimedJob,
    InputRef,
    Job,
    JobState,
    QueueConfig,
    QueueMode,
)
from comfy_multi.settings import PRIORITY_CLASSES, Settings
from comfy_multi.store import keys
from comfy_multi.store.scripts import Scripts
from comfy_multi.wire import STEP_MESSAGE
from comfy_multi.wording import plural

logger = logging.getLogger(__name__)

CLAIM_LOOKAHEAD = 32  # jobs a claim inspects for capability fit
SWEEP_BATCH = 500
MIN_CLASS, MAX_CLASS = 0, PRIORITY_CLASSES - 1
RUN_TIME_EWMA = 0.2  # weight of the newest run in the room's average run time
LEASE_TOKEN_BYTES = 16  # a lease token is this much randomness, never a counter


def check_class(cls: int) -> int:
    if not MIN_CLASS <= cls <= MAX_CLASS:
        raise BadRequest(
            f"priority class must be a whole number from {MIN_CLASS} (most urgent) "
            f"to {MAX_CLASS}, not {cls}"
        )
    return cls


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


class JobQueue:
    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.redis = redis
        self.settings = settings
        self.scripts = Scripts(redis, PRIORITY_CLASSES)

    @property
    def _ttl_ms(self) -> int:
        return int(self.settings.job_ttl_days * 86_400_000)

    @property
    def _lease_ms(self) -> int:
        return int(self.settings.lease_seconds * 1000)

    # submit and read --------------------------------------------------------

    async def submit(
        self,
        user: str,
        prompt: dict[str, Any],
        *,
        cls: int,
        extra_data: dict[str, Any] | None = None,
        client_id: str | None = None,
        needs: list[str] | None = None,
        inputs: list[InputRef] | None = None,
        front: bool = False,
        job_id: str | None = None,
    ) -> Job:
        job_id = job_id or str(uuid.uuid4())
        needs = sorted(set(needs or []))
        fields = {
            "prompt": _dumps(prompt),
            "extra_data": _dumps(extra_data or {}),
            "client_id": client_id or "",
            "needs": _dumps(needs),
            "inputs": _dumps([i.model_dump() for i in inputs or []]),
        }
        # counted against the user's budget until the prompt is dropped (retention.py)
        nbytes = len(fields["prompt"]) + len(fields["extra_data"])
        fields["prompt_bytes"] = str(nbytes)
        await retention.reserve(self.redis, self.settings, user, nbytes)
        try:
            kind, value, queued_ms = await self.scripts.enqueue(
                job_id, user, check_class(cls), self.settings.default_user_cap, front, fields
            )
        except BaseException:
            await retention.release(self.redis, user, nbytes)
            raise
        if kind != "ok":
            await retention.release(self.redis, user, nbytes)
        if kind == "exists":
            raise Conflict(f"a job with id {job_id!r} already exists")
        if kind == "cap":
            raise QueueFull(value)
        logger.info("job %s queued by %s (class %s, seq %s)", job_id, user, cls, value)
        # what the script stored, without reading it back
        return Job(
            id=job_id,
            user=user,
            state=JobState.PENDING,
            cls=cls,
            seq=value,
            prompt=prompt,
            extra_data=extra_data or {},
            client_id=client_id or None,
            needs=needs,
            inputs=inputs or [],
            queued_ms=queued_ms,
        )

    async def get(self, job_id: str) -> Job:
        h = keys.text_map(await self.redis.hgetall(keys.job(job_id)))
        if not h or "state" not in h:
            raise JobNotFound(job_id)
        return Job.from_hash(h)

    async def get_owned(self, job_id: str, user: str, *, admin: bool = False) -> Job:
        """A job its user (or an admin) may see; others get 'not found', not 'forbidden'."""
        job = await self.get(job_id)
        if job.user != user and not admin:
            raise JobNotFound(job_id)
        return job

    async def get_many(self, job_ids: list[str]) -> list[Job]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.hgetall(keys.job(job_id))
            rows = await pipe.execute()
        return [Job.from_hash(keys.text_map(h)) for h in rows if h and "state" in h]

    # worker side ------------------------------------------------------------

    async def claim(self, worker_id: str) -> ClaimedJob | None:
        """The next job this worker can run, under a lease: an unguessable token
        that, with this worker's id, every later report on the job must present."""
        token = secrets.token_urlsafe(LEASE_TOKEN_BYTES)
        h = await self.scripts.claim(worker_id, self._lease_ms, CLAIM_LOOKAHEAD, token)
        if h is None:
            return None
        job = Job.from_hash(h)
        logger.info("job %s claimed by %s (attempt %s)", job.id, worker_id, job.attempts)
        return ClaimedJob(
            job_id=job.id,
            lease_token=job.token,
            lease_seconds=self.settings.lease_seconds,
            attempt=job.attempts,
            user=job.user,
            prompt=job.prompt,
            extra_data=job.extra_data,
            inputs=job.inputs,
            timeout_seconds=self.settings.job_timeout_seconds,
        )

    async def extend_lease(self, job_id: str, token: str, worker_id: str) -> bool:
        result = await self.scripts.heartbeat(job_id, token, worker_id, self._lease_ms)
        return result == "ok"

    async def lease_holder(self, job_id: str, token: str, worker_id: str) -> tuple[str, str | None]:
        """(user, client_id) of the running job this worker holds with this token,
        or LeaseLost. Reads five fields only: previews and outputs pass here."""
        state, held, holder, user, client_id = await self.redis.hmget(
            keys.job(job_id), ["state", "token", "worker", "user", "client_id"]
        )
        if state is None:
            raise LeaseLost(job_id, _lost_reason("missing"))
        if state != JobState.RUNNING:
            raise LeaseLost(job_id, _lost_reason(str(state)))
        if not token or not held or not hmac.compare_digest(str(held), token):
            raise LeaseLost(job_id, _lost_reason("stale"))
        if holder != worker_id:
            raise LeaseLost(job_id, _lost_reason("other_worker"))
        return str(user), str(client_id) if client_id else None

    async def relay(
        self, job_id: str, token: str, worker_id: str, messages: list[dict[str, Any]]
    ) -> None:
        """Publish a running job's ComfyUI messages to its user (and keep its
        latest progress for pages that open mid-run), or LeaseLost."""
        # a worker's step summary says more than ComfyUI's own progress
        progress = [m.get("data", {}) for m in messages if m.get("type") == "progress"]
        progress += [m.get("data", {}) for m in messages if m.get("type") == STEP_MESSAGE]
        result = await self.scripts.relay(
            job_id, token, worker_id, _dumps(messages), _dumps(progress[-1]) if progress else ""
        )
        if result != "ok":
            raise LeaseLost(job_id, _lost_reason(result))

    async def complete(
        self,
        job_id: str,
        token: str,
        worker_id: str,
        outputs: dict[str, Any],
        meta: dict[str, Any],
    ) -> None:
        """Record the outputs; the worker's tallies and the room's average run
        time move in the same script, by Redis's clock."""
        result = await self.scripts.complete(
            job_id,
            token,
            worker_id,
            _dumps(outputs),
            _dumps(meta),
            self.settings.history_per_user,
            self._ttl_ms,
            RUN_TIME_EWMA,
        )
        if result != "ok":
            raise LeaseLost(job_id, _lost_reason(result))
        logger.info("job %s done", job_id)

    async def fail(
        self, job_id: str, token: str, worker_id: str, error: dict[str, Any], *, mode: str
    ) -> str:
        """mode: fail, retry (requeue while attempts remain) or release (not an attempt)."""
        result = await self.scripts.fail(
            job_id,
            token,
            worker_id,
            _dumps(error),
            mode,
            self.settings.max_attempts,
            self.settings.history_per_user,
            self._ttl_ms,
        )
        if result not in ("failed", "requeued"):
            raise LeaseLost(job_id, _lost_reason(result))
        reason = str(error.get("message") or error.get("type"))
        logger.info("job %s %s: %.200s", job_id, result, reason)  # may quote the prompt: shortened
        return result

    async def sweep(self) -> int:
        handled = await self.scripts.sweep(
            self.settings.max_attempts, self.settings.history_per_user, self._ttl_ms, SWEEP_BATCH
        )
        if handled:
            logger.warning(
                "requeued or failed %s whose worker stopped answering", plural(handled, "job")
            )
        return handled

    # control ----------------------------------------------------------------

    async def cancel(self, job_id: str, *, owner: str | None = None) -> bool:
        """True if the job was pending or running and is now cancelled."""
        result = await self.scripts.cancel(
            job_id, owner or "", self.settings.history_per_user, self._ttl_ms
        )
        if result == "missing":
            raise JobNotFound(job_id)
        if result == "ok":
            logger.info("job %s cancelled%s", job_id, f" by {owner}" if owner else "")
        return result == "ok"

    async def reprioritize(
        self, job_id: str, *, cls: int | None = None, front: bool = False
    ) -> Job:
        if cls is not None:
            check_class(cls)
        result = await self.scripts.reprioritize(job_id, cls, front)
        if result == "missing":
            raise JobNotFound(job_id)
        if result != "ok":
            raise Conflict(f"job {job_id!r} is {result}, not waiting; only waiting jobs can move")
        return await self.get(job_id)

    async def config(self) -> QueueConfig:
        h = keys.text_map(await self.redis.hgetall(keys.CONFIG))
        return QueueConfig(
            mode=QueueMode(h.get("mode", QueueMode.FAIR)),
            paused=h.get("paused") == "1",
            default_cap=int(h.get("cap", self.settings.default_user_cap)),
        )

    async def update_config(
        self, *, mode: QueueMode | None = None, paused: bool | None = None, cap: int | None = None
    ) -> QueueConfig:
        changes: dict[str, str] = {}
        if mode is not None:
            changes["mode"] = QueueMode(mode).value
        if paused is not None:
            changes["paused"] = "1" if paused else "0"
        if cap is not None:
            if cap < 0:
                raise BadRequest("the per-user cap must be 0 (no cap) or more")
            changes["cap"] = str(cap)
        if changes:
            await self.redis.hset(keys.CONFIG, mapping=cast(Any, changes))
        return await self.config()

    async def set_user_cap(self, user: str, cap: int | None) -> None:
        """A user's own cap; None returns them to the room's default."""
        if cap is None:
            await self.redis.hdel(keys.USER_CAPS, user)
        elif cap < 0:
            raise BadRequest("the per-user cap must be 0 (no cap) or more")
        else:
            await self.redis.hset(keys.USER_CAPS, user, str(cap))

    async def user_caps(self) -> dict[str, int]:
        caps = keys.text_map(await self.redis.hgetall(keys.USER_CAPS))
        return {u: int(c) for u, c in caps.items()}


def _lost_reason(result: str) -> str:
    return {
        "missing": "it no longer exists",
        "stale": "its lease token does not match (the lease expired, or it was never yours)",
        "other_worker": "another worker holds it",
        "pending": "its lease expired and it went back to the queue",
        "cancelled": "it was cancelled",
        "done": "it already finished",
        "failed": "it already failed",
    }.get(result, result)
