"""Sign in and out: JSON for scripts and the login page, one-time links for the room."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict
from starlette.requests import Request

from comfy_multi.errors import Unauthorized
from comfy_multi.services.auth import SESSION_COOKIE, PlatformDep, get_auth
from comfy_multi.services.pages import home_of, signin_confirm, signin_used
from comfy_multi.services.users import User

router = APIRouter(tags=["session"])


class Credentials(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    password: str


async def set_session(response: Response, request: Request, user: User) -> None:
    """A new server-side session; a session this browser had before ends."""
    auth = get_auth(request)
    await auth.end_session(request.cookies.get(SESSION_COOKIE))
    response.set_cookie(
        SESSION_COOKIE,
        await auth.start_session(user),
        max_age=auth.max_age,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


@router.post("/api/v1/login")
async def login(body: Credentials, request: Request, response: Response) -> dict[str, str]:
    """Check a name and password and set the session cookie. Failures are
    throttled per account and per address: 429 with Retry-After."""
    user, _ = await get_auth(request).sign_in(request, body.name.strip().lower(), body.password)
    await set_session(response, request, user)
    return {"name": user.name, "home": home_of(user)}


@router.post("/api/v1/logout", status_code=204)
async def logout(request: Request) -> Response:
    """End the session here and on every gateway process, not just the cookie."""
    await get_auth(request).end_session(request.cookies.get(SESSION_COOKIE))
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# same-origin, not no-referrer: the link never leaves in a Referer, and the confirm
# form still sends its Origin (with no-referrer Chromium sends "null", refused as foreign)
NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "same-origin"}


@router.get("/signin/{token}", include_in_schema=False)
async def signin_link(token: str, platform: PlatformDep) -> Response:
    """A one-time link from the sign-in sheet: a "Sign in as alice" page. Opening it
    uses nothing up, so a chat app's link preview or a camera's prefetch cannot
    burn the link; the button (a POST) does."""
    try:
        user = await platform.users.signin_token_user(token)
    except Unauthorized:
        return HTMLResponse(signin_used(), status_code=410, headers=NO_STORE)
    return HTMLResponse(signin_confirm(user.name, f"/signin/{token}"), headers=NO_STORE)


@router.post("/signin/{token}", include_in_schema=False)
async def signin_confirmed(token: str, request: Request, platform: PlatformDep) -> Response:
    """Uses the link up, sets the cookie and opens the workspace."""
    try:
        user = await platform.users.redeem_signin_token(token)
    except Unauthorized:
        return HTMLResponse(signin_used(), status_code=410, headers=NO_STORE)
    response = RedirectResponse(f"/u/{user.name}/", status_code=303)
    await set_session(response, request, user)
    return response
