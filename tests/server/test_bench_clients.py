"""The hand-written WebSocket clients of bench/stream.py: they read what the server sends.

bench/stream.py measures the server's streaming cost with them, so a client that missed or
misread frames would make the bench report a cost it never paid.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import struct
import sys
import time
from types import ModuleType

import httpx
import orjson
import pytest

from tests.support import ROOT, LiveServer


@pytest.fixture(scope="module")
def stream() -> ModuleType:
    """bench/stream.py as a module (it sets one BLAS thread for itself and its servers)."""
    saved = {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    spec = importlib.util.spec_from_file_location("bench_stream", ROOT / "bench" / "stream.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it runs
    path = list(sys.path)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = path
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return module


def test_lean_clients_get_hello_metrics_and_snapshots(
    stream: ModuleType, server: LiveServer
) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        config = stream.NETS["2-8-8-1 tanh"]  # the bench's own small net
        sid = http.post("/api/sessions", json={"config": config}).json()["id"]
        watchers = stream.LeanWatchers(f"{server.ws_url}/ws/sessions/{sid}", 3)
        watchers.start()  # returns once every client has its hello frame
        began = time.monotonic()
        try:
            watchers.recording = True
            http.post(f"/api/sessions/{sid}/start").raise_for_status()
            # a generous deadline bounds the wait; how fast frames come is the bench's figure
            deadline = time.monotonic() + 60
            while len(watchers.latencies) < 3 * 10 and time.monotonic() < deadline:
                time.sleep(0.05)
            http.post(f"/api/sessions/{sid}/stop").raise_for_status()
            while watchers.snapshots < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            watchers.stop()
        lasted = time.monotonic() - began
    # metrics frames for each client, a snapshot each (at least the one at the stop)
    assert len(watchers.latencies) >= 3 * 10
    # each latency compares the frame's server stamp "t" with the client's clock (the same
    # machine's CLOCK_MONOTONIC): every frame was made during this test and read after it was made
    assert all(0 <= latency <= lasted for latency in watchers.latencies)
    assert watchers.snapshots >= 3
    assert watchers.frames > len(watchers.latencies) + watchers.snapshots  # status frames too


def test_lean_client_parses_split_frames_and_answers_pings(stream: ModuleType) -> None:
    here, there = socket.socketpair()
    watchers = stream.LeanWatchers("ws://127.0.0.1:1/x", 1)
    watchers._socks.append(here)
    watchers._buffers.append(bytearray())
    watchers.recording = True
    metrics = orjson.dumps({"type": "metrics", "step": 1, "t": time.monotonic()})
    snapshot = b'{"type":"snapshot","w":"' + b"x" * 70_000 + b'"}'
    wire = (
        bytes([0x81, len(metrics)])
        + metrics
        + bytes([0x89, 3])
        + b"abc"  # a ping
        + struct.pack("!BBQ", 0x81, 127, len(snapshot))
        + snapshot
        + struct.pack("!BBH", 0x81, 126, 300)
        + b"{"
        + b" " * 298
        + b"}"
    )
    buffer = watchers._buffers[0]
    taken = 0
    for at in range(0, len(wire), 7_001):  # as the socket might hand it over
        buffer += wire[at : at + 7_001]
        taken += watchers._frames(0, buffer)
    assert taken == 4 and not buffer
    assert watchers.frames == 3 and watchers.snapshots == 1 and len(watchers.latencies) == 1
    pong = there.recv(100)
    assert pong[0] == 0x8A and pong[1] == 0x80 | 3  # FIN + pong, masked, 3 bytes
    mask = pong[2:6]
    assert bytes(b ^ mask[i % 4] for i, b in enumerate(pong[6:])) == b"abc"
    here.close()
    there.close()
