"""GPU workers: registration, capabilities, liveness, and the merged object_info."""

from __future__ import annotations

import builtins
import logging
import time
from typing import Any, cast

import orjson
from pydantic import BaseModel
from redis.asyncio import Redis

from comfy_multi.errors import Conflict, WorkerIdTaken, WorkerNotFound
from comfy_multi.settings import Settings
from comfy_multi.store import keys
from comfy_multi.wire import Registration

__all__ = ["Registration", "WorkerInfo", "WorkerRegistry"]

logger = logging.getLogger(__name__)

OBJECT_INFO_RECHECK_S = 1.0
OFFLINE_AFTER_HEARTBEATS = 3  # missed heartbeats before a worker shows offline


class WorkerInfo(BaseModel):
    worker_id: str
    name: str  # the worker token's name
    comfyui_url: str = ""
    comfyui_version: str = ""
    online: bool
    state: str  # idle, busy, draining, offline
    current_job: str | None = None
    last_seen_ms: int | None = None
    registered_ms: int | None = None
    nodes_count: int = 0
    models_count: int = 0
    jobs_done: int = 0
    failures: int = 0
    busy_ms: int = 0
    draining: bool = False


def _now_ms() -> int:
    return int(time.time() * 1000)


class WorkerRegistry:
    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.redis = redis
        self.settings = settings
        self._merged: tuple[tuple[str, ...], dict[str, Any]] | None = None
        self._merged_at = 0.0

    @property
    def _offline_ms(self) -> int:
        return int(self.settings.heartbeat_seconds * OFFLINE_AFTER_HEARTBEATS * 1000) + 1000

    async def register(self, reg: Registration, token_name: str) -> bool:
        """Record the worker; True if its object_info is new to the gateway.
        A worker id belongs to the worker token that first registered it."""
        await self._take_id(reg.worker_id, token_name)
        now = _now_ms()
        models_count = sum(len(v) for v in reg.models.values())
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                keys.worker(reg.worker_id),
                mapping={
                    "worker_id": reg.worker_id,
                    "name": token_name,
                    "comfyui_url": reg.comfyui_url,
                    "comfyui_version": reg.comfyui_version,
                    "digest": reg.object_info_digest,
                    "nodes_count": len(reg.nodes),
                    "models_count": models_count,
                    "models": orjson.dumps(reg.models).decode(),
                    "registered_ms": now,
                },
            )
            pipe.delete(keys.worker_nodes(reg.worker_id))
            if reg.nodes:
                pipe.sadd(keys.worker_nodes(reg.worker_id), *reg.nodes)
            pipe.zadd(keys.WORKERS, {reg.worker_id: now})
            pipe.hexists(keys.OBJECT_INFO, reg.object_info_digest)
            *_, known = await pipe.execute()
        if known:
            await self._publish(reg.worker_id, reg.object_info_digest)
        logger.info(
            "worker %s (%s) registered: %s nodes, %s models",
            reg.worker_id,
            token_name,
            len(reg.nodes),
            models_count,
        )
        return not known

    async def store_object_info(self, digest: str, body: bytes) -> None:
        """Keep a published object_info and switch the workers that announced it
        over to it. Until then a re-registering worker's previous definitions
        stay in use, so participants never see its nodes vanish for a moment."""
        await self.redis.hset(keys.OBJECT_INFO, digest, body)
        for worker_id in await self.redis.zrange(keys.WORKERS, 0, -1):
            if await self.redis.hget(keys.worker(str(worker_id)), "digest") == digest:
                await self._publish(str(worker_id), digest)

    async def _publish(self, worker_id: str, digest: str) -> None:
        await self.redis.hset(keys.WORKER_DIGESTS, worker_id, digest)
        self._merged_at = 0.0

    async def _take_id(self, worker_id: str, token_name: str) -> None:
        """The first token to name a worker id owns it (until an admin forgets it)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hsetnx(keys.worker(worker_id), "name", token_name)
            pipe.hget(keys.worker(worker_id), "name")
            _, owner = await pipe.execute()
        if owner != token_name:
            raise WorkerIdTaken(worker_id)

    async def seen(self, worker_id: str, token_name: str) -> bool:
        """Mark the worker alive; False if it never registered, ``WorkerIdTaken``
        if another worker token registered it."""
        owner = await self.redis.hget(keys.worker(worker_id), "name")
        if owner is None:
            return False
        if owner != token_name:
            raise WorkerIdTaken(worker_id)
        await self.redis.zadd(keys.WORKERS, {worker_id: _now_ms()})
        return True

    async def take_cancels(self, worker_id: str) -> list[str]:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.smembers(keys.cancel_requests(worker_id))
            pipe.delete(keys.cancel_requests(worker_id))
            members, _ = await pipe.execute()
        return sorted(members)

    async def set_draining(self, worker_id: str, draining: bool) -> None:
        if not await self.redis.exists(keys.worker(worker_id)):
            raise WorkerNotFound(worker_id)
        await self.redis.hset(keys.worker(worker_id), "draining", "1" if draining else "0")

    async def is_draining(self, worker_id: str) -> bool:
        return await self.redis.hget(keys.worker(worker_id), "draining") == "1"

    async def forget_offline(self, name: str) -> list[str]:
        """Forget the offline workers with this id, started with this name, or
        joined with this token name; the ids forgotten. Their jobs, and so the
        report's figures, stay as they were."""
        cutoff = _now_ms() - self._offline_ms
        rows = cast(
            list[tuple[str, float]], await self.redis.zrange(keys.WORKERS, 0, -1, withscores=True)
        )
        async with self.redis.pipeline(transaction=False) as pipe:
            for worker_id, _ in rows:
                pipe.hget(keys.worker(worker_id), "name")
            names = await pipe.execute()
        # a worker's id is the name it started with plus a few random letters
        matches = [
            (str(worker_id), seen >= cutoff)
            for (worker_id, seen), token in zip(rows, names, strict=True)
            if name in (worker_id, token, str(worker_id).rsplit("-", 1)[0])
        ]
        if not matches:
            raise WorkerNotFound(name)
        online = [worker_id for worker_id, is_online in matches if is_online]
        if online:
            raise Conflict(
                f"{', '.join(online)} is online; stop it (or drain it) first, "
                "then forget it once it shows offline"
            )
        for worker_id, _ in matches:
            await self.forget(worker_id)
        logger.info("forgot worker(s) %s", ", ".join(w for w, _ in matches))
        return [worker_id for worker_id, _ in matches]

    async def forget(self, worker_id: str) -> None:
        """Remove a worker and the object_info only it published."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(keys.worker(worker_id), keys.worker_nodes(worker_id))
            pipe.zrem(keys.WORKERS, worker_id)
            pipe.hdel(keys.WORKER_DIGESTS, worker_id)
            await pipe.execute()
        self._merged_at = 0.0

    async def online_count(self) -> int:
        return int(await self.redis.zcount(keys.WORKERS, _now_ms() - self._offline_ms, "+inf"))

    async def list(self) -> list[WorkerInfo]:
        rows = cast(
            list[tuple[str, float]], await self.redis.zrange(keys.WORKERS, 0, -1, withscores=True)
        )
        async with self.redis.pipeline(transaction=False) as pipe:
            for worker_id, _ in rows:
                pipe.hgetall(keys.worker(worker_id))
            records = await pipe.execute()
        now = _now_ms()
        cutoff = now - self._offline_ms
        # long gone: off the lists by itself (its jobs stay in the report)
        gone = now - int(self.settings.worker_forget_seconds * 1000)
        out = []
        for (worker_id, seen), raw in zip(rows, records, strict=True):
            h = keys.text_map(raw or {})
            if not h or seen < gone:
                continue
            online = seen >= cutoff
            draining = h.get("draining") == "1"
            current = h.get("current_job") or None
            state = "offline" if not online else "busy" if current else "idle"
            if online and draining and not current:
                state = "draining"
            out.append(
                WorkerInfo(
                    worker_id=str(worker_id),
                    name=h.get("name", ""),
                    comfyui_url=h.get("comfyui_url", ""),
                    comfyui_version=h.get("comfyui_version", ""),
                    online=online,
                    state=state,
                    current_job=current,
                    last_seen_ms=int(seen),
                    registered_ms=int(h.get("registered_ms", 0)) or None,
                    nodes_count=int(h.get("nodes_count", 0)),
                    models_count=int(h.get("models_count", 0)),
                    jobs_done=int(h.get("jobs_done", 0)),
                    failures=int(h.get("failures", 0)),
                    busy_ms=int(h.get("busy_ms", 0)),
                    draining=draining,
                )
            )
        return out

    async def capabilities(self, worker_id: str) -> tuple[set[str], dict[str, builtins.list[str]]]:
        """The node classes and model files (by folder) the worker's ComfyUI offers."""
        nodes = await self.redis.smembers(keys.worker_nodes(worker_id))
        raw = await self.redis.hget(keys.worker(worker_id), "models")
        models = orjson.loads(raw) if raw else {}
        return {str(n) for n in nodes}, models if isinstance(models, dict) else {}

    async def any_registered(self) -> bool:
        return bool(await self.redis.hlen(keys.WORKER_DIGESTS))

    async def merged_object_info(self) -> dict[str, Any]:
        """Union of the node definitions every known worker published, kept while
        a worker is away so participants can keep queueing. Every submit needs
        it, so it is re-checked at most once a second (and at once after a
        registration through this process)."""
        now = time.monotonic()
        if self._merged and now - self._merged_at < OBJECT_INFO_RECHECK_S:
            return self._merged[1]
        known = keys.text_map(await self.redis.hgetall(keys.WORKER_DIGESTS))
        digests = tuple(sorted(set(known.values())))
        self._merged_at = now
        if self._merged and self._merged[0] == digests:
            return self._merged[1]
        merged: dict[str, Any] = {}
        if digests:
            for body in await self.redis.hmget(keys.OBJECT_INFO, list(digests)):
                if body:
                    merged.update(orjson.loads(body))
        self._merged = (digests, merged)
        return merged
