"""The sign-in, sign-out and root routes of the plain HTML pages."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from comfy_multi.services.auth import SESSION_COOKIE, get_auth, signed_in
from comfy_multi.services.pages import NO_STORE, home_of, login_page, page

router = APIRouter(include_in_schema=False)


@router.get("/")
async def root(request: Request) -> Response:
    user = await signed_in(request)
    return RedirectResponse(home_of(user) if user else "/login", status_code=303)


@router.get("/login")
async def login(request: Request) -> Response:
    return HTMLResponse(login_page(await signed_in(request)), headers=NO_STORE)


@router.get("/logout")
async def logout(request: Request) -> Response:
    script = "try{localStorage.clear();sessionStorage.clear()}catch(e){}location.replace('/login')"
    body = '<h1>Signed out</h1><p><a href="/login">Sign in again</a></p>'
    await get_auth(request).end_session(request.cookies.get(SESSION_COOKIE))
    response = HTMLResponse(page("Signed out", body, script), headers=NO_STORE)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
