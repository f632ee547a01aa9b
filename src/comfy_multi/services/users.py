"""People and tokens: users with argon2 password hashes, API tokens, one-time
sign-in links, and worker tokens. Tokens are stored only as SHA-256 digests.

A password change or a removal ends every credential of that person at once,
in Redis, so every gateway process sees it on the next request: sessions,
API tokens, and (through the changed hash) cached HTTP Basic logins.
"""

from __future__ import annotations

import builtins
import hashlib
import logging
import re
import secrets
import time

import anyio.to_thread
import orjson
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel
from redis.asyncio import Redis

from comfy_multi.errors import AlreadyExists, BadRequest, Busy, NotFound, Unauthorized, UserNotFound
from comfy_multi.store.accounts import AccountRecords
from comfy_multi.store.sessions import SessionStore

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


_hasher = PasswordHasher()
TOKEN_ID_CHARS = 12  # the listed id of an API token: a prefix of its digest
MAX_TOKEN_DAYS = 3650
MIN_TOKEN_DAYS = 1 / 86_400  # a second: shorter rounds to an expiry Redis refuses


class PasswordChecks:
    """argon2 checks off the event loop, a few at a time (each takes ~64 MiB);
    callers beyond `waiting` are told to come back rather than queue forever.
    An unknown name is checked against a dummy hash, so it costs what a known
    one costs and names cannot be told apart by timing."""

    def __init__(self, at_once: int = 2, waiting: int = 64) -> None:
        self.at_once = at_once
        self.waiting = waiting
        self._limiter: anyio.CapacityLimiter | None = None
        self._queued = 0
        self._dummy: str | None = None
        # the dummy hash costs what the store's real hashes cost (set by UserStore)
        self.hasher = _hasher

    @property
    def queued(self) -> int:
        """Checks running or waiting for their turn, in this process."""
        return self._queued

    async def verify(self, hashed: str | None, password: str) -> bool:
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.at_once)
        if self._queued >= self.waiting:
            raise Busy("too many sign-ins at once; try again in a moment", retry_after_s=2)
        self._queued += 1
        try:
            if hashed is None and self._dummy is None:
                self._dummy = await anyio.to_thread.run_sync(
                    self.hasher.hash, secrets.token_hex(16), limiter=self._limiter
                )
            target = hashed if hashed is not None else self._dummy
            assert target is not None
            ok = await anyio.to_thread.run_sync(_matches, target, password, limiter=self._limiter)
        finally:
            self._queued -= 1
        return ok and hashed is not None


def _matches(hashed: str, password: str) -> bool:
    try:
        return bool(_hasher.verify(hashed, password))
    except (VerificationError, InvalidHashError):
        return False


class ApiToken(BaseModel):
    id: str
    user: str
    label: str = ""
    created_ms: int
    expires_ms: int | None = None


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
    def __init__(
        self,
        redis: Redis,
        checks: PasswordChecks | None = None,
        hasher: PasswordHasher | None = None,
    ) -> None:
        self.redis = redis
        self.records = AccountRecords(redis)
        self.checks = checks or PasswordChecks()
        self.sessions = SessionStore(redis)
        # verification reads the cost from each stored hash; only new hashes use this
        self.hasher = hasher or _default_hasher
        self.checks.hasher = self.hasher

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

    async def remove(self, name: str) -> dict[str, int]:
        """Remove the account and end every credential; counts of what ended."""
        await self.get(name)
        await self.records.delete(name)
        ended = await self.end_credentials(name)
        logger.info("user %s removed", name)
        return ended

    async def end_credentials(self, name: str) -> dict[str, int]:
        """End every session and API token of `name` (Basic logins end with the hash)."""
        sessions = await self.sessions.end_all(name)
        tokens = await self.revoke_api_tokens(name)
        return {"sessions": sessions, "api_tokens": tokens}

    async def set_password(self, name: str, password: str | None = None) -> str:
        await self.get(name)
        password = password or new_password()
        if len(password) < MIN_PASSWORD:
            raise BadRequest(f"a password needs at least {MIN_PASSWORD} characters")
        hashed = await anyio.to_thread.run_sync(self.hasher.hash, password)
        await self.records.replace_password_hash(name, hashed)
        await self.end_credentials(name)
        logger.info("password of %s reset", name)
        return password

    async def password_hash(self, name: str) -> str | None:
        return await self.records.password_hash(name) if NAME_RE.match(name) else None

    async def check_password(self, name: str, password: str) -> tuple[User, str]:
        """The user and the hash that matched; one argon2 verification, known
        name or not. Callers throttle failures and may cache by the hash."""
        hashed = await self.password_hash(name)
        if not await self.checks.verify(hashed, password) or hashed is None:
            raise Unauthorized("wrong name or password")
        return await self.get(name), hashed

    async def verify_password(self, name: str, password: str) -> User:
        return (await self.check_password(name, password))[0]

    # API tokens and one-time sign-in links ---------------------------------

    async def create_api_token(
        self, name: str, *, label: str = "", expires_days: float | None = None
    ) -> tuple[str, ApiToken]:
        """A new token (shown once) and what is kept about it."""
        await self.get(name)
        if expires_days is not None and not MIN_TOKEN_DAYS <= expires_days <= MAX_TOKEN_DAYS:
            raise BadRequest(
                f"Expires_days must be at least {MIN_TOKEN_DAYS:.6f} (a second) "
                f"and at most {MAX_TOKEN_DAYS}"
            )
        token = "cmu_" + secrets.token_urlsafe(24)
        token_digest = digest(token)
        now_ms = int(time.time() * 1000)
        ttl_ms = int(expires_days * 86_400_000) if expires_days is not None else None
        info = ApiToken(
            id=token_digest[:TOKEN_ID_CHARS],
            user=name,
            label=label,
            created_ms=now_ms,
            expires_ms=now_ms + ttl_ms if ttl_ms is not None else None,
        )
        await self.records.add_api_token(token_digest, name, info.model_dump_json(), ttl_ms)
        return token, info

    async def user_for_api_token(self, token: str) -> User:
        name = await self.records.api_token_user(digest(token))
        if not name:
            raise Unauthorized("unknown, expired or revoked API token")
        return await self.get(str(name))

    async def api_tokens(self, name: str) -> builtins.list[ApiToken]:
        """Live tokens of one user, oldest first; expired ones are forgotten here."""
        now_ms = int(time.time() * 1000)
        live, expired = [], []
        for token_digest, raw in (await self.records.api_token_rows(name)).items():
            info = ApiToken(**orjson.loads(raw))
            if info.expires_ms is not None and info.expires_ms <= now_ms:
                expired.append(token_digest)
            else:
                live.append(info)
        if expired:
            await self.records.drop_api_tokens(name, expired)
        return sorted(live, key=lambda t: t.created_ms)

    async def revoke_api_token(self, name: str, token_id: str) -> ApiToken:
        if len(token_id) >= 8:
            for token_digest, raw in (await self.records.api_token_rows(name)).items():
                if token_digest.startswith(token_id):
                    await self.records.drop_api_tokens(name, [token_digest])
                    logger.info("API token %s of %s revoked", token_id, name)
                    return ApiToken(**orjson.loads(raw))
        raise NotFound(f"{name} has no API token {token_id!r}")

    async def revoke_api_tokens(self, name: str) -> int:
        digests = builtins.list(await self.records.api_token_rows(name))
        await self.records.drop_api_tokens(name, digests)
        return len(digests)

    async def create_signin_token(self, name: str, ttl_s: int = SIGNIN_TTL_S) -> str:
        user = await self.get(name)
        token = secrets.token_urlsafe(18)
        # bound to this person as they are now: a password change, or a new
        # person given the same name, makes older links worthless
        stamp = f"{name}\n{user.created_ms}\n{user.epoch}"
        await self.records.add_signin_token(digest(token), stamp, ttl_s)
        return token

    async def signin_token_user(self, token: str) -> User:
        """Whom a sign-in link is for, without using it up (a link preview may ask)."""
        return await self._link_user(await self.records.peek_signin_token(digest(token)))

    async def redeem_signin_token(self, token: str) -> User:
        return await self._link_user(await self.records.take_signin_token(digest(token)))

    async def _link_user(self, stamp: str | None) -> User:
        """The person a link was made for, if they are still that person (same
        account, same password); Unauthorized otherwise."""
        used = "this sign-in link was already used or has expired; ask for a new one"
        if not stamp:
            raise Unauthorized(used)
        name, _, rest = stamp.partition("\n")
        try:
            user = await self.get(name)
        except UserNotFound:
            raise Unauthorized(used) from None
        if rest and rest != f"{user.created_ms}\n{user.epoch}":
            raise Unauthorized(used)
        return user

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
