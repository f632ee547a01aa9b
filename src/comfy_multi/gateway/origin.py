"""Cross-site requests: a browser's state change must come from our own pages.

SameSite=Lax alone lets another port of the same host (another site's form,
a participant's own web server) post with the instructor's cookie. So every
state-changing request that relies on the browser's cookie, on every path
(/api/v1, /admin, /u/<name>/, sign in and out), must name this gateway in its
Origin header, or say `Sec-Fetch-Site: same-origin` when it has no Origin.
Bearer tokens (API tokens, workers) are never attached by a browser on its
own, so they are left alone; scripts and curl send neither header, so HTTP
Basic from a script passes too, while a browser replaying remembered Basic
credentials for a foreign page is refused like a cookie.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FOREIGN_FETCH_SITES = frozenset({"cross-site", "same-site"})


def own_hosts(headers: Headers, public_url: str | None) -> set[str]:
    hosts = {headers.get("host", "").lower()}
    if public_url:
        hosts.add(urlsplit(public_url).netloc.lower())
    return hosts


def foreign(headers: Headers, public_url: str | None) -> bool:
    """True when a browser says the request comes from a page not served here."""
    origin = headers.get("origin")
    if origin is not None:
        host = urlsplit(origin).netloc.lower()
        return not host or host not in own_hosts(headers, public_url)  # "null" counts as foreign
    return headers.get("sec-fetch-site", "").lower() in FOREIGN_FETCH_SITES


class OriginCheck:
    def __init__(self, app: ASGIApp, public_url: str | None) -> None:
        self.app = app
        self.public_url = public_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            headers = Headers(scope=scope)
            bearer = headers.get("authorization", "")[:7].lower() == "bearer "
            if not bearer and foreign(headers, self.public_url):
                refusal = JSONResponse(
                    {
                        "error": "cross_site",
                        "message": "cross-site request refused: the Origin is not this gateway",
                    },
                    status_code=403,
                )
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)
