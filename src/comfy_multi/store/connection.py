"""Which Redis to use, and the async client for it."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis

from comfy_multi.settings import Settings
from comfy_multi.store.embedded import EmbeddedRedis

POOL_SIZE = 64  # requests wait for a free connection rather than failing
POOL_WAIT_S = 10.0


def redis_url(settings: Settings) -> str:
    """`REDIS_URL` when set, else the data dir's embedded server."""
    return settings.redis_url or EmbeddedRedis(settings.redis_dir).url


def connect(url: str, *, decode: bool = True) -> Redis:
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=POOL_SIZE,
        timeout=POOL_WAIT_S,
        decode_responses=decode,
        health_check_interval=30,
    )
    return Redis.from_pool(pool)  # the client owns (and closes) its pool
