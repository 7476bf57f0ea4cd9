"""Below the app, against a real server: a connection that never finishes its request head is
answered 408 and closed (slowloris), requests in progress are not, at the connection cap the
oldest connection still waiting for its head makes room (503 when none is), and the access
token never reaches the log."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from tests.support import LiveServer

XOR = {
    "dataset": {"name": "xor", "samples": 200},
    "layers": [{"type": "dense", "units": 4}, {"type": "dense", "units": 1}],
}
TOKEN = "test-token-0123456789abcdef"
PARTIAL_HEAD = b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
HEALTH = b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def read_to_eof(sock: socket.socket, limit: float = 30.0) -> bytes:
    """Everything the server sends until it closes (or `limit` seconds, a generous bound)."""
    sock.settimeout(limit)
    data = b""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        chunk = sock.recv(4096)
        if not chunk:
            return data
        data += chunk
    raise AssertionError(f"the server kept the connection open for {limit}s: {data!r}")


def read_response(sock: socket.socket) -> bytes:
    """One whole response (head and Content-Length body), leaving the connection open."""
    sock.settimeout(30)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise AssertionError(f"the server closed the connection: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    found = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    if found is None:
        raise AssertionError(f"expected a Content-Length, got {head!r}")
    length = int(found.group(1))
    while len(body) < length:
        body += sock.recv(4096)
    return head + b"\r\n\r\n" + body


def slow_socket(port: int, head: bytes = PARTIAL_HEAD) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    if head:
        sock.sendall(head)
    return sock


@pytest.fixture
def impatient(tmp_path: Path) -> Iterator[LiveServer]:
    """A server that waits one second for a request head."""
    live = LiveServer(tmp_path / "data", ["--header-timeout", "1"]).start()
    try:
        yield live
    finally:
        live.stop()


def test_half_sent_requests_are_closed_and_the_server_keeps_answering(
    impatient: LiveServer,
) -> None:
    server = impatient
    with httpx.Client(base_url=server.url, timeout=60.0) as client:
        sid = client.post("/api/sessions", json={"config": XOR}).json()["id"]
        stepped: dict[str, httpx.Response] = {}
        # a request that takes longer than the head deadline is not cut by it, even when a
        # proxy header changes the client address the app sees
        long_step = threading.Thread(
            target=lambda: stepped.update(
                answer=httpx.post(
                    f"{server.url}/api/sessions/{sid}/step",
                    json={"steps": 20_000},
                    headers={"X-Forwarded-For": "10.1.2.3"},  # as from a reverse proxy
                    timeout=120,
                )
            )
        )
        long_step.start()
        heads = [slow_socket(server.port) for _ in range(20)]
        silent = [slow_socket(server.port, b"") for _ in range(5)]
        kept_alive = slow_socket(server.port, HEALTH)
        assert read_response(kept_alive).startswith(b"HTTP/1.1 200")
        kept_alive.sendall(PARTIAL_HEAD)  # a second request, never finished
        assert client.get("/api/health").status_code == 200  # answered meanwhile
        for sock in [*heads, *silent, kept_alive]:
            with sock:
                assert read_to_eof(sock).startswith(b"HTTP/1.1 408 Request Timeout")
        assert client.get("/api/health").status_code == 200
        # a keep-alive connection idle for longer than the head deadline (but not uvicorn's
        # 5 s keep-alive) is not answered 408: its deadline starts with its next request
        with slow_socket(server.port, HEALTH) as idle:
            assert read_response(idle).startswith(b"HTTP/1.1 200")
            time.sleep(2.0)
            idle.sendall(HEALTH)
            assert read_response(idle).startswith(b"HTTP/1.1 200")
        long_step.join(120)
        assert stepped["answer"].status_code == 200, stepped["answer"].text
        assert stepped["answer"].json()["step"] == 20_000


def test_at_the_cap_the_oldest_waiting_connection_makes_room(tmp_path: Path) -> None:
    server = LiveServer(
        tmp_path / "data", ["--max-connections", "6", "--header-timeout", "600"]
    ).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30.0) as client:
            sid = client.post("/api/sessions", json={"config": XOR}).json()["id"]
        heads = [slow_socket(server.port) for _ in range(6)]
        # a new connection closes the oldest one that is still sending its head
        assert httpx.get(f"{server.url}/api/health", timeout=30).status_code == 200
        with heads[0]:
            assert read_to_eof(heads[0]).startswith(b"HTTP/1.1 408")
        for sock in heads[1:]:
            sock.close()
        # connections busy with a WebSocket are not closed: a new one is refused with 503
        url = f"{server.ws_url}/ws/sessions/{sid}"
        with contextlib.ExitStack() as stack:
            for _ in range(6):
                ws = stack.enter_context(connect(url, open_timeout=10))
                assert '"hello"' in str(ws.recv(timeout=10))
            with slow_socket(server.port, HEALTH) as sock:
                refused = read_to_eof(sock)
            assert refused.startswith(b"HTTP/1.1 503") and b"too many connections" in refused
        assert httpx.get(f"{server.url}/api/health", timeout=30).status_code == 200
    finally:
        server.stop()


def test_the_token_never_reaches_the_log(tmp_path: Path) -> None:
    server = LiveServer(tmp_path / "data", ["--log-level", "info"], token=TOKEN).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30.0) as client:
            sid = client.post(
                "/api/sessions", json={"config": XOR}, headers=server.headers()
            ).json()["id"]
            for query in (f"token={TOKEN}", f"tok%65n={TOKEN}&x=1", "token=wrong-guess-123"):
                client.get(f"/api/sessions/{sid}?{query}")
        with connect(f"{server.ws_url}/ws/sessions/{sid}?token={TOKEN}", open_timeout=10) as ws:
            assert '"hello"' in str(ws.recv(timeout=10))
    finally:
        server.stop()
    lines = server.log().splitlines()
    printed = [line for line in lines if "serving on" in line]  # the one line meant to show it
    assert len(printed) == 1 and TOKEN in printed[0]
    rest = "\n".join(line for line in lines if "serving on" not in line)
    assert TOKEN not in rest and "wrong-guess-123" not in rest
    assert rest.count("token=[redacted]") >= 3 and "tok%65n=[redacted]" in rest
    assert f"GET /api/sessions/{sid}?token=[redacted] HTTP/1.1" in rest
    assert f'"WebSocket /ws/sessions/{sid}?token=[redacted]"' in rest
