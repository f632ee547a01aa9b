"""The sign-in sheet: one card per participant with their name, workspace URL and
a QR code of a one-time sign-in link, to print and cut up before a workshop."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import quote

import segno
from starlette.requests import Request

from comfy_multi.netaddr import is_loopback_url, same_origin
from comfy_multi.services.platform import Platform
from comfy_multi.services.users import User
from comfy_multi.wording import plural

QR_ERROR = "m"  # survives a crease or a thumb on a printed sheet
QR_SCALE_HTML = 4
CARDS_PER_PAGE = 8  # two columns of four on A4, in the print CSS and the PDF alike

T = TypeVar("T")


@dataclass(frozen=True)
class Card:
    name: str
    workspace_url: str
    signin_url: str
    password: str | None = None  # only on a sheet printed with new passwords

    def qr(self) -> segno.QRCode:
        return segno.make(self.signin_url, error=QR_ERROR)


def base_url(platform: Platform, request: Request) -> str:
    """COMFY_MULTI_PUBLIC_URL when set (behind a proxy the request's own URL is
    the internal one), else the address this page was asked on."""
    configured = platform.settings.public_url
    return (configured or str(request.base_url)).rstrip("/")


def address_warning(printed: str, opened: str) -> str | None:
    """What the instructor must hear before printing, shown on screen only: cards
    with an address participants cannot open are a lost quarter of an hour."""
    if is_loopback_url(printed):
        return (
            f"The cards print {printed}/, an address only this computer can open. "
            "Start the room with --host 0.0.0.0 and set COMFY_MULTI_PUBLIC_URL to the "
            "address participants type (e.g. http://192.168.1.20:8080), then reload."
        )
    if not same_origin(printed, opened):
        return (
            f"The cards print {printed}/, but this page was opened at {opened}/. "
            "Check that participants can open the printed address before printing."
        )
    return None


def participants(users: list[User], only: str | None, *, instructors: bool = False) -> list[User]:
    """Participants, or just those named in `only` ("alice,bob"). An
    instructor's card (a link that signs in with the admin role) is made only
    when `instructors` asks for it, even when the instructor is named."""
    chosen = [u for u in users if instructors or not u.admin]
    if only:
        wanted = {n.strip().lower() for n in only.split(",") if n.strip()}
        chosen = [u for u in chosen if u.name in wanted]
    return chosen


def pages(items: list[T]) -> list[list[T]]:
    """Items in sheet pages of CARDS_PER_PAGE (one empty page when none)."""
    return [items[i : i + CARDS_PER_PAGE] for i in range(0, len(items), CARDS_PER_PAGE)] or [[]]


def page_of(items: list[T], page: int) -> list[T]:
    """Page `page` (from 1; clamped to the first and last)."""
    chunks = pages(items)
    return chunks[min(max(page, 1), len(chunks)) - 1]


async def make_cards(
    platform: Platform, base: str, users: list[User], *, new_passwords: bool = False
) -> list[Card]:
    """A fresh one-time link per person; links from earlier sheets stay valid
    until used or expired. With `new_passwords`, each person's password is
    replaced (ending their open sessions) and printed on the card."""
    cards = []
    for u in users:
        # the new password first: a password change revokes the links made before it
        password = await platform.users.set_password(u.name) if new_passwords else None
        token = await platform.users.create_signin_token(u.name)
        workspace = f"{base}/u/{quote(u.name)}/"
        cards.append(Card(u.name, workspace, f"{base}/signin/{token}", password))
    return cards


def _card_html(card: Card) -> str:
    svg = card.qr().svg_inline(scale=QR_SCALE_HTML, title=f"sign-in link for {card.name}")
    password = (
        f'<p class="password">Password: <b>{html.escape(card.password)}</b></p>'
        if card.password
        else ""
    )
    return (
        '<section class="card">'
        f'<div class="qr">{svg}</div>'
        '<div class="who">'
        f'<h2 class="name">{html.escape(card.name)}</h2>'
        '<p class="hint">Scan to sign in (works once), or open</p>'
        f'<p class="url">{html.escape(card.workspace_url)}</p>'
        f"{password}"
        f'<p class="link" data-signin="{html.escape(card.signin_url)}">'
        f"{html.escape(card.signin_url)}</p>"
        "</div></section>"
    )


def render_html(cards: list[Card], base: str, query: str, warning: str | None = None) -> str:
    suffix = f"?{html.escape(query)}" if query else ""
    warn = f'<p class="warn" role="alert">{html.escape(warning)}</p>' if warning else ""
    if any(c.password for c in cards):
        passwords = (
            '<span class="note">These cards carry new passwords: print them now, '
            "they are not shown again.</span>"
        )
    else:
        passwords = (
            f'<form method="post" action="/admin/signin-sheet{suffix}" class="passwords">'
            '<button type="submit" title="Replaces each password on this sheet and signs '
            'those people out">Print new passwords on the cards</button></form>'
        )
    body = "\n".join(_card_html(c) for c in cards) or (
        '<p class="empty">No participants yet: add them on the dashboard or with '
        "<code>comfy-multi user add --from-csv FILE</code>.</p>"
    )
    count = len(pages(cards))
    who = plural(len(cards), "participant")
    png_links = " ".join(
        f'<a href="/admin/signin-sheet.png?page={p}{"&amp;" + html.escape(query) if query else ""}"'
        f' download="signin-sheet-{p}.png">PNG {p}</a>'
        for p in range(1, count + 1)
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign-in sheet</title>
<link rel="stylesheet" href="/admin/static/sheet.css">
</head><body>
<header class="toolbar">
  <a href="/admin">&larr; Dashboard</a>
  <button type="button" id="print">Print</button>
  <a href="/admin/signin-sheet.pdf{suffix}" download="signin-sheet.pdf">PDF</a>
  {png_links}
  {passwords}
  <span class="note">Each load makes new one-time links for {who}.</span>
</header>
{warn}
<main class="sheet">
<p class="base">Workshop address: <b>{html.escape(base)}/</b></p>
{body}
</main>
<script src="/admin/static/sheet.js"></script>
</body></html>
"""
