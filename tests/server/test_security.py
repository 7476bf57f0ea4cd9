"""The security middleware under a real uvicorn: Host allow-list, Origin checks, token, headers.

A tiny FastAPI app with `install_security` (GET JSON, POST JSON, multipart upload, WebSocket
echo, HTML page, a route that raises) runs in a background thread; httpx and `websockets`
talk to it over TCP. `ThreadServer` and `build_app` are shared with test_limits.py.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Annotated, Any

import httpx
import pytest
import uvicorn
from fastapi import Body, FastAPI, File, UploadFile, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from server.security import (
    DOCS_CSP,
    WS_CLOSE_UNAUTHORIZED,
    SecurityConfigError,
    SecurityMiddleware,
    SecuritySettings,
    generate_token,
    install_security,
    is_loopback,
    normalize_host_name,
)

TOKEN = "test-token-0123456789abcdef"
EVIL = "http://evil.example"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class BodyMeter:
    """Innermost ASGI middleware: counts the body bytes the app actually received, per path."""

    def __init__(self, app: ASGIApp, seen: dict[str, int]) -> None:
        self.app = app
        self.seen = seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        self.seen.setdefault(path, 0)

        async def counted() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                self.seen[path] += len(message.get("body", b""))
            return message

        await self.app(scope, counted, send)


def build_app(settings: SecuritySettings, seen: dict[str, int]) -> FastAPI:
    """The test app: every kind of route the real one has, behind install_security."""
    app = FastAPI()

    @app.get("/api/thing")
    def thing() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/api/echo")
    def echo(payload: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
        return {"keys": len(payload)}

    @app.post("/api/datasets/upload", status_code=201)
    async def upload(file: Annotated[UploadFile, File()]) -> dict[str, int]:
        size = 0
        while chunk := await file.read(1 << 20):
            size += len(chunk)
        return {"bytes": size}

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return "<!doctype html><title>t</title><script src='/static/app.js'></script>"

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("boom")

    @app.websocket("/ws/echo")
    async def ws_echo(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            while True:
                await websocket.send_text(await websocket.receive_text())
        except WebSocketDisconnect:
            return

    app.add_middleware(BodyMeter, seen=seen)
    install_security(app, settings)
    return app


class ThreadServer:
    """A uvicorn.Server on 127.0.0.1 in a daemon thread (no subprocess, no lifespan)."""

    def __init__(self, token: str | None = None, **settings: Any) -> None:
        self.port = free_port()
        self.settings = SecuritySettings(host="127.0.0.1", port=self.port, token=token, **settings)
        self.seen: dict[str, int] = {}
        self.app = build_app(self.settings, self.seen)
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="critical",
            lifespan="off",
            ws_max_size=16 * 1024 * 1024,  # let the middleware's own 1 MiB cap show
            ws_per_message_deflate=False,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def origin(self) -> str:
        return self.url

    def start(self) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"uvicorn did not start on port {self.port}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def ws(
        self, path: str = "/ws/echo", host: str | None = None, **kwargs: Any
    ) -> ClientConnection:
        """A `websockets` client; `host` sets the Host header (the URL's authority)."""
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        authority = host or f"127.0.0.1:{self.port}"
        return connect(
            f"ws://{authority}{path}",
            sock=sock,
            proxy=None,
            open_timeout=5,
            close_timeout=2,
            compression=None,
            **kwargs,
        )


@pytest.fixture(scope="module")
def open_server() -> Iterator[ThreadServer]:
    server = ThreadServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def token_server() -> Iterator[ThreadServer]:
    server = ThreadServer(token=TOKEN).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def http(open_server: ThreadServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=open_server.url, timeout=10, trust_env=False) as client:
        yield client


# ----------------------------------------------------------------------------- settings


def test_for_bind_loopback_needs_no_token() -> None:
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        settings = SecuritySettings.for_bind(host, 8000, [], None)
        assert settings.token is None and not settings.token_required
    assert SecuritySettings.for_bind("127.0.0.1", 8000, [], None).url() == "http://127.0.0.1:8000/"
    assert SecuritySettings.for_bind("::1", 8000, [], None).url() == "http://[::1]:8000/"


def test_for_bind_elsewhere_generates_a_token_shown_in_the_url() -> None:
    settings = SecuritySettings.for_bind("0.0.0.0", 8000, ["lab.example.org"], None)
    assert settings.token is not None and len(settings.token) >= 43
    assert settings.url() == f"http://lab.example.org:8000/?token={settings.token}"
    assert "lab.example.org" in settings.host_names and "0.0.0.0" not in settings.host_names
    assert settings.token not in repr(settings)
    lan = SecuritySettings.for_bind("192.168.1.5", 9000, [], None)
    assert "192.168.1.5" in lan.host_names and lan.url().startswith(
        "http://192.168.1.5:9000/?token="
    )
    wildcard = SecuritySettings.for_bind("::", 8000, [], None)
    assert wildcard.token_required and wildcard.url().startswith("http://127.0.0.1:8000/?token=")
    explicit = SecuritySettings.for_bind("0.0.0.0", 8000, [], TOKEN)
    assert explicit.token == TOKEN
    on_loopback = SecuritySettings.for_bind("127.0.0.1", 8000, [], TOKEN)
    assert on_loopback.token_required


def test_generate_token_is_random_and_url_safe() -> None:
    tokens = {generate_token() for _ in range(50)}
    assert len(tokens) == 50
    assert all(len(t) == 43 and t.replace("-", "").replace("_", "").isalnum() for t in tokens)


def test_settings_refuse_weak_tokens_bad_hosts_and_wildcard_cors() -> None:
    with pytest.raises(SecurityConfigError, match="at least 16 characters.*got 5"):
        SecuritySettings(token="short")
    with pytest.raises(SecurityConfigError, match="other characters"):
        SecuritySettings(token="a" * 20 + " ;")
    with pytest.raises(SecurityConfigError, match="got 'evil/x'"):
        SecuritySettings(allowed_hosts=("evil/x",))
    with pytest.raises(SecurityConfigError, match="got '\\*'"):
        SecuritySettings(cors_origins=("*",))
    with pytest.raises(SecurityConfigError, match="port: expected 0..65535, got 70000"):
        SecuritySettings(port=70000)


def test_host_names_are_normalized() -> None:
    assert normalize_host_name("Lab.Example.org.") == "lab.example.org"
    assert normalize_host_name("lab.example.org:9000") == "lab.example.org"
    assert normalize_host_name("fe80::1") == "[fe80::1]"
    assert normalize_host_name("[FE80::1]:8000") == "[fe80::1]"
    assert is_loopback("[::1]") and is_loopback("127.1.2.3") and not is_loopback("10.0.0.1")


def test_install_security_once_and_before_serving() -> None:
    settings = SecuritySettings()
    app = FastAPI()
    install_security(app, settings)
    assert app.state.security is settings
    with pytest.raises(RuntimeError, match="one call per app"):
        install_security(app, settings)
    started = FastAPI()
    started.middleware_stack = started.build_middleware_stack()
    with pytest.raises(RuntimeError, match="not served yet"):
        install_security(started, settings)


# ----------------------------------------------------------------------------- Host header


@pytest.mark.parametrize("name", ["localhost", "127.0.0.1", "[::1]"])
def test_loopback_hosts_with_and_without_port_are_served(
    http: httpx.Client, open_server: ThreadServer, name: str
) -> None:
    for host in (name, f"{name}:{open_server.port}", name.upper()):
        response = http.get("/api/thing", headers={"Host": host})
        assert response.status_code == 200, (host, response.text)


@pytest.mark.parametrize("host", ["evil.example", f"evil.example:{8000}", "127.0.0.1.evil.example"])
def test_foreign_host_header_is_refused(http: httpx.Client, host: str) -> None:
    response = http.get("/api/thing", headers={"Host": host})
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert detail.startswith(f"Host header '{host}' is not allowed")
    assert "--allowed-host" in detail and "localhost" in detail
    assert response.headers["x-frame-options"] == "DENY"


def test_allowed_host_adds_a_name() -> None:
    server = ThreadServer(allowed_hosts=("lab.example.org",)).start()
    try:
        with httpx.Client(base_url=server.url, trust_env=False) as client:
            assert client.get("/api/thing", headers={"Host": "lab.example.org:1234"}).is_success
            assert (
                client.get("/api/thing", headers={"Host": "other.example.org"}).status_code == 400
            )
    finally:
        server.stop()


def test_websocket_with_foreign_host_is_refused(open_server: ThreadServer) -> None:
    with pytest.raises(InvalidStatus) as info:
        open_server.ws(host=f"evil.example:{open_server.port}")
    assert info.value.response.status_code == 400
    assert b"Host header 'evil.example:" in info.value.response.body


def test_websocket_with_loopback_host_works(open_server: ThreadServer) -> None:
    with open_server.ws(host=f"localhost:{open_server.port}") as ws:
        ws.send("hi")
        assert ws.recv(timeout=5) == "hi"


# ----------------------------------------------------------------------------- Origin checks


def test_websocket_origin_same_or_absent_is_accepted(open_server: ThreadServer) -> None:
    for origin in (open_server.origin, f"http://localhost:{open_server.port}", None):
        with open_server.ws(origin=origin) as ws:
            ws.send("ping")
            assert ws.recv(timeout=5) == "ping"


@pytest.mark.parametrize("origin", [EVIL, "http://localhost:3000", "null", "https://127.0.0.1"])
def test_websocket_foreign_origin_is_refused(open_server: ThreadServer, origin: str) -> None:
    with pytest.raises(InvalidStatus) as info:
        open_server.ws(origin=origin)
    assert info.value.response.status_code == 403
    assert b"WebSocket Origin" in info.value.response.body


def test_post_with_foreign_origin_is_refused(http: httpx.Client, open_server: ThreadServer) -> None:
    # the server is shared by the module: count what the app receives from here on
    seen_before = {
        path: open_server.seen.get(path) for path in ("/api/echo", "/api/datasets/upload")
    }
    for origin in (EVIL, "http://localhost:3000", "null"):
        response = http.post("/api/echo", json={"a": 1}, headers={"Origin": origin})
        assert response.status_code == 403, origin
        assert "cross-origin POST refused" in response.json()["detail"]
    upload = http.post(
        "/api/datasets/upload", files={"file": ("d.csv", b"x,y\n1,0\n")}, headers={"Origin": EVIL}
    )
    assert upload.status_code == 403
    for path, before in seen_before.items():  # the app never saw them: not even their path
        assert open_server.seen.get(path) == before, path


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_other_writes_with_foreign_origin_are_refused(
    http: httpx.Client, open_server: ThreadServer, method: str
) -> None:
    seen_before = open_server.seen.get("/api/echo")
    for headers in ({"Origin": EVIL}, {"Referer": f"{EVIL}/x"}, {"Sec-Fetch-Site": "cross-site"}):
        response = http.request(method, "/api/echo", json={"a": 1}, headers=headers)
        assert response.status_code == 403, headers
        assert f"{method} refused" in response.json()["detail"]
    assert open_server.seen.get("/api/echo") == seen_before
    # the same request from the server's own page reaches the app (which has no such route)
    own = http.request(method, "/api/echo", json={"a": 1}, headers={"Origin": open_server.origin})
    assert own.status_code == 405


def test_post_same_origin_or_without_origin_is_served(
    http: httpx.Client, open_server: ThreadServer
) -> None:
    same = http.post("/api/echo", json={"a": 1}, headers={"Origin": open_server.origin})
    assert same.status_code == 200 and same.json() == {"keys": 1}
    assert http.post("/api/echo", json={"a": 1, "b": 2}).json() == {"keys": 2}
    by_name = http.post(
        "/api/echo",
        json={},
        headers={
            "Host": f"localhost:{open_server.port}",
            "Origin": f"http://localhost:{open_server.port}",
        },
    )
    assert by_name.status_code == 200


def test_post_with_foreign_referer_or_cross_site_fetch_is_refused(http: httpx.Client) -> None:
    referer = http.post("/api/echo", json={}, headers={"Referer": f"{EVIL}/page"})
    assert referer.status_code == 403 and "Referer" in referer.json()["detail"]
    fetch = http.post("/api/echo", json={}, headers={"Sec-Fetch-Site": "cross-site"})
    assert fetch.status_code == 403
    assert http.get("/api/thing", headers={"Origin": EVIL}).status_code == 200  # reads are fine


def test_cors_stays_closed_by_default(http: httpx.Client) -> None:
    response = http.get("/api/thing", headers={"Origin": EVIL})
    assert not any(name.startswith("access-control-") for name in response.headers)
    preflight = http.options(
        "/api/echo", headers={"Origin": EVIL, "Access-Control-Request-Method": "POST"}
    )
    assert not any(name.startswith("access-control-") for name in preflight.headers)


def test_configured_cors_origin_is_allowed() -> None:
    server = ThreadServer(cors_origins=("http://tools.example:3000",)).start()
    try:
        with httpx.Client(base_url=server.url, trust_env=False) as client:
            headers = {"Origin": "http://tools.example:3000"}
            preflight = client.options(
                "/api/echo", headers={**headers, "Access-Control-Request-Method": "POST"}
            )
            assert preflight.status_code == 204
            assert preflight.headers["access-control-allow-origin"] == "http://tools.example:3000"
            post = client.post("/api/echo", json={}, headers=headers)
            assert post.status_code == 200
            assert post.headers["access-control-allow-origin"] == "http://tools.example:3000"
            assert client.post("/api/echo", json={}, headers={"Origin": EVIL}).status_code == 403
    finally:
        server.stop()


# ----------------------------------------------------------------------------- token


@pytest.fixture
def token_http(token_server: ThreadServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=token_server.url, timeout=10, trust_env=False) as client:
        yield client


def test_token_missing_or_wrong_is_401(token_http: httpx.Client) -> None:
    missing = token_http.get("/api/thing")
    assert missing.status_code == 401
    detail = missing.json()["detail"]
    assert "requires an access token" in detail
    assert "X-Backprop-Lens-Token" in detail and "?token=" in detail
    assert missing.headers["www-authenticate"].startswith("Bearer")
    for headers, params in (
        ({"X-Backprop-Lens-Token": "wrong-token-0123456789"}, None),
        ({"Authorization": "Bearer wrong"}, None),
        ({"Cookie": "bl_token=wrong"}, None),
        ({}, {"token": TOKEN[:-1]}),
    ):
        wrong = token_http.get("/api/thing", headers=headers, params=params)
        assert wrong.status_code == 401 and "token is wrong" in wrong.json()["detail"]
    assert token_http.get("/").status_code == 401  # the page too


def test_token_in_header_bearer_or_query_is_accepted(token_http: httpx.Client) -> None:
    assert token_http.get("/api/thing", headers={"X-Backprop-Lens-Token": TOKEN}).is_success
    assert token_http.get("/api/thing", headers={"Authorization": f"Bearer {TOKEN}"}).is_success
    posted = token_http.post("/api/echo", json={}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert posted.status_code == 200
    assert "set-cookie" not in posted.headers  # only ?token= sets the cookie


def test_first_visit_with_query_token_sets_the_cookie(token_server: ThreadServer) -> None:
    with httpx.Client(base_url=token_server.url, trust_env=False) as browser:
        first = browser.get("/", params={"token": TOKEN})
        assert first.status_code == 200
        cookie = first.headers["set-cookie"]
        assert cookie.startswith(f"bl_token={TOKEN};")
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
        again = browser.get("/api/thing")  # the cookie alone now
        assert again.status_code == 200 and "set-cookie" not in again.headers
        assert browser.post(
            "/api/echo", json={}, headers={"Origin": token_server.origin}
        ).is_success


def test_host_check_comes_before_the_token(token_http: httpx.Client) -> None:
    response = token_http.get("/api/thing", headers={"Host": "evil.example"})
    assert response.status_code == 400


def test_websocket_without_token_is_closed_4401(token_server: ThreadServer) -> None:
    for extra in ({}, {"additional_headers": {"X-Backprop-Lens-Token": "wrong-token-0123456789"}}):
        with token_server.ws(**extra) as ws, pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
        assert info.value.rcvd is not None and info.value.rcvd.code == WS_CLOSE_UNAUTHORIZED
        # both ways a client presents it: in a page's URL, in a script's header
        assert "?token=" in info.value.rcvd.reason
        assert "X-Backprop-Lens-Token" in info.value.rcvd.reason


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        (f"/ws/echo?token={TOKEN}", {}),
        ("/ws/echo", {"X-Backprop-Lens-Token": TOKEN}),
        ("/ws/echo", {"Authorization": f"Bearer {TOKEN}"}),
        ("/ws/echo", {"Cookie": f"bl_token={TOKEN}"}),
    ],
)
def test_websocket_with_token_works(
    token_server: ThreadServer, path: str, headers: dict[str, str]
) -> None:
    with token_server.ws(path, origin=token_server.origin, additional_headers=headers) as ws:
        ws.send("hello")
        assert ws.recv(timeout=5) == "hello"


# ----------------------------------------------------------------------------- headers


def _assert_security_headers(response: httpx.Response, port: int) -> None:
    csp = response.headers["content-security-policy"]
    for part in (
        "default-src 'self'",
        "script-src 'self';",
        "style-src 'self';",
        "img-src 'self' data: blob:",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        f"ws://127.0.0.1:{port}",
    ):
        assert part in csp, (part, csp)
    assert "unsafe-inline" not in csp and "http" not in csp.replace("ws://", "")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"


def test_security_headers_on_html_json_errors(
    http: httpx.Client, open_server: ThreadServer
) -> None:
    page = http.get("/")
    assert page.headers["content-type"].startswith("text/html")
    _assert_security_headers(page, open_server.port)
    _assert_security_headers(http.get("/api/thing"), open_server.port)
    _assert_security_headers(http.get("/missing"), open_server.port)  # 404
    boom = http.get("/boom")
    assert boom.status_code == 500
    _assert_security_headers(boom, open_server.port)
    assert len(page.headers.get_list("content-security-policy")) == 1


def test_docs_get_the_relaxed_policy_only_there(http: httpx.Client) -> None:
    docs = http.get("/docs")
    assert docs.status_code == 200 and docs.headers["content-security-policy"] == DOCS_CSP
    assert docs.headers["x-frame-options"] == "DENY"
    assert "unsafe-inline" not in http.get("/openapi.json").headers["content-security-policy"]


def test_csp_never_lists_ipv6_sources(http: httpx.Client, open_server: ThreadServer) -> None:
    """Chromium rejects IPv6 literals in CSP sources (and 'self' covers them)."""
    response = http.get("/", headers={"Host": f"[::1]:{open_server.port}"})
    assert response.status_code == 200
    assert "[" not in response.headers["content-security-policy"]


# ----------------------------------------------------------------------------- in-process ASGI


async def _run_asgi(app: ASGIApp, scope: Scope, inbox: list[Message]) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return inbox.pop(0) if inbox else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def test_handshake_refused_by_close_when_the_server_cannot_send_http() -> None:
    async def never(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("the app must not run")

    guard = SecurityMiddleware(never, SecuritySettings())
    scope: Scope = {
        "type": "websocket",
        "path": "/ws/echo",
        "scheme": "ws",
        "headers": [(b"host", b"127.0.0.1:8000"), (b"origin", EVIL.encode())],
        "query_string": b"",
        "extensions": {},
    }
    sent = asyncio.run(_run_asgi(guard, scope, [{"type": "websocket.connect"}]))
    assert [m["type"] for m in sent] == ["websocket.close"]
    assert sent[0]["code"] == 1008 and "WebSocket Origin" in sent[0]["reason"]


def test_lifespan_passes_through() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    asyncio.run(_run_asgi(SecurityMiddleware(app, SecuritySettings()), {"type": "lifespan"}, []))
    assert seen == ["lifespan"]
