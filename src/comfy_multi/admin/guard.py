"""Who may open the instructor's pages: signed-out visitors go to the login page,
participants are told the page is not theirs."""

from __future__ import annotations

import html
from urllib.parse import quote

from starlette.requests import HTTPConnection
from starlette.responses import HTMLResponse, RedirectResponse, Response

from comfy_multi.services.auth import signed_in
from comfy_multi.services.users import User

LOGIN_PATH = "/login"

_REFUSED = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Instructor only</title>
<style>body {{ font-family: system-ui, sans-serif; max-width: 32rem; margin: 4rem auto; }}</style>
</head><body>
<h1>This page is for the instructor</h1>
<p>You are signed in as <b>{name}</b>, a participant.
Your workspace is at <a href="/u/{path}/">/u/{name}/</a>.</p>
</body></html>
"""


async def admin_or_refusal(conn: HTTPConnection) -> User | Response:
    """The admin asking, or the answer to give anyone else."""
    user = await signed_in(conn)
    if user is None:
        target = conn.url.path + (f"?{conn.url.query}" if conn.url.query else "")
        return RedirectResponse(f"{LOGIN_PATH}?next={quote(target, safe='')}", status_code=303)
    if not user.admin:
        page = _REFUSED.format(name=html.escape(user.name), path=quote(user.name))
        return HTMLResponse(page, status_code=403)
    return user
