"""Which web extensions each worker's ComfyUI serves, and the merged set.

A set is a manifest `{url path: sha256}` identified by the sha256 of its
canonical JSON; the files themselves live on disk, content-addressed
(services.extensions). A worker that goes away keeps its last set, as its
node definitions stay, so open pages keep their custom widgets.
"""

from __future__ import annotations

import time

import orjson
from redis.asyncio import Redis

from comfy_multi.store import keys

MERGED_RECHECK_S = 1.0


class ExtensionRegistry:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._merged: tuple[tuple[str, ...], dict[str, str]] | None = None
        self._merged_at = 0.0

    async def known(self, digest: str) -> bool:
        return bool(await self.redis.hexists(keys.WEB_EXTENSIONS, digest))

    async def store(self, digest: str, manifest: dict[str, str]) -> None:
        await self.redis.hset(keys.WEB_EXTENSIONS, digest, orjson.dumps(manifest))

    async def publish(self, worker_id: str, digest: str) -> None:
        await self.redis.hset(keys.WORKER_WEB_EXTENSIONS, worker_id, digest)
        self._merged_at = 0.0

    async def forget(self, worker_id: str) -> None:
        await self.redis.hdel(keys.WORKER_WEB_EXTENSIONS, worker_id)
        self._merged_at = 0.0

    async def merged(self) -> dict[str, str]:
        """Every worker's files by url path. Two workers serving one path with
        different content: the set with the larger digest wins, the same on
        every gateway process."""
        now = time.monotonic()
        if self._merged and now - self._merged_at < MERGED_RECHECK_S:
            return self._merged[1]
        known = keys.text_map(await self.redis.hgetall(keys.WORKER_WEB_EXTENSIONS))
        digests = tuple(sorted(set(known.values())))
        self._merged_at = now
        if self._merged and self._merged[0] == digests:
            return self._merged[1]
        merged: dict[str, str] = {}
        if digests:
            for body in await self.redis.hmget(keys.WEB_EXTENSIONS, list(digests)):
                if body:
                    merged.update(orjson.loads(body))
        self._merged = (digests, merged)
        return merged
