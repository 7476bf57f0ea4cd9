"""Requests from other sites' pages: a state-changing HTTP request (not GET/HEAD/OPTIONS) with a
foreign Origin, or without Origin but with a foreign Referer, or marked `Sec-Fetch-Site:
cross-site`, is refused with 403 (CSRF); so is a WebSocket handshake whose Origin is not this
server's (cross-site WebSocket hijacking). No Origin at all (python clients) is allowed.

This server's origins are the request's own (scheme and Host), http://<each allowed name>:<port>
and the configured CORS origins. No Starlette middleware refuses requests by their origin
(CORSMiddleware only adds headers for the browser to enforce), so this guard is the project's.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from server.guards.answers import answer, deny_websocket
from server.guards.settings import (
    DEFAULT_PORTS,
    Host,
    Origin,
    SecuritySettings,
    format_origin,
    parse_origin,
    printable,
    read_host,
)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class OriginGuard:
    """403 for cross-site writes and cross-site WebSocket handshakes."""

    def __init__(self, app: ASGIApp, settings: SecuritySettings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            method = scope.get("method", "GET").upper()
            if method not in SAFE_METHODS:
                problem = self._cross_site_problem(scope, method)
                if problem is not None:
                    await answer(scope, send, 403, "cross_site", problem)
                    return
        elif scope["type"] == "websocket":
            origin_text = Headers(scope=scope).get("origin")
            own = own_origin(scope)
            if origin_text is not None and not self._trusted(parse_origin(origin_text), own):
                shown = format_origin(own)
                detail = (
                    f"WebSocket Origin {printable(origin_text)!r} is not this server's ({shown})"
                )
                await deny_websocket(scope, receive, send, 403, "cross_site", detail)
                return
        await self.app(scope, receive, send)

    def _trusted(self, origin: Origin | None, own: Origin) -> bool:
        """The request's `own` origin, one of the served origins, or a configured CORS origin."""
        if origin is None:
            return False
        if origin == own:
            return True
        scheme, host, port = origin
        if scheme == "http" and host in self.settings.host_names and port == self.settings.port:
            return True
        return self.settings.is_cors_origin(origin)

    def _cross_site_problem(self, scope: Scope, method: str) -> str | None:
        """Why a state-changing request looks cross-site (CSRF), or None."""
        headers = Headers(scope=scope)
        request_origin = own_origin(scope)
        own = format_origin(request_origin)
        origin_text = headers.get("origin")
        if origin_text is not None:
            if not self._trusted(parse_origin(origin_text), request_origin):
                return (
                    f"cross-origin {method} refused: Origin "
                    f"{printable(origin_text)!r} is not this server's ({own})"
                )
            return None
        referer = headers.get("referer")
        if referer is not None and not self._trusted(parse_origin(referer), request_origin):
            shown = format_origin(o) if (o := parse_origin(referer)) else printable(referer)
            return (
                f"cross-origin {method} refused: Referer from {shown!r} is not "
                f"this server's ({own})"
            )
        if headers.get("sec-fetch-site") == "cross-site":
            return f"cross-site {method} refused (Sec-Fetch-Site: cross-site)"
        return None


def own_origin(scope: Scope) -> Origin:
    """The request's origin as the browser sees it: its scheme and its (admitted) Host."""
    scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"
    host = read_host(Headers(scope=scope))
    name = host.name if isinstance(host, Host) else ""
    port = host.port if isinstance(host, Host) and host.port is not None else None
    return (scheme, name, port if port is not None else DEFAULT_PORTS[scheme])
