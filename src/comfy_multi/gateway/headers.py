"""Security headers on every answer the gateway gives.

- No page of ours may be framed by another site (clickjacking the queue or the
  dashboard): `frame-ancestors 'none'` and, for older browsers,
  `X-Frame-Options: DENY`. Nothing of ours frames itself.
- No content-type sniffing, and no full URLs (with job or file names) in the
  Referer sent to other sites.
- HSTS when the request came over TLS: uvicorn sets the scheme from
  X-Forwarded-Proto only for proxies it trusts (`--forwarded-allow-ips`,
  loopback by default), so a client cannot ask for it over plain HTTP.

A header a route set itself is kept; a route's own Content-Security-Policy
(`sandbox` on participants' files) is kept beside ours, and browsers enforce both.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

FRAME_POLICY = "frame-ancestors 'none'"
ALWAYS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
HSTS = "max-age=31536000"


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        over_tls = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in ALWAYS.items():
                    headers.setdefault(name, value)
                policies = headers.getlist("Content-Security-Policy")
                if not any("frame-ancestors" in policy for policy in policies):
                    headers.append("Content-Security-Policy", FRAME_POLICY)
                if over_tls:
                    headers.setdefault("Strict-Transport-Security", HSTS)
            await send(message)

        await self.app(scope, receive, send_with_headers)
