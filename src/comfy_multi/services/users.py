"""People and tokens: users with argon2 password hashes, API tokens, one-time
sign-in links, and worker tokens. Tokens are stored only as SHA-256 digests."""

from __future__ import annotations

import builtins
import hashlib
import logging
import re
import secrets
import time

import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel
from redis.asyncio import Redis

from comfy_multi.errors import AlreadyExists, BadRequest, Unauthorized, UserNotFound
from comfy_multi.store.accounts import AccountRecords

logger = logging.getLogger(__name__)

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,31}$")
MIN_PASSWORD = 4
SIGNIN_TTL_S = 7 * 86_400

# Test suites hash thousands of throwaway passwords; argon2's real cost (~0.4 s
# each on a small machine) would dominate them. The cheap parameters exist only
# under a name no one sets by accident, and Settings refuses them off loopback.
FAST_HASHING_FOR_TESTS = "insecure-fast-for-tests"


def password_hasher(profile: str = "argon2") -> PasswordHasher:
    """argon2-cffi's recommended parameters, or, for test suites only, trivial ones."""
    if profile == FAST_HASHING_FOR_TESTS:
        return PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    return PasswordHasher()


class User(BaseModel):
    name: str
    admin: bool = False
    created_ms: int = 0
    epoch: int = 0  # bumped on password change or removal; old sessions end


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise BadRequest(
            f"{name!r} is not a usable name: use 1-32 lowercase letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def new_password() -> str:
    """Easy to read aloud in a room: three short words' worth of letters and digits."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(3))


_default_hasher = PasswordHasher()


class UserStore:
    def __init__(self, redis: Redis, hasher: PasswordHasher | None = None) -> None:
        self.redis = redis
        self.records = AccountRecords(redis)
        # verification reads the cost from each stored hash; only new hashes use this
        self.hasher = hasher or _default_hasher

    async def add(self, name: str, password: str | None = None, *, admin: bool = False) -> str:
        """Create a user; returns the password (generated when not given)."""
        check_name(name)
        password = password or new_password()
        if len(password) < MIN_PASSWORD:
            raise BadRequest(f"a password needs at least {MIN_PASSWORD} characters")
        hashed = await anyio.to_thread.run_sync(self.hasher.hash, password)
        fields = {
            "pw": hashed,
            "admin": "1" if admin else "0",
            "created_ms": int(time.time() * 1000),
            "epoch": 0,
        }
        if not await self.records.create(name, fields):
            raise AlreadyExists(f"user {name!r} already exists")
        logger.info("user %s added%s", name, " (admin)" if admin else "")
        return password

    async def get(self, name: str) -> User:
        h = await self.records.fields(name)
        if not h or "pw" not in h:
            raise UserNotFound(name)
        return User(
            name=name,
            admin=h.get("admin") == "1",
            created_ms=int(h.get("created_ms", 0)),
            epoch=int(h.get("epoch", 0)),
        )

    async def list(self) -> list[User]:
        names = await self.records.names()
        users = []
        for name in names:
            try:
                users.append(await self.get(name))
            except UserNotFound:
                continue
        return users

    async def remove(self, name: str) -> None:
        await self.get(name)
        await self.records.delete(name)
        logger.info("user %s removed", name)

    async def set_password(self, name: str, password: str | None = None) -> str:
        await self.get(name)
        password = password or new_password()
        if len(password) < MIN_PASSWORD:
            raise BadRequest(f"a password needs at least {MIN_PASSWORD} characters")
        hashed = await anyio.to_thread.run_sync(self.hasher.hash, password)
        await self.records.replace_password_hash(name, hashed)
        logger.info("password of %s reset", name)
        return password

    async def verify_password(self, name: str, password: str) -> User:
        """Costs one argon2 verification; callers cache the result."""
        hashed = await self.records.password_hash(name) if NAME_RE.match(name) else None
        if not hashed:
            raise Unauthorized("wrong name or password")
        try:
            await anyio.to_thread.run_sync(self.hasher.verify, str(hashed), password)
        except (VerificationError, InvalidHashError):
            raise Unauthorized("wrong name or password") from None
        return await self.get(name)

    # API tokens and one-time sign-in links ---------------------------------

    async def create_api_token(self, name: str) -> str:
        await self.get(name)
        token = "cmu_" + secrets.token_urlsafe(24)
        await self.records.add_api_token(digest(token), name)
        return token

    async def user_for_api_token(self, token: str) -> User:
        name = await self.records.api_token_user(digest(token))
        if not name:
            raise Unauthorized("unknown or revoked API token")
        return await self.get(str(name))

    async def create_signin_token(self, name: str, ttl_s: int = SIGNIN_TTL_S) -> str:
        await self.get(name)
        token = secrets.token_urlsafe(18)
        await self.records.add_signin_token(digest(token), name, ttl_s)
        return token

    async def redeem_signin_token(self, token: str) -> User:
        name = await self.records.take_signin_token(digest(token))
        if not name:
            raise Unauthorized(
                "this sign-in link was already used or has expired; ask for a new one"
            )
        return await self.get(str(name))

    # worker tokens ----------------------------------------------------------

    async def create_worker_token(self, name: str) -> str:
        check_name(name)
        token = "cmw_" + secrets.token_urlsafe(32)
        await self.records.set_worker_token(name, digest(token))
        logger.info("worker token %s created", name)
        return token

    async def worker_for_token(self, token: str) -> str:
        wanted = digest(token)
        for name, stored in (await self.records.worker_token_digests()).items():
            if secrets.compare_digest(str(stored), wanted):
                return str(name)
        raise Unauthorized("unknown or revoked worker token")

    async def worker_token_names(self) -> builtins.list[str]:
        return await self.records.worker_token_names()

    async def revoke_worker_token(self, name: str) -> bool:
        return await self.records.delete_worker_token(name)
