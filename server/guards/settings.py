"""What the security guards enforce: `SecuritySettings`, and the host, origin and token rules
they share with the CLI.

`SecuritySettings.for_bind` turns the command line into settings: the Host names this server
answers to (loopback, the bound address, --allowed-host), the token (required beyond loopback),
the CORS origins (none by default) and the size limits of server/limits.py.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from starlette.datastructures import Headers

from server.limits import (
    MAX_JSON_BYTES,
    MAX_UPLOAD_BYTES,
    MAX_WS_FRAME_BYTES,
    MULTIPART_OVERHEAD_BYTES,
    UPLOAD_PATHS,
)

TOKEN_HEADER = "X-Backprop-Lens-Token"
TOKEN_QUERY = "token"
TOKEN_COOKIE = "bl_token"
MIN_TOKEN_LENGTH = 16
LOOPBACK_HOST_NAMES = ("localhost", "127.0.0.1", "[::1]")
WILDCARD_BINDS = frozenset({"", "0.0.0.0", "::", "[::]"})

# A Host header (already lower-cased): a DNS name / IPv4 address, or a bracketed IPv6 address,
# with an optional port. Nothing else can pass, so a validated Host is safe to echo in headers.
HOST_RE = re.compile(r"^(?P<name>\[[0-9a-f:.]+\]|[a-z0-9_][a-z0-9_.-]*)(?::(?P<port>[0-9]{1,5}))?$")
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_.~-]+$")
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}

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
    match = HOST_RE.match(text)
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
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower().rstrip(".")
    if ":" in host:
        host = f"[{host}]"
    scheme = {"ws": "http", "wss": "https"}.get(scheme, scheme)
    return (scheme, host, port if port is not None else DEFAULT_PORTS[scheme])


def format_origin(origin: Origin) -> str:
    """ "http://localhost:8000" for ("http", "localhost", 8000); the default port is left out."""
    scheme, host, port = origin
    return f"{scheme}://{host}" if port == DEFAULT_PORTS[scheme] else f"{scheme}://{host}:{port}"


@dataclass(frozen=True)
class Host:
    """A request's Host header read by `read_host`."""

    name: str  # as in SecuritySettings.host_names: lower case, IPv6 in brackets, no final dot
    port: int | None  # as sent, not range-checked
    raw: str  # the header as sent

    @property
    def value(self) -> str:
        """The Host as this server echoes it, e.g. "localhost:8000"."""
        return self.name if self.port is None else f"{self.name}:{self.port}"


def read_host(headers: Headers) -> Host | str:
    """The request's one Host header, or what is wrong with it, worded to follow "Host header":
    "is missing", "appears more than once", or "'...' is not allowed" when it is not a host
    name by HOST_RE (stricter than HTTP, so a Host that passes is safe to echo)."""
    values = headers.getlist("host")
    if len(values) != 1:
        return "is missing" if not values else "appears more than once"
    raw = values[0]
    match = HOST_RE.match(raw.strip().lower())
    if match is None:
        return f"{printable(raw)!r} is not allowed"
    port = int(match.group("port")) if match.group("port") else None
    return Host(match.group("name").rstrip("."), port, raw)


def printable(value: str, limit: int = 100) -> str:
    """A header value safe to quote in a message: ASCII printable, at most `limit` characters."""
    text = "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in value)
    return text if len(text) <= limit else text[:limit] + "..."


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

    @property
    def cors_origin_texts(self) -> frozenset[str]:
        """The configured CORS origins as a browser writes them in an Origin header."""
        return frozenset(format_origin(origin) for origin in self._cors)

    def is_cors_origin(self, origin: Origin | None) -> bool:
        """Whether `origin` is one of the configured CORS origins."""
        return origin is not None and origin in self._cors

    def token_matches(self, candidate: str) -> bool:
        """Constant-time comparison of a presented token with the configured one."""
        if self.token is None:
            return True
        return hmac.compare_digest(candidate.encode("utf-8"), self.token.encode("utf-8"))
