"""Who may use /u/<name>/: only <name> themself, and only from the gateway's own pages.

A participant's workspace is theirs alone: another signed-in user (the
instructor included) gets 403, a signed-out caller 401. State-changing calls
and the websocket must also come from a page served by this gateway (the
Origin check ComfyUI does on loopback, done here on every host), so another
site cannot drive a participant's queue through their cookie.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends
from starlette.requests import HTTPConnection

from comfy_multi.errors import Forbidden, NotFound, Unauthorized
from comfy_multi.gateway.auth import get_auth
from comfy_multi.gateway.platform import get_platform
from comfy_multi.users import User

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


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


async def participant(name: str, conn: HTTPConnection) -> User:
    """The owner of workspace `name`, or 401/403."""
    user = await get_auth(conn).identify(conn)
    if user is None:
        raise Unauthorized("sign in first (session cookie, API token or HTTP Basic)")
    if user.name != name:
        raise Forbidden(f"this is {name}'s workspace; yours is /u/{user.name}/")
    method = conn.scope.get("method", "GET")
    if method not in SAFE_METHODS and not same_origin(conn):
        raise Forbidden("cross-site request refused: the Origin is not this gateway")
    return user


Participant = Annotated[User, Depends(participant)]
