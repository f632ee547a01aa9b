"""Who is asking: session cookie, API token, or HTTP Basic.

Every credential is checked against Redis on every request, so revocation
(sign-out, password change, removal, a revoked token) holds at once on every
gateway process. A verified Basic password is remembered by the hash it
matched, so argon2 runs once per person, not per request; a new password
(or a new person under the same name) has another hash, which ends it.
Failed passwords are throttled per account and per address (store/throttle.py).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import time
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends
from starlette.requests import HTTPConnection

from comfy_multi.errors import Forbidden, NotFound, Unauthorized, UserNotFound
from comfy_multi.services.platform import Platform, get_platform
from comfy_multi.services.users import User
from comfy_multi.store.throttle import LoginThrottle

SESSION_COOKIE = "cm_session"
USER_CACHE_S = 2.0
BASIC_CACHE_S = 300.0
BASIC_CACHE_MAX = 4096  # remembered Basic logins per process; the cache starts over beyond


def client_address(conn: HTTPConnection) -> str:
    return conn.client.host if conn.client else "unknown"


def _hash_digest(hashed: str) -> str:
    return hashlib.sha256(hashed.encode()).hexdigest()


class Authenticator:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.max_age = int(platform.settings.session_days * 86_400)
        self.throttle = LoginThrottle(platform.redis, platform.settings)
        self._users: dict[str, tuple[User, float]] = {}
        self._basic: dict[str, tuple[str, str, float]] = {}
        self._checking: dict[str, asyncio.Future[tuple[User, str]]] = {}

    async def start_session(self, user: User) -> str:
        """The cookie value of a new server-side session."""
        return await self.platform.users.sessions.start(user.name, self.max_age)

    async def end_session(self, cookie: str | None) -> None:
        if cookie:
            await self.platform.users.sessions.end(cookie)

    async def sign_in(self, conn: HTTPConnection, name: str, password: str) -> tuple[User, str]:
        """Check a password under the throttle: the user and the hash it matched."""
        address = client_address(conn)
        await self.throttle.check(name, address)
        try:
            user, hashed = await self.platform.users.check_password(name, password)
        except Unauthorized:
            await self.throttle.failed(name, address)
            raise
        await self.throttle.succeeded(name, address)
        return user, hashed

    async def user(self, name: str) -> User:
        hit = self._users.get(name)
        now = time.monotonic()
        if hit and hit[1] > now:
            return hit[0]
        user = await self.platform.users.get(name)
        self._users[name] = (user, now + USER_CACHE_S)
        return user

    def forget(self, name: str) -> None:
        self._users.pop(name, None)

    async def identify(self, conn: HTTPConnection) -> User | None:
        """The signed-in user, None when the request carries no credentials;
        Unauthorized when it carries bad ones."""
        header = conn.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value:
            return await self.platform.users.user_for_api_token(value.strip())
        if scheme.lower() == "basic" and value:
            return await self._basic_user(conn, value.strip())
        cookie = conn.cookies.get(SESSION_COOKIE)
        if cookie:
            return await self._session_user(cookie)
        return None

    async def _session_user(self, cookie: str) -> User | None:
        name = await self.platform.users.sessions.owner(cookie)
        if name is None:
            return None
        try:
            return await self.user(name)
        except UserNotFound:
            return None

    async def _basic_user(self, conn: HTTPConnection, value: str) -> User:
        try:
            name, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise Unauthorized("malformed Basic credentials") from None
        key = hashlib.sha256(f"{name}\0{password}".encode()).hexdigest()
        hit = self._basic.get(key)
        now = time.monotonic()
        if hit and hit[2] > now:
            hashed = await self.platform.users.password_hash(hit[0])
            if hashed is not None and _hash_digest(hashed) == hit[1]:
                try:
                    return await self.user(hit[0])
                except UserNotFound:
                    pass
            self._basic.pop(key, None)
        # a script often sends several requests at once with the same
        # credentials: they share one check instead of queueing one each
        pending = self._checking.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self.sign_in(conn, name, password))
            self._checking[key] = pending
            pending.add_done_callback(lambda _: self._checking.pop(key, None))
        user, matched = await asyncio.shield(pending)
        if len(self._basic) >= BASIC_CACHE_MAX:
            self._basic.clear()
        self._basic[key] = (user.name, _hash_digest(matched), now + BASIC_CACHE_S)
        return user

    async def worker_name(self, conn: HTTPConnection) -> str:
        """Read from Redis on every request: a revoked worker token stops at once."""
        scheme, _, token = conn.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("the worker channel needs 'Authorization: Bearer <worker token>'")
        return await self.platform.users.worker_for_token(token.strip())


def get_auth(conn: HTTPConnection) -> Authenticator:
    auth: Authenticator = conn.app.state.auth
    return auth


def same_origin(conn: HTTPConnection) -> bool:
    """True when the request has no Origin (scripts, curl) or one naming this host."""
    origin = conn.headers.get("origin")
    if origin is None:
        return True
    host = urlsplit(origin).netloc.lower()
    if not host:
        return False  # "null" (sandboxed frames, file://) never counts as ours
    allowed = {conn.headers.get("host", "").lower()}
    public_url = get_platform(conn).settings.public_url
    if public_url:
        allowed.add(urlsplit(public_url).netloc.lower())
    return host in allowed


async def signed_in(conn: HTTPConnection) -> User | None:
    """The caller, or None when signed out or their credentials are bad."""
    try:
        return await get_auth(conn).identify(conn)
    except (Unauthorized, NotFound):  # a token of a removed user counts as signed out
        return None


async def current_user(conn: HTTPConnection) -> User:
    user = await get_auth(conn).identify(conn)
    if user is None:
        raise Unauthorized("sign in first (session cookie, API token or HTTP Basic)")
    return user


async def admin_user(user: Annotated[User, Depends(current_user)]) -> User:
    if not user.admin:
        raise Forbidden("only the instructor (admin role) can do that")
    return user


async def worker_name(conn: HTTPConnection) -> str:
    return await get_auth(conn).worker_name(conn)


CurrentUser = Annotated[User, Depends(current_user)]
AdminUser = Annotated[User, Depends(admin_user)]
WorkerName = Annotated[str, Depends(worker_name)]


async def platform_dependency(conn: HTTPConnection) -> Platform:
    """Async on purpose: FastAPI runs a sync dependency in a thread, per request."""
    return get_platform(conn)


PlatformDep = Annotated[Platform, Depends(platform_dependency)]
