"""Probes shared by the load test and bench/load.py: process memory, percentiles, and a raw
WebSocket that completes its handshake and then never reads (a stalled client)."""

from __future__ import annotations

import base64
import contextlib
import os
import socket
import struct
import time

TCP_STATES = {
    "01": "ESTABLISHED",
    "04": "FIN_WAIT1",
    "05": "FIN_WAIT2",
    "06": "TIME_WAIT",
    "07": "CLOSE",
    "08": "CLOSE_WAIT",
    "09": "LAST_ACK",
    "0B": "CLOSING",
}
TCP_ESTABLISHED = "ESTABLISHED"  # what server_side_tcp reports for an open connection


def rss_mb(pid: int) -> float:
    """VmRSS of a process in MB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))] if ordered else 0.0


def stalled_websocket(port: int, session_id: str) -> socket.socket:
    """A WebSocket handshake on a raw socket with a 4 KiB receive buffer, then never read."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws/sessions/{session_id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(1)
    if not response.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(f"handshake refused: {response[:200]!r}")
    return sock


def server_side_tcp(server_port: int, client_port: int) -> tuple[str, int] | None:
    """(state, bytes queued to send) of the server's end of a loopback connection."""
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            local, remote = fields[1], fields[2]
            if int(local.split(":")[1], 16) == server_port and (
                int(remote.split(":")[1], 16) == client_port
            ):
                state = TCP_STATES.get(fields[3], fields[3])
                return state, int(fields[4].split(":")[0], 16)
    return None


def drain(sock: socket.socket, limit: float) -> tuple[int, bool, tuple[int, str] | None]:
    """Read for at most `limit` seconds (or until EOF or 1 s of silence): (bytes, EOF, close
    frame (code, reason) if one came)."""
    data = bytearray()
    eof = False
    deadline = time.monotonic() + limit
    sock.settimeout(1.0)
    with contextlib.suppress(TimeoutError, OSError):
        while time.monotonic() < deadline:
            chunk = sock.recv(1 << 20)
            if not chunk:
                eof = True
                break
            data.extend(chunk)
    return len(data), eof, close_frame(bytes(data))


def close_frame(data: bytes) -> tuple[int, str] | None:
    """(code, reason) of the first close frame in a server-to-client byte stream."""
    at = 0
    while at + 2 <= len(data):
        opcode, length = data[at] & 0x0F, data[at + 1] & 0x7F
        at += 2
        if length == 126:
            (length,) = struct.unpack_from("!H", data, at)
            at += 2
        elif length == 127:
            (length,) = struct.unpack_from("!Q", data, at)
            at += 8
        payload = data[at : at + length]
        at += length
        if opcode == 0x8:
            code = struct.unpack_from("!H", payload)[0] if len(payload) >= 2 else 1005
            return code, payload[2:].decode(errors="replace")
    return None
