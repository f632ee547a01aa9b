"""The account records as Redis holds them: users, API tokens, one-time
sign-in tokens and worker tokens. Storage only; the rules (names, passwords,
hashing, token formats) are the user service's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from redis.asyncio import Redis

from comfy_multi.store import keys


class AccountRecords:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def create(self, name: str, fields: Mapping[str, str | int]) -> bool:
        """Write a new user's record; False (and nothing written) when the name is taken."""
        if not await self.redis.hsetnx(keys.user(name), "name", name):
            return False
        await self.redis.hset(keys.user(name), mapping=cast(Any, fields))
        await self.redis.sadd(keys.USERS, name)
        return True

    async def fields(self, name: str) -> dict[str, str]:
        return {str(k): str(v) for k, v in (await self.redis.hgetall(keys.user(name))).items()}

    async def names(self) -> list[str]:
        return sorted(str(n) for n in await self.redis.smembers(keys.USERS))

    async def delete(self, name: str) -> None:
        await self.redis.delete(keys.user(name))
        await self.redis.srem(keys.USERS, name)

    async def password_hash(self, name: str) -> str | None:
        hashed = await self.redis.hget(keys.user(name), "pw")
        return str(hashed) if hashed else None

    async def replace_password_hash(self, name: str, hashed: str) -> None:
        """Store the new hash and bump the epoch, which ends old sessions."""
        await self.redis.hset(keys.user(name), "pw", hashed)
        await self.redis.hincrby(keys.user(name), "epoch", 1)

    async def add_api_token(
        self, token_digest: str, name: str, info_json: str, ttl_ms: int | None
    ) -> None:
        """The token (expiring after `ttl_ms` when given) and its entry in the
        owner's registry, in one step."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(keys.api_token(token_digest), name, px=ttl_ms)
            pipe.hset(keys.user_api_tokens(name), token_digest, info_json)
            await pipe.execute()

    async def api_token_user(self, token_digest: str) -> str | None:
        """The owner of a live token. A token counts only while its owner's
        registry lists it: revoking all of someone's tokens is one delete,
        seen by every gateway process."""
        name = await self.redis.get(keys.api_token(token_digest))
        if not name or not await self.redis.hexists(keys.user_api_tokens(str(name)), token_digest):
            return None
        return str(name)

    async def api_token_rows(self, name: str) -> dict[str, str]:
        """One user's tokens: digest -> what is kept about it (JSON)."""
        rows = await self.redis.hgetall(keys.user_api_tokens(name))
        return {str(k): str(v) for k, v in rows.items()}

    async def drop_api_tokens(self, name: str, token_digests: list[str]) -> None:
        if not token_digests:
            return
        async with self.redis.pipeline(transaction=True) as pipe:
            for token_digest in token_digests:
                pipe.delete(keys.api_token(token_digest))
            pipe.hdel(keys.user_api_tokens(name), *token_digests)
            await pipe.execute()

    async def add_signin_token(self, token_digest: str, stamp: str, ttl_s: int) -> None:
        await self.redis.set(keys.signin_token(token_digest), stamp, ex=ttl_s)

    async def peek_signin_token(self, token_digest: str) -> str | None:
        name = await self.redis.get(keys.signin_token(token_digest))
        return str(name) if name else None

    async def take_signin_token(self, token_digest: str) -> str | None:
        """What the token was made for, deleting it in the same step (a link works once)."""
        stamp = await self.redis.getdel(keys.signin_token(token_digest))
        return str(stamp) if stamp else None

    async def set_worker_token(self, name: str, token_digest: str) -> None:
        await self.redis.hset(keys.WORKER_TOKENS, name, token_digest)

    async def worker_token_digests(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in (await self.redis.hgetall(keys.WORKER_TOKENS)).items()}

    async def worker_token_names(self) -> list[str]:
        return sorted(str(k) for k in await self.redis.hkeys(keys.WORKER_TOKENS))

    async def delete_worker_token(self, name: str) -> bool:
        return bool(await self.redis.hdel(keys.WORKER_TOKENS, name))
