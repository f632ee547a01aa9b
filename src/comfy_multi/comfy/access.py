"""Who may use /u/<name>/: only <name> themself, and only from the gateway's own pages.

A participant's workspace is theirs alone: another signed-in user (the
instructor included) gets 403, a signed-out caller 401. State-changing calls
and the websocket must also come from a page served by this gateway (the
Origin check ComfyUI does on loopback, done here on every host), so another
site cannot drive a participant's queue through their cookie.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from comfy_multi.errors import Forbidden, Unauthorized
from comfy_multi.services.auth import get_auth, same_origin
from comfy_multi.services.users import User

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


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
