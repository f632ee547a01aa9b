"""Which Redis to use, and the async client for it."""

from __future__ import annotations

from redis.asyncio import ConnectionPool, Redis

from comfy_multi.settings import Settings
from comfy_multi.store.embedded import EmbeddedRedis

# Connections are opened on demand and reused; a plain pool costs about half
# the CPU per command of a blocking one, and this bound is far above what one
# gateway process keeps busy at once.
MAX_CONNECTIONS = 1024


def redis_url(settings: Settings) -> str:
    """`REDIS_URL` when set, else the data dir's embedded server."""
    return settings.redis_url or EmbeddedRedis(settings.redis_dir).url


def connect(url: str, *, decode: bool = True) -> Redis:
    pool = ConnectionPool.from_url(url, max_connections=MAX_CONNECTIONS, decode_responses=decode)
    return Redis.from_pool(pool)  # the client owns (and closes) its pool
