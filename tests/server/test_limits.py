"""Input limits: the constants, and 413 answers from the middleware under a real uvicorn.

Bodies are refused on their Content-Length before a byte is read, and chunked bodies as soon as
they pass the limit; the app (see `BodyMeter` in test_security.py) never receives more than the
limit. WebSocket messages above the hard cap close the socket with 1009.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from server import limits
from server.limits import (
    MAX_JSON_BYTES,
    MAX_UPLOAD_BYTES,
    MAX_UPLOAD_REQUEST_BYTES,
    MAX_WS_FRAME_BYTES,
    MiB,
    format_bytes,
    too_large_message,
)
from server.security import WS_CLOSE_TOO_BIG
from tests.server.test_security import ThreadServer

JSON_413 = "request body is larger than the 1 MiB limit for JSON"
UPLOAD_413 = "request body is larger than the 10 MiB limit for uploads"


def too_large(path: str, detail: str) -> dict[str, object]:
    """The problem body of a 413 from the size guard."""
    return {
        "type": "urn:backprop-lens:problem:too_large",
        "title": "Too large",
        "status": 413,
        "code": "too_large",
        "detail": detail,
        "instance": path,
    }


CHUNK = 64 * 1024


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadServer]:
    live = ThreadServer().start()
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture
def http(server: ThreadServer) -> Iterator[httpx.Client]:
    server.seen.clear()
    with httpx.Client(base_url=server.url, timeout=30, trust_env=False) as client:
        yield client


def _multipart(
    size: int, boundary: str = "bl-test-boundary"
) -> tuple[bytes, bytes, dict[str, str]]:
    """The head and tail of a multipart body around a file of `size` bytes, and its headers."""
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="d.npz"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    return head, tail, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def _chunks(head: bytes, size: int, tail: bytes) -> Iterator[bytes]:
    yield head
    block = b"\0" * CHUNK
    sent = 0
    while sent < size:
        part = block[: min(CHUNK, size - sent)]
        sent += len(part)
        yield part
    yield tail


# ----------------------------------------------------------------------------- constants


def test_limits_are_the_documented_numbers() -> None:
    assert limits.MAX_JSON_BYTES == 1_048_576  # 1 MiB
    assert limits.MAX_UPLOAD_BYTES == 10_485_760  # 10 MiB
    assert limits.MAX_WS_MESSAGE_BYTES == 64 * 1024
    assert limits.MAX_WS_CLIENTS_PER_SESSION == 32
    assert limits.MAX_SESSIONS == 200
    assert limits.MAX_WS_FRAME_BYTES > limits.MAX_WS_MESSAGE_BYTES


def test_messages_name_the_limit() -> None:
    assert format_bytes(MiB) == "1 MiB" and format_bytes(10 * MiB) == "10 MiB"
    assert format_bytes(64 * 1024) == "64 KiB" and format_bytes(1000) == "1000 bytes"
    assert format_bytes(MiB + 1) == "1.0 MiB"
    assert too_large_message(MAX_JSON_BYTES, "JSON") == JSON_413
    assert too_large_message(MAX_UPLOAD_BYTES, "uploads") == UPLOAD_413


# ----------------------------------------------------------------------------- JSON bodies


def test_json_over_1_mib_is_413_before_the_app_reads_it(
    http: httpx.Client, server: ThreadServer
) -> None:
    body = json.dumps({"x": "a" * MAX_JSON_BYTES}).encode()
    response = http.post("/api/echo", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json() == too_large("/api/echo", JSON_413)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert server.seen.get("/api/echo", 0) == 0


def test_chunked_json_over_1_mib_is_413(http: httpx.Client, server: ThreadServer) -> None:
    def body() -> Iterator[bytes]:
        yield b'{"x": "'
        for _ in range(2 * MAX_JSON_BYTES // CHUNK):
            yield b"a" * CHUNK
        yield b'"}'

    response = http.post("/api/echo", content=body(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and response.json() == too_large("/api/echo", JSON_413)
    assert 0 < server.seen["/api/echo"] <= MAX_JSON_BYTES


def test_json_under_the_limit_is_served(http: httpx.Client) -> None:
    payload = {"x": "a" * (MAX_JSON_BYTES - 100)}
    assert http.post("/api/echo", json=payload).json() == {"keys": 1}


# ----------------------------------------------------------------------------- uploads


def test_upload_with_content_length_over_the_limit_is_refused_unread(
    http: httpx.Client, server: ThreadServer
) -> None:
    head, tail, headers = _multipart(MAX_UPLOAD_BYTES + 100 * 1024)
    body = head + b"\0" * (MAX_UPLOAD_BYTES + 100 * 1024) + tail
    response = http.post("/api/datasets/upload", content=body, headers=headers)
    assert response.status_code == 413
    assert response.json() == too_large("/api/datasets/upload", UPLOAD_413)
    assert server.seen.get("/api/datasets/upload", 0) == 0  # refused on the header alone


def test_announced_oversize_is_answered_before_the_body_is_sent(server: ThreadServer) -> None:
    """Raw socket: only the headers go out, and the 413 comes back at once."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(
            b"POST /api/datasets/upload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: multipart/form-data; boundary=x\r\n"
            + f"Content-Length: {20 * MiB}\r\n\r\n".encode()
        )
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert UPLOAD_413.encode() in answer


def test_chunked_upload_over_the_limit_is_413(http: httpx.Client, server: ThreadServer) -> None:
    size = MAX_UPLOAD_BYTES + MiB
    head, tail, headers = _multipart(size)
    response = http.post("/api/datasets/upload", content=_chunks(head, size, tail), headers=headers)
    assert response.status_code == 413
    assert response.json() == too_large("/api/datasets/upload", UPLOAD_413)
    received = server.seen["/api/datasets/upload"]  # the app streamed, but never past the limit
    assert 0 < received <= MAX_UPLOAD_REQUEST_BYTES


def test_chunked_oversize_is_answered_while_the_client_still_sends(server: ThreadServer) -> None:
    """Raw socket: 11 MiB of chunks without the final chunk; the 413 arrives anyway."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        head, _, headers = _multipart(0)
        sock.sendall(
            b"POST /api/datasets/upload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            + f"Content-Type: {headers['Content-Type']}\r\n".encode()
            + b"Transfer-Encoding: chunked\r\n\r\n"
            + f"{len(head):x}\r\n".encode()
            + head
            + b"\r\n"
        )
        chunk = f"{CHUNK:x}\r\n".encode() + b"\0" * CHUNK + b"\r\n"
        for _ in range(11 * MiB // CHUNK):
            sock.sendall(chunk)
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert UPLOAD_413.encode() in answer


def test_upload_of_exactly_10_mib_is_accepted(http: httpx.Client) -> None:
    response = http.post(
        "/api/datasets/upload", files={"file": ("d.npz", b"\0" * MAX_UPLOAD_BYTES)}
    )
    assert response.status_code == 201, response.text
    assert response.json() == {"bytes": MAX_UPLOAD_BYTES}


def test_chunked_upload_under_the_limit_is_accepted(http: httpx.Client) -> None:
    size = 2 * MiB
    head, tail, headers = _multipart(size)
    response = http.post("/api/datasets/upload", content=_chunks(head, size, tail), headers=headers)
    assert response.status_code == 201 and response.json() == {"bytes": size}


def test_the_json_limit_covers_other_paths_with_multipart(http: httpx.Client) -> None:
    response = http.post("/api/echo", files={"file": ("d.csv", b"\0" * (2 * MiB))})
    assert response.status_code == 413 and response.json() == too_large("/api/echo", JSON_413)


# ----------------------------------------------------------------------------- WebSocket


def test_websocket_message_over_the_hard_cap_closes_1009(server: ThreadServer) -> None:
    with server.ws(max_size=None) as ws:
        ws.send("x" * (100 * 1024))  # above the 64 KiB command limit: the app's business
        assert len(ws.recv(timeout=5)) == 100 * 1024
        ws.send("x" * (MAX_WS_FRAME_BYTES + 1))
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
    assert info.value.rcvd is not None and info.value.rcvd.code == WS_CLOSE_TOO_BIG
    assert "1 MiB" in info.value.rcvd.reason
