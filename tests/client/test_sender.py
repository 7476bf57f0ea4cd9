"""The watcher's sender thread (backprop_lens/_wire.py) against real sockets: a full buffer drops the
oldest metrics and counts them, it reconnects once the server is up and continues the same
session, and close() returns whatever the server does (down, killed, or never answering)."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from backprop_lens._wire import Sender, ingest_url
from tests.support import LiveServer, free_port

TOPOLOGY: dict[str, Any] = {
    "type": "topology",
    "version": 1,
    "name": "sender",
    "framework": "pytorch",
    "model": "Net",
    "parameters": 3,
    "layers": [{"name": "fc", "type": "dense", "module": "Linear", "parameters": 3, "units": 1}],
}
CLOSE_BOUND = 20.0  # generous: close() is about not hanging, its own timeout is 3 s


def metrics(step: int) -> dict[str, Any]:
    stats = {"grad_norm": float(step), "grad_mean_abs": 0.1, "grad_max_abs": 0.2}
    return {
        "type": "metrics",
        "step": step,
        "layers": [{"name": "fc", "type": "dense", **stats, "weight_norm": 1.0, "update_ratio": 0}],
    }


def wait_for(check: Any, what: str) -> Any:
    for _ in range(2000):
        value = check()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


def test_ingest_url_names_the_field() -> None:
    assert ingest_url("http://127.0.0.1:8000") == "ws://127.0.0.1:8000/ws/ingest"
    assert ingest_url("https://lens.example/base/") == "wss://lens.example/base/ws/ingest"
    with pytest.raises(ValueError, match="url: expected"):
        ingest_url("ftp://x")


def test_full_buffer_drops_the_oldest_then_reconnects_to_one_session(tmp_path: Path) -> None:
    live = LiveServer(tmp_path / "data")
    live.port = free_port()  # nobody listens there yet
    sender = Sender(f"http://127.0.0.1:{live.port}", None, TOPOLOGY, buffer_frames=5)
    try:
        for step in range(1, 9):
            sender.put_metrics(metrics(step))
        assert sender.dropped == 3
        live.start(same_port=True)
        wait_for(lambda: sender.sent == 5, "the 5 buffered frames sent")
        sid = sender.session_id
        rows = httpx.get(live.url + f"/api/sessions/{sid}/metrics").json()
        assert rows["step"] == [4, 5, 6, 7, 8]  # the oldest three went
        live.stop()  # gone mid-run (a restart): the script's connection breaks
        sender.put_metrics(metrics(9))
        live.start(same_port=True)
        sender.put_metrics(metrics(10))
        wait_for(lambda: sender.sent >= 6 and sender.connected, "sending again")
        started = time.monotonic()
        sender.final_step = 12
        sender.close()
        assert time.monotonic() - started < CLOSE_BOUND
        (session,) = httpx.get(live.url + "/api/sessions").json()["sessions"]
        assert (session["id"], session["status"], session["step"]) == (sid, "finished", 12)
        got = httpx.get(live.url + f"/api/sessions/{sid}/metrics").json()["step"]
        assert got == [4, 5, 6, 7, 8, 9, 10]  # 9 waited in the buffer while the server was down
    finally:
        sender.close()
        live.stop()


def test_close_returns_when_the_server_never_answers() -> None:
    """A listener that accepts and never speaks: the handshake hangs, close() does not."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        port = listener.getsockname()[1]
        sender = Sender(f"http://127.0.0.1:{port}", None, TOPOLOGY)
        sender.put_metrics(metrics(1))
        accepted, _ = listener.accept()  # held open, never answered
        with accepted:
            started = time.monotonic()
            sender.close()
            took = time.monotonic() - started
        assert took < CLOSE_BOUND
        assert sender.session_id is None
