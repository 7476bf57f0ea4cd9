"""Network hardening: `SecuritySettings`, the pure ASGI `SecurityMiddleware`, `install_security`.

The middleware sits in front of the whole application (outside Starlette's error middleware, so
even a 500 carries the security headers) and handles "http" and "websocket" scopes. For every
request and WebSocket handshake, in this order:

1. Host allow-list: only localhost, 127.0.0.1, [::1] (any port) plus the bound address and the
   names added with --allowed-host. Anything else gets 400; this defeats DNS rebinding.
2. Origin: a WebSocket handshake whose Origin is not this server's is refused with 403
   (cross-site WebSocket hijacking); no Origin at all (python clients) is allowed. A
   state-changing HTTP request (not GET/HEAD/OPTIONS) with a foreign Origin, or without Origin
   but with a foreign Referer, or marked `Sec-Fetch-Site: cross-site`, is refused with 403 (CSRF).
   CORS stays closed unless `cors_origins` lists an origin.
3. Token, when one is configured (always when bound beyond loopback): header
   `X-Backprop-Lens-Token`, `Authorization: Bearer`, query `?token=` or cookie `bl_token`,
   compared with hmac.compare_digest. A valid `?token=` sets the cookie (HttpOnly,
   SameSite=Strict). Missing or wrong: 401 for HTTP, close 4401 for a WebSocket.
4. Body limits (server/limits.py), counted while the body streams in: a Content-Length above
   the limit is refused before reading; a chunked body is answered 413 as soon as it passes.
   Incoming WebSocket messages above `max_ws_frame_bytes` close the socket with 1009.
5. Security headers on every HTTP response: Content-Security-Policy, X-Content-Type-Options,
   X-Frame-Options, Referrer-Policy, Cross-Origin-Opener-Policy, Permissions-Policy.

The Swagger UI (/docs) and ReDoc (/redoc) pages load their scripts from a CDN and run an
inline script, so those paths alone get a relaxed policy (`DOCS_CSP`); they still only work
online. Every other page, the app included, gets the strict `default-src 'self'` policy.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

from fastapi import FastAPI
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.limits import (
    MAX_JSON_BYTES,
    MAX_UPLOAD_BYTES,
    MAX_WS_FRAME_BYTES,
    MULTIPART_OVERHEAD_BYTES,
    UPLOAD_PATHS,
    format_bytes,
    too_large_message,
)

log = logging.getLogger("backprop_lens.security")

TOKEN_HEADER = "X-Backprop-Lens-Token"
TOKEN_QUERY = "token"
TOKEN_COOKIE = "bl_token"
MIN_TOKEN_LENGTH = 16
WS_CLOSE_UNAUTHORIZED = 4401  # application close code: token missing or wrong (like HTTP 401)
WS_CLOSE_TOO_BIG = 1009  # RFC 6455 "message too big"
LOOPBACK_HOST_NAMES = ("localhost", "127.0.0.1", "[::1]")
WILDCARD_BINDS = frozenset({"", "0.0.0.0", "::", "[::]"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CORS_ALLOW_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE"
CORS_ALLOW_HEADERS = f"Content-Type, Authorization, {TOKEN_HEADER}"

# The policy for the app's own pages: its own scripts and styles only, no inline code, no frames.
# connect-src also names the ws:// origin explicitly (older Safari does not let 'self' cover ws:).
APP_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "font-src 'self'; connect-src 'self' {ws_origins}; object-src 'none'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
# FastAPI's Swagger UI and ReDoc pages: CDN scripts/styles, one inline script, a blob: worker.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "img-src 'self' data: blob: https://fastapi.tiangolo.com https://cdn.redoc.ly; "
    "font-src 'self' https://fonts.gstatic.com; worker-src 'self' blob:; connect-src 'self'; "
    "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
STATIC_SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
)

# A Host header (already lower-cased): a DNS name / IPv4 address, or a bracketed IPv6 address,
# with an optional port. Nothing else can pass, so a validated Host is safe to echo in headers.
_HOST_RE = re.compile(
    r"^(?P<name>\[[0-9a-f:.]+\]|[a-z0-9_][a-z0-9_.-]*)(?::(?P<port>[0-9]{1,5}))?$"
)
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_.~-]+$")
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}

Origin = tuple[str, str, int]  # (scheme "http"|"https", host name as in a Host header, port)


class SecurityConfigError(ValueError):
    """A security setting (host name, origin, token) is not usable."""


def generate_token() -> str:
    """A fresh random access token: 32 random bytes, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(32)


def is_loopback(host: str) -> bool:
    """True for "localhost" and loopback addresses (127.0.0.0/8, ::1), with or without brackets."""
    name = host.strip().lower().strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def normalize_host_name(value: str) -> str:
    """A host name as it appears in a Host header: lower case, IPv6 in brackets, no port.

    Accepts "example.org", "Example.org.", "192.168.1.5", "fe80::1", "[fe80::1]", and the same
    with a ":port" (ignored: any port is accepted so SSH tunnels may forward to another port).
    """
    text = value.strip().lower()
    if not text:
        raise SecurityConfigError("expected a host name such as 'myhost.local', got ''")
    if not text.startswith("[") and text.count(":") >= 2:  # a bare IPv6 address
        text = f"[{text}]"
    match = _HOST_RE.match(text)
    if match is None:
        raise SecurityConfigError(
            f"expected a host name, IPv4 address or [IPv6] address, got {value!r}"
        )
    name = match.group("name").rstrip(".")
    if name.startswith("["):
        try:
            ipaddress.IPv6Address(name[1:-1])
        except ValueError as exc:
            raise SecurityConfigError(
                f"expected an IPv6 address in brackets, got {value!r}"
            ) from exc
    return name


def parse_origin(value: str) -> Origin | None:
    """("http", "localhost", 8000) for "http://localhost:8000"; None for "null" or malformed."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower().rstrip(".")
    if ":" in host:
        host = f"[{host}]"
    scheme = {"ws": "http", "wss": "https"}.get(scheme, scheme)
    return (scheme, host, port if port is not None else _DEFAULT_PORTS[scheme])


def _format_origin(origin: Origin) -> str:
    scheme, host, port = origin
    return f"{scheme}://{host}" if port == _DEFAULT_PORTS[scheme] else f"{scheme}://{host}:{port}"


@dataclass(frozen=True)
class SecuritySettings:
    """How the server guards itself; build it with `SecuritySettings.for_bind` in the CLI."""

    host: str = "127.0.0.1"  # the address uvicorn binds
    port: int = 8000  # the port uvicorn binds
    allowed_hosts: tuple[str, ...] = ()  # extra Host names (--allowed-host), besides loopback
    token: str | None = field(default=None, repr=False)  # required on every request when set
    cors_origins: tuple[str, ...] = ()  # origins allowed to call the API cross-site (default none)
    max_json_bytes: int = MAX_JSON_BYTES  # any body outside upload_paths
    max_upload_bytes: int = MAX_UPLOAD_BYTES  # the uploaded file; multipart framing comes on top
    upload_paths: frozenset[str] = UPLOAD_PATHS
    max_ws_frame_bytes: int = MAX_WS_FRAME_BYTES  # one incoming WebSocket message
    public_paths: frozenset[str] = frozenset()  # paths served without the token (none by default)
    host_names: frozenset[str] = field(init=False, repr=False)  # every accepted Host name
    _cors: frozenset[Origin] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise SecurityConfigError(f"port: expected 0..65535, got {self.port}")
        if self.token is not None and (
            len(self.token) < MIN_TOKEN_LENGTH or not _TOKEN_RE.match(self.token)
        ):
            others = "" if _TOKEN_RE.match(self.token) else " including other characters"
            raise SecurityConfigError(
                f"token: expected at least {MIN_TOKEN_LENGTH} characters from A-Z a-z 0-9 - _ . ~, "
                f"got {len(self.token)} characters{others}"
            )
        for name, limit in (
            ("max_json_bytes", self.max_json_bytes),
            ("max_upload_bytes", self.max_upload_bytes),
            ("max_ws_frame_bytes", self.max_ws_frame_bytes),
        ):
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
                raise SecurityConfigError(f"{name}: expected an integer >= 1, got {limit!r}")
        names = set(LOOPBACK_HOST_NAMES)
        if self.host.strip().lower() not in WILDCARD_BINDS:
            names.add(normalize_host_name(self.host))
        names.update(normalize_host_name(name) for name in self.allowed_hosts)
        cors: set[Origin] = set()
        for text in self.cors_origins:
            origin = parse_origin(text)
            if origin is None or origin[0] not in ("http", "https") or "*" in text:
                raise SecurityConfigError(
                    f"cors_origins: expected an origin such as 'http://example.org:3000', "
                    f"got {text!r}"
                )
            cors.add(origin)
        object.__setattr__(self, "allowed_hosts", tuple(self.allowed_hosts))
        object.__setattr__(self, "cors_origins", tuple(self.cors_origins))
        object.__setattr__(self, "upload_paths", frozenset(self.upload_paths))
        object.__setattr__(self, "public_paths", frozenset(self.public_paths))
        object.__setattr__(self, "host_names", frozenset(names))
        object.__setattr__(self, "_cors", frozenset(cors))

    @classmethod
    def for_bind(
        cls,
        host: str,
        port: int,
        allowed_hosts: list[str],
        token: str | None,
        *,
        cors_origins: Iterable[str] = (),
    ) -> SecuritySettings:
        """The settings for `backprop-lens --host H --port P [--allowed-host A]... [--token T]`.

        A loopback bind needs no token unless one is given. Any other bind (a LAN address,
        0.0.0.0, ::) always requires one: the given token, or a fresh `generate_token()`.
        """
        if token is None and not is_loopback(host):
            token = generate_token()
        return cls(
            host=host,
            port=port,
            allowed_hosts=tuple(allowed_hosts),
            token=token,
            cors_origins=tuple(cors_origins),
        )

    @property
    def token_required(self) -> bool:
        """Whether every request must carry the token."""
        return self.token is not None

    @property
    def served_origins(self) -> frozenset[str]:
        """The origins pages of this server have: http://<each allowed host>:<port>."""
        return frozenset(f"http://{name}:{self.port}" for name in self.host_names)

    @property
    def max_upload_request_bytes(self) -> int:
        """The most bytes a request to an upload path may carry: file plus multipart framing."""
        return self.max_upload_bytes + MULTIPART_OVERHEAD_BYTES

    def url(self, path: str = "/") -> str:
        """The address to print and open, with ?token=... when a token is required.

        A wildcard bind (0.0.0.0, ::) shows the first --allowed-host, else 127.0.0.1.
        """
        bind = self.host.strip().lower()
        if bind in WILDCARD_BINDS:
            name = normalize_host_name(self.allowed_hosts[0]) if self.allowed_hosts else "127.0.0.1"
        else:
            name = normalize_host_name(self.host)
        url = f"http://{name}:{self.port}{path}"
        if self.token is not None:
            url += ("&" if "?" in path else "?") + f"{TOKEN_QUERY}={self.token}"
        return url

    def is_cors_origin(self, origin: Origin | None) -> bool:
        """Whether `origin` is one of the configured CORS origins."""
        return origin is not None and origin in self._cors

    def token_matches(self, candidate: str) -> bool:
        """Constant-time comparison of a presented token with the configured one."""
        if self.token is None:
            return True
        return hmac.compare_digest(candidate.encode("utf-8"), self.token.encode("utf-8"))


# ----------------------------------------------------------------------------- request view


class _Request:
    """The parts of an ASGI scope the checks read (headers decoded as latin-1, names lower)."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.path: str = scope.get("path", "")
        self.method: str = scope.get("method", "GET").upper()
        headers: dict[str, list[str]] = {}
        for raw_name, raw_value in scope.get("headers", []):
            headers.setdefault(raw_name.decode("latin-1").lower(), []).append(
                raw_value.decode("latin-1")
            )
        self.headers = headers
        self.scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"
        self.host_name: str | None = None  # set by the Host check
        self.host_port: int | None = None
        self.host_value: str = ""  # the validated Host header, e.g. "localhost:8000"

    def header(self, name: str) -> str | None:
        values = self.headers.get(name)
        return values[0] if values else None

    @property
    def own_origin(self) -> Origin:
        """This request's origin as the browser sees it (from the validated Host header)."""
        port = self.host_port if self.host_port is not None else _DEFAULT_PORTS[self.scheme]
        return (self.scheme, self.host_name or "", port)

    def query(self) -> list[tuple[str, str]]:
        return parse_qsl(self.scope.get("query_string", b"").decode("latin-1"), True)


def _printable(value: str, limit: int = 100) -> str:
    text = "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in value)
    return text if len(text) <= limit else text[:limit] + "..."


# ----------------------------------------------------------------------------- responses


class _Responder:
    """Wraps `send`: adds the security headers to the response start, and lets the guard answer
    itself (after which the app's own messages are dropped)."""

    def __init__(self, send: Send, headers: list[tuple[bytes, bytes]]) -> None:
        self._send = send
        self.headers = headers  # added to the response start (the guard may append more)
        self.started = False  # a response start went out
        self.answered = False  # the guard sent the whole response itself

    async def __call__(self, message: Message) -> None:
        if self.answered:
            return
        if message["type"] == "http.response.start":
            self.started = True
            present = {name.lower() for name, _ in message.get("headers", [])}
            extra = [(n, v) for n, v in self.headers if n not in present or n == b"set-cookie"]
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await self._send(message)

    async def answer(
        self, status: int, detail: str, headers: Iterable[tuple[bytes, bytes]] = ()
    ) -> None:
        """Send {"detail": detail} with `status` and stop forwarding the app's messages."""
        body = json.dumps({"detail": detail}).encode("utf-8")
        await self(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    *headers,
                ],
            }
        )
        await self({"type": "http.response.body", "body": body})
        self.answered = True


class BodyTooLargeError(Exception):
    """A request body passed its limit after the app had already started its response."""


class _LimitedReceive:
    """Wraps `receive`: counts body bytes and answers 413 the moment they pass the limit."""

    def __init__(
        self, receive: Receive, responder: _Responder, limit: int, what: str, shown: int
    ) -> None:
        self._receive = receive
        self._responder = responder
        self.limit = limit  # bytes allowed in the body
        self.what = what  # "JSON" or "uploads", for the message
        self.shown = shown  # the limit as the message states it (uploads: without the framing)
        self.received = 0
        self.exceeded = False

    async def __call__(self) -> Message:
        if self.exceeded:
            return {"type": "http.disconnect"}
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                self.exceeded = True
                detail = too_large_message(self.shown, self.what)
                if self._responder.started:
                    raise BodyTooLargeError(detail)
                await self._responder.answer(413, detail)
                # The app sees the client go away; uvicorn discards the rest of the body.
                return {"type": "http.disconnect"}
        return message


RAW_SEND_KEY = "backprop_lens.raw_send"  # scope key of the ASGI server's own send callable

# ----------------------------------------------------------------------------- middleware


class SecurityMiddleware:
    """Pure ASGI middleware guarding HTTP requests and WebSocket handshakes (see module doc)."""

    def __init__(
        self, app: ASGIApp, settings: SecuritySettings, docs_paths: Iterable[str] = ()
    ) -> None:
        self.app = app
        self.settings = settings
        self.docs_paths = frozenset(docs_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            # The server's own send callable, so the hub can reach the connection's transport
            # to drop a peer that stopped reading (server.hub.transport_of).
            scope[RAW_SEND_KEY] = send
            await self._websocket(scope, receive, send)
        else:  # lifespan
            await self.app(scope, receive, send)

    # ---- shared checks ----------------------------------------------------------------------

    def _check_host(self, request: _Request) -> str | None:
        """None when the Host header names this server (and remembers it), else the problem."""
        values = request.headers.get("host", [])
        allowed = ", ".join(sorted(self.settings.host_names))
        hint = f"this server answers to {allowed} (add a name with --allowed-host)"
        if len(values) != 1:
            got = "is missing" if not values else "appears more than once"
            return f"Host header {got}: {hint}"
        raw = values[0]
        match = _HOST_RE.match(raw.strip().lower())
        name = match.group("name").rstrip(".") if match else None
        if match is None or name not in self.settings.host_names:
            return f"Host header {_printable(raw)!r} is not allowed: {hint}"
        port = int(match.group("port")) if match.group("port") else None
        if port is not None and port > 65535:
            return f"Host header {_printable(raw)!r} has no valid port: {hint}"
        request.host_name = name
        request.host_port = port
        request.host_value = name if port is None else f"{name}:{port}"
        return None

    def _trusted_origin(self, request: _Request, origin: Origin | None) -> bool:
        """Same origin as the request, one of the served origins, or a configured CORS origin."""
        if origin is None:
            return False
        if origin == request.own_origin:
            return True
        scheme, host, port = origin
        if scheme == "http" and host in self.settings.host_names and port == self.settings.port:
            return True
        return self.settings.is_cors_origin(origin)

    def _token_state(self, request: _Request) -> tuple[bool, bool, bool]:
        """(presented, valid, valid_query_without_cookie): where the request's token stands."""
        candidates: list[str] = []
        header = request.header(TOKEN_HEADER.lower())
        if header is not None:
            candidates.append(header.strip())
        authorization = request.header("authorization")
        if authorization is not None:
            scheme, _, value = authorization.strip().partition(" ")
            if scheme.lower() == "bearer":
                candidates.append(value.strip())
        query = [value for key, value in request.query() if key == TOKEN_QUERY]
        cookie_header = request.header("cookie")
        cookie = cookie_parser(cookie_header).get(TOKEN_COOKIE) if cookie_header else None
        valid_header = any(self.settings.token_matches(c) for c in candidates)
        valid_query = any(self.settings.token_matches(q) for q in query)
        valid_cookie = cookie is not None and self.settings.token_matches(cookie)
        presented = bool(candidates or query or cookie is not None)
        valid = valid_header or valid_query or valid_cookie
        return presented, valid, valid_query and not valid_cookie

    def _token_problem(self, presented: bool) -> str:
        how = (
            "open the URL that backprop-lens printed when it started (it ends in ?token=...), "
            f"or send the token as the header '{TOKEN_HEADER}: <token>' or "
            f"'Authorization: Bearer <token>', the query parameter '{TOKEN_QUERY}', "
            f"or the cookie '{TOKEN_COOKIE}'"
        )
        if presented:
            return f"the access token is wrong: {how}"
        return f"this server requires an access token: {how}"

    def _response_headers(self, request: _Request) -> list[tuple[bytes, bytes]]:
        headers = list(STATIC_SECURITY_HEADERS)
        if request.path in self.docs_paths:
            csp = DOCS_CSP
        else:
            # Chromium rejects IPv6 literals in CSP sources; 'self' covers those anyway.
            ws = {f"ws://{request.host_value}"} if request.host_name else set()
            ws.update(f"ws://{name}:{self.settings.port}" for name in self.settings.host_names)
            ws = {source for source in ws if "[" not in source}
            csp = APP_CSP.format(ws_origins=" ".join(sorted(ws)))
        headers.append((b"content-security-policy", csp.encode("latin-1")))
        if not self.settings.cors_origins:
            headers.append((b"cross-origin-resource-policy", b"same-origin"))
        else:
            headers.append((b"vary", b"Origin"))
        return headers

    # ---- HTTP -------------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        settings = self.settings
        request = _Request(scope)
        host_problem = self._check_host(request)
        responder = _Responder(send, self._response_headers(request))
        if host_problem is not None:
            await responder.answer(400, host_problem)
            return

        origin_text = request.header("origin")
        origin = parse_origin(origin_text) if origin_text is not None else None
        cors = settings.is_cors_origin(origin)
        if cors and origin_text is not None:
            responder.headers.append((b"access-control-allow-origin", origin_text.encode()))
            if request.method == "OPTIONS" and request.header("access-control-request-method"):
                await self._preflight(responder)
                return

        if request.method not in SAFE_METHODS:
            problem = self._cross_site_problem(request, origin_text, origin)
            if problem is not None:
                await responder.answer(403, problem)
                return

        if settings.token_required and request.path not in settings.public_paths:
            presented, valid, set_cookie = self._token_state(request)
            if not valid:
                await responder.answer(
                    401,
                    self._token_problem(presented),
                    [(b"www-authenticate", b'Bearer realm="backprop-lens"')],
                )
                return
            if set_cookie and settings.token is not None:
                cookie = f"{TOKEN_COOKIE}={settings.token}; Path=/; HttpOnly; SameSite=Strict"
                responder.headers.append((b"set-cookie", cookie.encode("latin-1")))

        if request.path in settings.upload_paths:
            limit, what, shown = (
                settings.max_upload_request_bytes,
                "uploads",
                settings.max_upload_bytes,
            )
        else:
            limit, what, shown = settings.max_json_bytes, "JSON", settings.max_json_bytes
        limited = _LimitedReceive(receive, responder, limit, what, shown)
        length_text = request.header("content-length")
        if length_text is not None:
            try:
                length = int(length_text)
            except ValueError:
                await responder.answer(
                    400, f"Content-Length: expected a byte count, got {_printable(length_text)!r}"
                )
                return
            if length > limit:
                await responder.answer(413, too_large_message(shown, what))
                return
        try:
            await self.app(scope, limited, responder)
        except Exception as exc:
            if responder.answered:  # the app tripped over the body we cut off; already answered
                log.debug("after the guard answered %s %s: %r", request.method, request.path, exc)
                return
            raise

    def _cross_site_problem(
        self, request: _Request, origin_text: str | None, origin: Origin | None
    ) -> str | None:
        """Why a state-changing request looks cross-site (CSRF), or None."""
        own = _format_origin(request.own_origin)
        if origin_text is not None:
            if not self._trusted_origin(request, origin):
                return (
                    f"cross-origin {request.method} refused: Origin "
                    f"{_printable(origin_text)!r} is not this server's ({own})"
                )
            return None
        referer = request.header("referer")
        if referer is not None and not self._trusted_origin(request, parse_origin(referer)):
            shown = _format_origin(o) if (o := parse_origin(referer)) else _printable(referer)
            return (
                f"cross-origin {request.method} refused: Referer from {shown!r} is not "
                f"this server's ({own})"
            )
        if request.header("sec-fetch-site") == "cross-site":
            return f"cross-site {request.method} refused (Sec-Fetch-Site: cross-site)"
        return None

    async def _preflight(self, responder: _Responder) -> None:
        await responder(
            {
                "type": "http.response.start",
                "status": 204,
                "headers": [
                    (b"access-control-allow-methods", CORS_ALLOW_METHODS.encode()),
                    (b"access-control-allow-headers", CORS_ALLOW_HEADERS.encode()),
                    (b"access-control-max-age", b"600"),
                ],
            }
        )
        await responder({"type": "http.response.body", "body": b""})
        responder.answered = True

    # ---- WebSocket --------------------------------------------------------------------------

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = _Request(scope)
        problem = self._check_host(request)
        if problem is not None:
            await self._deny(scope, receive, send, 400, problem)
            return
        origin_text = request.header("origin")
        if origin_text is not None and not self._trusted_origin(request, parse_origin(origin_text)):
            own = _format_origin(request.own_origin)
            await self._deny(
                scope,
                receive,
                send,
                403,
                f"WebSocket Origin {_printable(origin_text)!r} is not this server's ({own})",
            )
            return
        if self.settings.token_required and request.path not in self.settings.public_paths:
            presented, valid, _ = self._token_state(request)
            if not valid:
                # Accept, then close with 4401: a browser sees the close code (a refused
                # handshake only shows as 1006), and the app never runs.
                message = await receive()
                if message["type"] != "websocket.connect":
                    return
                await send({"type": "websocket.accept"})
                reason = "access token missing" if not presented else "access token wrong"
                await send(
                    {
                        "type": "websocket.close",
                        "code": WS_CLOSE_UNAUTHORIZED,
                        "reason": f"{reason}: add ?{TOKEN_QUERY}=... to the URL",
                    }
                )
                return
        guard = _WebSocketGuard(receive, send, self.settings.max_ws_frame_bytes)
        await self.app(scope, guard.receive, guard.send)

    async def _deny(
        self, scope: Scope, receive: Receive, send: Send, status: int, detail: str
    ) -> None:
        """Refuse a WebSocket handshake with an HTTP answer when the server can send one."""
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        if "websocket.http.response" in scope.get("extensions", {}):
            body = json.dumps({"detail": detail}).encode("utf-8")
            await send(
                {
                    "type": "websocket.http.response.start",
                    "status": status,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        *STATIC_SECURITY_HEADERS,
                    ],
                }
            )
            await send({"type": "websocket.http.response.body", "body": body})
        else:  # closing before accept makes the server answer 403
            await send({"type": "websocket.close", "code": 1008, "reason": detail[:120]})


class _WebSocketGuard:
    """Wraps a WebSocket's receive/send: messages above the limit close the socket with 1009."""

    def __init__(self, receive: Receive, send: Send, limit: int) -> None:
        self._receive = receive
        self._send = send
        self.limit = limit
        self.closed = False

    async def receive(self) -> Message:
        if self.closed:
            return {"type": "websocket.disconnect", "code": WS_CLOSE_TOO_BIG}
        message = await self._receive()
        if message["type"] == "websocket.receive":
            text = message.get("text")
            data = message.get("bytes")
            size = 0
            if text is not None:
                size = len(text) if len(text) * 4 <= self.limit else len(text.encode("utf-8"))
            elif data is not None:
                size = len(data)
            if size > self.limit:
                self.closed = True
                await self._send(
                    {
                        "type": "websocket.close",
                        "code": WS_CLOSE_TOO_BIG,
                        "reason": f"message larger than the {format_bytes(self.limit)} limit",
                    }
                )
                return {"type": "websocket.disconnect", "code": WS_CLOSE_TOO_BIG}
        return message

    async def send(self, message: Message) -> None:
        if self.closed:
            return  # the guard closed the socket; the app's late frames go nowhere
        await self._send(message)


# ----------------------------------------------------------------------------- installation


def install_security(app: FastAPI, settings: SecuritySettings) -> None:
    """Put `SecurityMiddleware` in front of the app's whole middleware stack.

    Call it in create_app, before the app serves. It wraps the stack Starlette builds (outside
    ServerErrorMiddleware, so 500 answers carry the headers too), and keeps `settings` in
    `app.state.security`. /docs, /redoc and the OAuth2 redirect page get `DOCS_CSP`.
    """
    if getattr(app.state, "security", None) is not None:
        raise RuntimeError("install_security: expected one call per app, got a second one")
    if app.middleware_stack is not None:
        raise RuntimeError(
            "install_security: expected an app that has not served yet, got one already running"
        )
    docs_paths = {
        path for path in (app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url) if path
    }
    build: Callable[[], ASGIApp] = app.build_middleware_stack

    def build_with_security() -> ASGIApp:
        return SecurityMiddleware(build(), settings, docs_paths)

    app.build_middleware_stack = build_with_security  # type: ignore[method-assign]
    app.state.security = settings


__all__ = [
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
