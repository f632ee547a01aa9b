"""Routes of the instructor's dashboard: the page, its websocket, the sign-in
sheet and /metrics. Every action the page takes goes through /api/v1."""

from __future__ import annotations

import logging
from importlib.resources import files
from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode

import anyio.to_thread
from fastapi import APIRouter, Query, WebSocket
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response

from comfy_multi.admin import live, sheet, sheet_image
from comfy_multi.admin.check_api import router as check_router
from comfy_multi.admin.guard import admin_or_refusal
from comfy_multi.admin.metrics import router as metrics_router
from comfy_multi.errors import Forbidden, NotFound
from comfy_multi.services.auth import PlatformDep, same_origin, signed_in
from comfy_multi.services.platform import get_platform

logger = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)
router.include_router(metrics_router)
router.include_router(check_router)

STATIC = Path(str(files("comfy_multi.admin").joinpath("static")))
STATIC_TYPES = {".html": "text/html", ".css": "text/css", ".js": "text/javascript"}
# the page loads only what we serve; names and messages reach the DOM as text
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'"
    ),
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
}
UsersQuery = Annotated[str | None, Query(description="comma-separated names; default: all")]
InstructorsQuery = Annotated[
    bool, Query(description="also make cards (admin sign-in links) for instructors")
]


@router.get("/admin")
async def dashboard(request: Request) -> Response:
    who = await admin_or_refusal(request)
    if isinstance(who, Response):
        return who
    return FileResponse(STATIC / "admin.html", media_type="text/html", headers=PAGE_HEADERS)


@router.get("/admin/static/{name}")
async def static(name: str, request: Request) -> Response:
    who = await admin_or_refusal(request)
    if isinstance(who, Response):
        return who
    path = STATIC / name
    if "/" in name or path.suffix not in STATIC_TYPES or not path.is_file():
        raise NotFound(f"no dashboard file {name!r}")
    return FileResponse(
        path, media_type=STATIC_TYPES[path.suffix], headers={"Cache-Control": "no-cache"}
    )


@router.websocket("/admin/ws")
async def dashboard_socket(ws: WebSocket) -> None:
    user = await signed_in(ws)
    # closing before accepting answers the handshake with 403
    if user is None or not user.admin or not same_origin(ws):
        await ws.close(code=1008)
        return
    await ws.accept()
    await live.serve(ws, get_platform(ws), user)


async def _cards(
    request: Request,
    platform: PlatformDep,
    users: str | None,
    page: int | None = None,
    *,
    new_passwords: bool = False,
    instructors: bool = False,
) -> list[sheet.Card] | Response:
    """The sheet's cards, each minting a one-time link: so only for an admin
    (anyone else gets the refusal page instead)."""
    who = await admin_or_refusal(request)
    if isinstance(who, Response):
        return who
    chosen = sheet.participants(await platform.users.list(), users, instructors=instructors)
    if page is not None:
        chosen = sheet.page_of(chosen, page)  # links only for the cards printed
    base = sheet.base_url(platform, request)
    return await sheet.make_cards(platform, base, chosen, new_passwords=new_passwords)


def _sheet_page(
    request: Request,
    platform: PlatformDep,
    cards: list[sheet.Card],
    users: str | None,
    instructors: bool = False,
) -> Response:
    asked = {"users": users} if users else {}
    query = urlencode({**asked, **({"instructors": "true"} if instructors else {})})
    base = sheet.base_url(platform, request)
    warning = sheet.address_warning(base, str(request.base_url).rstrip("/"))
    page = sheet.render_html(cards, base, query, warning)
    return HTMLResponse(page, headers=PAGE_HEADERS)


@router.get("/admin/address")
async def printed_address(request: Request, platform: PlatformDep) -> Response:
    """The address the sign-in sheet prints, and a warning when participants could
    not open it; the dashboard shows the warning."""
    who = await admin_or_refusal(request)
    if isinstance(who, Response):
        return who
    base = sheet.base_url(platform, request)
    warning = sheet.address_warning(base, str(request.base_url).rstrip("/"))
    return JSONResponse(
        {"printed": base, "warning": warning}, headers={"Cache-Control": "no-store"}
    )


@router.get("/admin/signin-sheet")
async def signin_sheet(
    request: Request,
    platform: PlatformDep,
    users: UsersQuery = None,
    instructors: InstructorsQuery = False,
) -> Response:
    cards = await _cards(request, platform, users, instructors=instructors)
    if isinstance(cards, Response):
        return cards
    return _sheet_page(request, platform, cards, users, instructors)


@router.post("/admin/signin-sheet")
async def signin_sheet_with_passwords(
    request: Request, platform: PlatformDep, users: UsersQuery = None
) -> Response:
    """The same sheet with a new password on each card, for people who scan with a
    phone but work on a laptop. A POST: replacing passwords is never a link's side effect."""
    if not same_origin(request):
        raise Forbidden("cross-site request refused: the Origin is not this gateway")
    cards = await _cards(request, platform, users, new_passwords=True)
    if isinstance(cards, Response):
        return cards
    return _sheet_page(request, platform, cards, users)


@router.get("/admin/signin-sheet.png")
async def signin_sheet_png(
    request: Request,
    platform: PlatformDep,
    users: UsersQuery = None,
    page: Annotated[int, Query(ge=1)] = 1,
    instructors: InstructorsQuery = False,
) -> Response:
    cards = await _cards(request, platform, users, page, instructors=instructors)
    if isinstance(cards, Response):
        return cards
    body = await anyio.to_thread.run_sync(sheet_image.png, cards)
    return Response(body, media_type="image/png", headers={"Cache-Control": "no-store"})


@router.get("/admin/signin-sheet.pdf")
async def signin_sheet_pdf(
    request: Request,
    platform: PlatformDep,
    users: UsersQuery = None,
    instructors: InstructorsQuery = False,
) -> Response:
    cards = await _cards(request, platform, users, instructors=instructors)
    if isinstance(cards, Response):
        return cards
    body = await anyio.to_thread.run_sync(sheet_image.pdf, cards)
    headers = {
        "Cache-Control": "no-store",
        "Content-Disposition": 'inline; filename="signin-sheet.pdf"',
    }
    return Response(body, media_type="application/pdf", headers=headers)
