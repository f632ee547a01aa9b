"""Who is asking: session cookie, API token, or HTTP Basic.

A verified password is cached (by digest) so argon2 runs once per person,
not once per request; a password change or removal bumps the user's epoch,
which ends cached logins and old session cookies alike.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import HTTPConnection

from comfy_multi.errors import Forbidden, NotFound, Unauthorized, UserNotFound
from comfy_multi.services.platform import Platform, get_platform
from comfy_multi.services.users import User

SESSION_COOKIE = "cm_session"
USER_CACHE_S = 2.0
BASIC_CACHE_S = 300.0
WORKER_CACHE_S = 10.0


class Authenticator:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.max_age = int(platform.settings.session_days * 86_400)
        self._signer = URLSafeTimedSerializer(platform.secret_key, salt="comfy-multi-session")
        self._users: dict[str, tuple[User, float]] = {}
        self._basic: dict[str, tuple[str, int, float]] = {}
        self._workers: dict[str, tuple[str, float]] = {}

    def session_cookie(self, user: User) -> str:
        return self._signer.dumps({"u": user.name, "e": user.epoch})

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
            return await self._basic_user(value.strip())
        cookie = conn.cookies.get(SESSION_COOKIE)
        if cookie:
            return await self._session_user(cookie)
        return None

    async def _session_user(self, cookie: str) -> User | None:
        try:
            data = self._signer.loads(cookie, max_age=self.max_age)
            user = await self.user(str(data["u"]))
        except (BadSignature, KeyError, TypeError, UserNotFound):
            return None
        return user if user.epoch == data.get("e") else None

    async def _basic_user(self, value: str) -> User:
        try:
            name, _, password = base64.b64decode(value).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthorized("malformed Basic credentials") from None
        key = hashlib.sha256(f"{name}\0{password}".encode()).hexdigest()
        hit = self._basic.get(key)
        now = time.monotonic()
        if hit and hit[2] > now:
            try:
                user = await self.user(hit[0])
            except UserNotFound:
                user = None
            if user and user.epoch == hit[1]:
                return user
        user = await self.platform.users.verify_password(name, password)
        self._basic[key] = (user.name, user.epoch, now + BASIC_CACHE_S)
        return user

    async def worker_name(self, conn: HTTPConnection) -> str:
        scheme, _, token = conn.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("the worker channel needs 'Authorization: Bearer <worker token>'")
        key = hashlib.sha256(token.strip().encode()).hexdigest()
        hit = self._workers.get(key)
        now = time.monotonic()
        if hit and hit[1] > now:
            return hit[0]
        name = await self.platform.users.worker_for_token(token.strip())
        self._workers[key] = (name, now + WORKER_CACHE_S)
        return name


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
