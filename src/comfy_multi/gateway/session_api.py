"""Sign in and out: JSON for scripts and the login page, one-time links for the room."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict
from starlette.requests import Request

from comfy_multi.errors import Unauthorized
from comfy_multi.services.auth import SESSION_COOKIE, PlatformDep, get_auth
from comfy_multi.services.pages import home_of, signin_used
from comfy_multi.services.users import User

router = APIRouter(tags=["session"])


class Credentials(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    password: str


def set_session(response: Response, request: Request, user: User) -> None:
    auth = get_auth(request)
    response.set_cookie(
        SESSION_COOKIE,
        auth.session_cookie(user),
        max_age=auth.max_age,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


@router.post("/api/v1/login")
async def login(
    body: Credentials, request: Request, response: Response, platform: PlatformDep
) -> dict[str, str]:
    """Check a name and password and set the session cookie."""
    user = await platform.users.verify_password(body.name.strip().lower(), body.password)
    set_session(response, request, user)
    return {"name": user.name, "home": home_of(user)}


@router.post("/api/v1/logout", status_code=204)
async def logout() -> Response:
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/signin/{token}", include_in_schema=False)
async def signin_link(token: str, request: Request, platform: PlatformDep) -> Response:
    """A one-time link from the sign-in sheet: sets the cookie and opens the workspace."""
    try:
        user = await platform.users.redeem_signin_token(token)
    except Unauthorized:
        return HTMLResponse(signin_used(), status_code=410, headers={"Cache-Control": "no-store"})
    response = RedirectResponse(f"/u/{user.name}/", status_code=303)
    set_session(response, request, user)
    return response
