"""Network hardening: `SecurityMiddleware` in front of the whole application, `install_security`.

The middleware sits outside Starlette's error middleware (so even a 500 carries the security
headers) and handles "http" and "websocket" scopes. It is a stack of guards (server/guards/),
each one job, run in this order for every request and WebSocket handshake:

1. Host allow-list (guards/host.py): only localhost, 127.0.0.1, [::1] (any port) plus the bound
   address and the names added with --allowed-host. Anything else gets 400; this defeats DNS
   rebinding. Starlette's TrustedHostMiddleware decides; the answer is the project's.
2. Security headers on every HTTP answer (guards/headers.py): Content-Security-Policy,
   X-Content-Type-Options, X-Frame-Options, Referrer-Policy, Cross-Origin-Opener-Policy,
   Permissions-Policy.
3. CORS stays closed unless `cors_origins` lists an origin (guards/cors.py, Starlette's
   CORSMiddleware for those origins only).
4. Origin (guards/origin.py): a WebSocket handshake whose Origin is not this server's is refused
   with 403 (cross-site WebSocket hijacking); no Origin at all (python clients) is allowed. A
   state-changing HTTP request (not GET/HEAD/OPTIONS) with a foreign Origin, or without Origin
   but with a foreign Referer, or marked `Sec-Fetch-Site: cross-site`, is refused with 403 (CSRF).
5. Token, when one is configured (guards/access.py; always when bound beyond loopback): header
   `X-Backprop-Lens-Token`, `Authorization: Bearer`, query `?token=` or cookie `bl_token`,
   compared with hmac.compare_digest. A valid `?token=` sets the cookie (HttpOnly,
   SameSite=Strict). Missing or wrong: 401 for HTTP, close 4401 for a WebSocket.
6. Size limits (guards/size.py, numbers in server/limits.py), counted while the body streams in:
   a Content-Length above the limit is refused before reading; a chunked body is answered 413
   as soon as it passes. Incoming WebSocket messages above `max_ws_frame_bytes` close the socket
   with 1009.

What they enforce is `SecuritySettings` (guards/settings.py), re-exported here with the names
the CLI and the tests use.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from server.guards.access import WS_CLOSE_UNAUTHORIZED, TokenGuard
from server.guards.cors import CorsGate
from server.guards.headers import DOCS_CSP, SecurityHeaders
from server.guards.host import HostGuard
from server.guards.origin import OriginGuard
from server.guards.settings import (
    TOKEN_HEADER,
    SecurityConfigError,
    SecuritySettings,
    generate_token,
    is_loopback,
    normalize_host_name,
    parse_origin,
)
from server.guards.size import WS_CLOSE_TOO_BIG, BodyTooLargeError, SizeLimits


class SecurityMiddleware:
    """Pure ASGI middleware guarding HTTP requests and WebSocket handshakes (see module doc)."""

    def __init__(
        self, app: ASGIApp, settings: SecuritySettings, docs_paths: Iterable[str] = ()
    ) -> None:
        self.app = app
        self.settings = settings
        self.docs_paths = frozenset(docs_paths)
        guarded: ASGIApp = SizeLimits(app, settings)
        guarded = TokenGuard(guarded, settings)
        guarded = OriginGuard(guarded, settings)
        guarded = CorsGate(guarded, settings)
        guarded = SecurityHeaders(guarded, settings, self.docs_paths)
        self._guarded = HostGuard(guarded, settings, self.docs_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            await self._guarded(scope, receive, send)
        else:  # lifespan
            await self.app(scope, receive, send)


def install_security(
    app: FastAPI, settings: SecuritySettings, docs_paths: Iterable[str] | None = None
) -> None:
    """Put `SecurityMiddleware` in front of the app's whole middleware stack.

    Call it in create_app, before the app serves. It wraps the stack Starlette builds (outside
    ServerErrorMiddleware, so 500 answers carry the headers too), and keeps `settings` in
    `app.state.security`. The API documentation pages get `DOCS_CSP`: `docs_paths`, or by
    default FastAPI's own (the app's docs_url, redoc_url and OAuth2 redirect page).
    """
    if getattr(app.state, "security", None) is not None:
        raise RuntimeError("install_security: expected one call per app, got a second one")
    if app.middleware_stack is not None:
        raise RuntimeError(
            "install_security: expected an app that has not served yet, got one already running"
        )
    if docs_paths is None:
        docs_paths = (app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url)
    docs_paths = {path for path in docs_paths if path}
    build: Callable[[], ASGIApp] = app.build_middleware_stack

    def build_with_security() -> ASGIApp:
        return SecurityMiddleware(build(), settings, docs_paths)

    app.build_middleware_stack = build_with_security  # type: ignore[method-assign]
    app.state.security = settings


__all__ = [
    "DOCS_CSP",
    "TOKEN_HEADER",
    "WS_CLOSE_TOO_BIG",
    "WS_CLOSE_UNAUTHORIZED",
    "BodyTooLargeError",
    "SecurityConfigError",
    "SecurityMiddleware",
    "SecuritySettings",
    "generate_token",
    "install_security",
    "is_loopback",
    "normalize_host_name",
    "parse_origin",
]
