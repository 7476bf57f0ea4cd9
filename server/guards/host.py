"""The Host allow-list, against DNS rebinding: a page of evil.example whose name is made to
resolve to 127.0.0.1 still sends "Host: evil.example", which is not a name this server answers
to (localhost, 127.0.0.1, [::1], the bound address and each --allowed-host, any port).

Starlette's TrustedHostMiddleware makes the allow-list decision. `HostGuard` wraps it for what
this server adds, through its public API only (its constructor and its ASGI call):

- the refusal is a 400 problem, code "host_not_allowed", detail "Host header 'evil.example' is
  not allowed: this server answers to ... (add a name with --allowed-host)", with the security
  headers, or a refused WebSocket handshake, where TrustedHostMiddleware answers a plain-text
  "Invalid host header": its answer is dropped and its decision kept;
- a request with two Host headers is refused (TrustedHostMiddleware reads the first one), and
  so is a Host outside `HOST_RE` or with a port above 65535, so a Host that passes is safe to
  echo into the Content-Security-Policy;
- a name may end in a dot ("localhost." is localhost).

TrustedHostMiddleware handles bracketed IPv6 hosts ([::1]:8000) since Starlette 1.7, hence the
floor in pyproject.toml.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.guards.answers import answer, deny_websocket
from server.guards.headers import security_headers
from server.guards.settings import Host, SecuritySettings, printable, read_host


class HostGuard:
    """Refuses requests and WebSocket handshakes whose Host is not one of this server's names."""

    def __init__(
        self, app: ASGIApp, settings: SecuritySettings, docs_paths: Iterable[str] = ()
    ) -> None:
        self.app = app
        self.settings = settings
        self.docs_paths = frozenset(docs_paths)
        names = sorted(settings.host_names)
        # TrustedHostMiddleware compares names as sent: a fully qualified "localhost." is listed.
        self._patterns = [*names, *(f"{name}." for name in names if not name.startswith("["))]
        allowed = ", ".join(names)
        self._hint = f"this server answers to {allowed} (add a name with --allowed-host)"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host = read_host(Headers(scope=scope))
        if isinstance(host, Host):
            problem = await self._admit(scope, receive, send, host)
            if problem is None:
                return  # admitted: the app has answered
        else:
            problem = host
        detail = f"Host header {problem}: {self._hint}"
        if scope["type"] == "websocket":
            await deny_websocket(scope, receive, send, 400, "host_not_allowed", detail)
            return
        headers = security_headers(self.settings, scope.get("path", ""), None, self.docs_paths)
        await answer(scope, send, 400, "host_not_allowed", detail, headers)

    async def _admit(self, scope: Scope, receive: Receive, send: Send, host: Host) -> str | None:
        """Run the app if TrustedHostMiddleware admits `host` and its port is valid; else say
        why not ("'...' is not allowed" or "'...' has no valid port")."""
        problem: str | None = f"{printable(host.raw)!r} is not allowed"

        async def admitted(scope: Scope, receive: Receive, _send: Send) -> None:
            nonlocal problem
            if host.port is not None and host.port > 65535:
                problem = f"{printable(host.raw)!r} has no valid port"
                return
            problem = None
            await self.app(scope, receive, send)

        trusted = TrustedHostMiddleware(admitted, allowed_hosts=self._patterns, www_redirect=False)
        await trusted(scope, receive, _drop)
        return problem


async def _drop(message: Message) -> None:
    """Where TrustedHostMiddleware's own plain-text refusal goes: nowhere (HostGuard answers)."""
