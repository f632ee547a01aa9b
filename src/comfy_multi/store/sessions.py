"""Browser sessions kept in Redis: the cookie carries only a random id.

Every gateway process reads the same record, so signing out, a password
change or a removal ends a session everywhere at once; a copied cookie is
worth nothing after that. Only the id's SHA-256 is stored.
"""

from __future__ import annotations

import hashlib
import secrets

from redis.asyncio import Redis

from comfy_multi.store import keys

SESSION_ID_BYTES = 32


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class SessionStore:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def start(self, name: str, ttl_s: int) -> str:
        """A new session for `name`; returns the id to put in the cookie."""
        session_id = secrets.token_urlsafe(SESSION_ID_BYTES)
        digest = _digest(session_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(keys.session(digest), name, ex=ttl_s)
            pipe.sadd(keys.user_sessions(name), digest)
            pipe.expire(keys.user_sessions(name), ttl_s)
            await pipe.execute()
        return session_id

    async def owner(self, session_id: str) -> str | None:
        """The user a live session belongs to, None when it ended or never was."""
        if not session_id or len(session_id) > 128:
            return None
        name = await self.redis.get(keys.session(_digest(session_id)))
        return str(name) if name else None

    async def end(self, session_id: str) -> None:
        digest = _digest(session_id)
        name = await self.redis.getdel(keys.session(digest))
        if name:
            await self.redis.srem(keys.user_sessions(str(name)), digest)

    async def end_all(self, name: str) -> int:
        """End every session of one user; how many were live."""
        digests = [str(d) for d in await self.redis.smembers(keys.user_sessions(name))]
        async with self.redis.pipeline(transaction=True) as pipe:
            for digest in digests:
                pipe.delete(keys.session(digest))
            pipe.delete(keys.user_sessions(name))
            ended = await pipe.execute()
        return sum(int(n) for n in ended[:-1])
