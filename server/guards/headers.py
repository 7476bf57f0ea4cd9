"""The security headers every HTTP answer carries: Content-Security-Policy, X-Content-Type-Options,
X-Frame-Options, Referrer-Policy, Cross-Origin-Opener-Policy, Permissions-Policy, and
Cross-Origin-Resource-Policy (or Vary: Origin when CORS origins are configured).

The Swagger UI (/docs) and ReDoc (/redoc) pages load their scripts from this server
(static/vendor/, server/routes/docs.py) but run an inline script, and ReDoc injects styles and
starts a blob: worker, so those paths alone get a relaxed policy (`DOCS_CSP`), which still names
no other host. Every other page, the app included, gets the strict `default-src 'self'` policy.
Starlette has no middleware for these.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.guards.settings import Host, SecuritySettings, read_host

# The policy for the app's own pages: its own scripts and styles only, no inline code, no frames.
# connect-src also names the ws:// origin explicitly (older Safari does not let 'self' cover ws:).
APP_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "font-src 'self'; connect-src 'self' {ws_origins}; object-src 'none'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
# The Swagger UI and ReDoc pages: vendored scripts and styles from this server, FastAPI's one
# inline start-up script, styles injected at run time, ReDoc's blob: worker, data: images.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
    "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
STATIC_SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
)


def security_headers(
    settings: SecuritySettings, path: str, host: Host | None, docs_paths: Iterable[str] = ()
) -> list[tuple[bytes, bytes]]:
    """The headers of an answer to `path`; `host` is the request's Host when this server
    answers to it (the policy then names its ws:// origin too, e.g. an SSH tunnel's port)."""
    headers = list(STATIC_SECURITY_HEADERS)
    if path in docs_paths:
        csp = DOCS_CSP
    else:
        # Chromium rejects IPv6 literals in CSP sources; 'self' covers those anyway.
        ws = {f"ws://{host.value}"} if host is not None else set()
        ws.update(f"ws://{name}:{settings.port}" for name in settings.host_names)
        ws = {source for source in ws if "[" not in source}
        csp = APP_CSP.format(ws_origins=" ".join(sorted(ws)))
    headers.append((b"content-security-policy", csp.encode("latin-1")))
    if not settings.cors_origins:
        headers.append((b"cross-origin-resource-policy", b"same-origin"))
    else:
        headers.append((b"vary", b"Origin"))
    return headers


class SecurityHeaders:
    """Adds `security_headers` to every HTTP response start, unless the app sent a header of the
    same name itself. It sits inside the Host guard (whose refusals add the same headers
    themselves), so the Host it echoes is one this server answers to."""

    def __init__(
        self, app: ASGIApp, settings: SecuritySettings, docs_paths: Iterable[str] = ()
    ) -> None:
        self.app = app
        self.settings = settings
        self.docs_paths = frozenset(docs_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = read_host(Headers(scope=scope))
        extra = security_headers(
            self.settings,
            scope.get("path", ""),
            host if isinstance(host, Host) else None,
            self.docs_paths,
        )

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                sent = list(message.get("headers", []))
                present = {name.lower() for name, _ in sent}
                added = [(name, value) for name, value in extra if name not in present]
                message = {**message, "headers": [*sent, *added]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
