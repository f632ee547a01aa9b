"""Who may open the instructor's pages: signed-out visitors go to the login page,
participants are told the page is not theirs."""

from __future__ import annotations

import html
from urllib.parse import quote

from starlette.requests import HTTPConnection
from starlette.responses import HTMLResponse, RedirectResponse, Response

from comfy_multi.services.auth import signed_in
from comfy_multi.services.pages import page
from comfy_multi.services.users import User

LOGIN_PATH = "/login"


def refusal_page(name: str) -> str:
    return page(
        "Instructor only",
        "<h1>This page is for the instructor</h1>"
        f"<p>You are signed in as <b>{html.escape(name)}</b>, a participant.</p>"
        f'<a class="button" href="/u/{html.escape(quote(name))}/">Open your workspace</a>'
        '<p><a href="/logout">Sign out</a></p>',
    )


async def admin_or_refusal(conn: HTTPConnection) -> User | Response:
    """The admin asking, or the answer to give anyone else."""
    user = await signed_in(conn)
    if user is None:
        target = conn.url.path + (f"?{conn.url.query}" if conn.url.query else "")
        return RedirectResponse(f"{LOGIN_PATH}?next={quote(target, safe='')}", status_code=303)
    if not user.admin:
        return HTMLResponse(refusal_page(user.name), status_code=403)
    return user
