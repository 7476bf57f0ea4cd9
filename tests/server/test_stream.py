"""The WebSocket stream against the real server: hello, metrics with per-layer stats, snapshots,
status and event frames, client commands, malformed messages, the client cap, and a stalled
client that must not hold up anyone else."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import math
import os
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader
from websockets.sync.client import ClientConnection, connect

from engine.stats import LAYER_STAT_KEYS
from engine.trainer import Trainer
from server.hub import Hub, HubFullError, encode, text_frame
from tests.support import LiveServer, free_port

XOR = {
    "dataset": {"name": "xor", "samples": 200},
    "layers": [{"type": "dense", "units": 4}, {"type": "dense", "units": 1}],
}
WIDE = {  # big snapshots (a neuron grid per unit): a stalled reader fills its socket quickly
    "dataset": {"name": "spiral"},
    "layers": [
        {"type": "dense", "units": 64, "activation": "relu"},
        {"type": "dense", "units": 64, "activation": "relu"},
        {"type": "dense", "units": 1},
    ],
}
LAYER_STATS = set(LAYER_STAT_KEYS)


@pytest.fixture
def sid(client: httpx.Client) -> Iterator[str]:
    """A fresh XOR session, stopped and deleted afterwards."""
    response = client.post("/api/sessions", json={"config": XOR})
    assert response.status_code == 201, response.text
    session_id = response.json()["id"]
    yield session_id
    client.post(f"/api/sessions/{session_id}/stop")
    client.delete(f"/api/sessions/{session_id}")


def ws_connect(server: LiveServer, session_id: str) -> ClientConnection:
    return connect(
        f"{server.ws_url}/ws/sessions/{session_id}",
        max_size=None,
        proxy=None,
        open_timeout=10,
        compression=None,
    )


def recv(ws: ClientConnection, timeout: float = 10.0) -> dict[str, Any]:
    return json.loads(ws.recv(timeout=timeout))


def recv_until(
    ws: ClientConnection, predicate: Callable[[dict[str, Any]], bool], timeout: float = 15.0
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Frames until one matches (bounded); returns it and everything seen before."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = recv(ws, timeout=max(0.1, deadline - time.monotonic()))
        if predicate(frame):
            return frame, seen
        seen.append(frame)
    raise AssertionError(f"no matching frame within {timeout}s; saw {[f['type'] for f in seen]}")


def command(ws: ClientConnection, action: str, **extra: Any) -> None:
    ws.send(json.dumps({"type": "command", "action": action, **extra}))


def test_hello_metrics_snapshot_status_and_events(
    shared_server: LiveServer, client: httpx.Client, sid: str
) -> None:
    client.post(f"/api/sessions/{sid}/step", json={"steps": 20})
    with ws_connect(shared_server, sid) as ws:
        hello = recv(ws)
        assert hello["type"] == "hello"
        assert hello["session"]["id"] == sid and hello["session"]["step"] == 20
        assert hello["config"]["layers"][0]["units"] == 4
        assert hello["history"]["step"][-1] == 20
        assert set(hello["history"]["layers"]) == {"0", "1"}

        sent_at = time.monotonic()  # the server stamps frames with the same machine clock
        command(ws, "start")
        status, _ = recv_until(ws, lambda f: f["type"] == "status")
        assert status["session"]["status"] == "running"
        metrics, received = [], []
        for _ in range(5):
            metrics.append(recv_until(ws, lambda f: f["type"] == "metrics")[0])
            received.append(time.monotonic())
        steps = [m["step"] for m in metrics]
        assert steps == sorted(steps) and steps[-1] > steps[0] > 20
        stamps = [m["t"] for m in metrics]
        assert stamps == sorted(stamps)  # in the order they were made
        for stamp, got in zip(stamps, received, strict=True):
            assert sent_at <= stamp <= got  # made after the start command, before it arrived
        per_epoch = len(Trainer(XOR).x_train) // 10  # full batches of 10 per epoch
        for frame in metrics:
            assert [layer["name"] for layer in frame["layers"]] == ["0", "1"]
            assert set(frame["layers"][0]) >= LAYER_STATS
            assert frame["epoch"] == (frame["step"] - 1) // per_epoch, frame["step"]
            assert frame["learning_rate"] == 0.03  # the config's rate, no schedule
            assert frame["loss"] > 0 and frame["batch_loss"] > 0
            assert frame["eval_step"] <= frame["step"]
            norms = [layer["grad_norm"] for layer in frame["layers"]]
            assert all(norm > 0 for norm in norms)
            # the largest global gradient norm of the interval is at least the last step's
            assert frame["max_grad_norm"] >= math.hypot(*norms) * (1 - 1e-5)
            for layer in frame["layers"]:
                assert layer["max_grad_norm"] >= layer["grad_norm"]
                assert 0 < layer["update_ratio"] < 1 and layer["weight_norm"] > 0
        snapshot, _ = recv_until(ws, lambda f: f["type"] == "snapshot")
        assert "0.W" in snapshot["weights"] and snapshot["grid"]["resolution"] > 0

        assert client.patch(f"/api/sessions/{sid}", json={"learning_rate": 0.05}).status_code == 200
        event, _ = recv_until(ws, lambda f: f["type"] == "event")
        assert event["event"]["type"] == "hyperparameters"
        assert event["event"]["changes"]["learning_rate"]["new"] == 0.05
        later, _ = recv_until(ws, lambda f: f["type"] == "metrics" and f["learning_rate"] == 0.05)
        assert later["step"] >= event["event"]["step"]

        command(ws, "stop")
        stopped, before = recv_until(ws, lambda f: f["type"] == "status")
        assert stopped["session"]["status"] == "paused"
        final_step = client.get(f"/api/sessions/{sid}").json()["step"]
        assert stopped["session"]["step"] == final_step
        last_metrics = [f for f in before if f["type"] == "metrics"]
        assert last_metrics and last_metrics[-1]["step"] == final_step  # metrics before status

        command(ws, "step", steps=7)
        done, seen = recv_until(ws, lambda f: f["type"] == "status")
        assert done["session"]["step"] == final_step + 7

        def fresh_snapshot(frame: dict[str, Any]) -> bool:
            return frame["type"] == "snapshot" and frame["step"] == final_step + 7

        if not any(fresh_snapshot(frame) for frame in seen):  # it may come before or after
            recv_until(ws, fresh_snapshot)

        command(ws, "reset")
        reset_event, _ = recv_until(ws, lambda f: f["type"] == "event")
        assert reset_event["event"]["type"] == "reset"
        idle, _ = recv_until(ws, lambda f: f["type"] == "status")
        assert idle["session"]["status"] == "idle" and idle["session"]["step"] == 0


def test_malformed_messages_get_error_frames_and_the_connection_stays(
    shared_server: LiveServer, sid: str
) -> None:
    with ws_connect(shared_server, sid) as ws:
        assert recv(ws)["type"] == "hello"
        cases = [
            ("{not json", "JSON"),
            (json.dumps({"type": "command", "action": "dance"}), "unknown action"),
            (json.dumps({"action": "start"}), "command"),
            (json.dumps([1, 2]), "command"),
            (json.dumps({"type": "command", "action": "step", "steps": 0}), "steps"),
            (json.dumps({"type": "command", "action": "start", "pace": 0}), "pace"),
            (json.dumps({"type": "command", "action": "start", "pace": True}), "pace"),
            (json.dumps({"type": "command", "action": "start", "pace": "9"}), "pace"),
            ("x" * (64 * 1024 + 1), "too large"),
            # non-finite numbers never reach the session
            ('{"type": "command", "action": "start", "pace": NaN}', "invalid JSON"),
            ('{"type": "command", "action": "start", "pace": 1e999}', "infinity"),
            ('{"type": "command", "action": "step", "steps": -Infinity}', "invalid JSON"),
        ]
        for message, words in cases:
            ws.send(message)
            error = recv(ws)
            assert error["type"] == "error", error
            assert words in error["message"]
        ws.send(b"\x00binary is not JSON")
        assert recv(ws)["type"] == "error"
        command(ws, "step", steps=3)
        status, _ = recv_until(ws, lambda f: f["type"] == "status")
        assert status["session"]["step"] == 3


def test_command_conflicts_are_error_frames(
    shared_server: LiveServer, client: httpx.Client, sid: str
) -> None:
    with ws_connect(shared_server, sid) as ws:
        recv(ws)
        command(ws, "start")
        recv_until(ws, lambda f: f["type"] == "status")
        command(ws, "start")
        error, _ = recv_until(ws, lambda f: f["type"] == "error")
        assert "already running" in error["message"]
        command(ws, "stop")
        recv_until(ws, lambda f: f["type"] == "status")


def test_start_command_with_a_pace_runs_paced(shared_server: LiveServer, sid: str) -> None:
    with ws_connect(shared_server, sid) as ws:
        recv(ws)
        command(ws, "start", pace=0.001)  # one step, then a wait of 1,000 s
        running, _ = recv_until(ws, lambda f: f["type"] == "status")
        assert running["session"]["status"] == "running"
        assert running["session"]["pace"] == 0.001
        first, _ = recv_until(ws, lambda f: f["type"] == "metrics")  # reported before it waits
        assert first["step"] == 1
        command(ws, "stop")
        stopped, _ = recv_until(ws, lambda f: f["type"] == "status")
        assert stopped["session"]["status"] == "paused" and stopped["session"]["step"] == 1
        assert stopped["session"]["pace"] is None


def test_unknown_session_is_closed_with_4404(shared_server: LiveServer) -> None:
    with ws_connect(shared_server, "no-such-session") as ws:
        error = recv(ws)
        assert error["type"] == "error" and "no-such-session" in error["message"]
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4404


def test_more_than_32_clients_are_refused_with_1008(shared_server: LiveServer, sid: str) -> None:
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(ws_connect(shared_server, sid)) for _ in range(32)]
        for ws in clients:
            assert recv(ws)["type"] == "hello"
        with ws_connect(shared_server, sid) as extra, pytest.raises(ConnectionClosed) as closed:
            extra.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        assert "32" in closed.value.rcvd.reason


def stalled_websocket(server: LiveServer, session_id: str) -> socket.socket:
    """A WebSocket handshake on a raw socket with a tiny receive buffer that is never read."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", server.port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws/sessions/{session_id} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(1)  # byte by byte: read the handshake answer and nothing more
    assert response.startswith(b"HTTP/1.1 101"), response
    return sock


def test_stalled_client_does_not_block_other_clients_or_requests(
    shared_server: LiveServer, client: httpx.Client
) -> None:
    sid = client.post("/api/sessions", json={"config": WIDE}).json()["id"]
    stalled = stalled_websocket(shared_server, sid)
    try:
        with ws_connect(shared_server, sid) as ws:
            assert recv(ws)["type"] == "hello"
            command(ws, "start")
            recv_until(ws, lambda f: f["type"] == "status")
            # Multi-megabyte snapshots: the stalled socket is full after the first few. The
            # reading client keeps getting frames and the API keeps answering (how fast is
            # bench/load.py's business; here a generous deadline only bounds the wait).
            deadline = time.monotonic() + 60.0
            metrics = snapshots = answered = 0
            while (metrics < 60 or snapshots < 2) and time.monotonic() < deadline:
                frame = recv(ws, timeout=30)
                metrics += frame["type"] == "metrics"
                snapshots += frame["type"] == "snapshot"
                if frame["type"] == "metrics" and metrics % 10 == 1:
                    assert client.get("/api/health").status_code == 200
                    answered += 1
            assert metrics >= 60 and snapshots >= 2, (metrics, snapshots)
            assert answered == 6
            stopped = client.post(f"/api/sessions/{sid}/stop")
            assert stopped.status_code == 200
            status, _ = recv_until(ws, lambda f: f["type"] == "status")
            assert status["session"]["status"] == "paused"
    finally:
        stalled.close()
        client.delete(f"/api/sessions/{sid}")


def test_divergence_is_an_event_then_a_status_with_the_reason(
    shared_server: LiveServer, client: httpx.Client
) -> None:
    config = {
        "dataset": {"name": "plane", "samples": 100},
        "optimizer": {"learning_rate": 100},
        "layers": [
            {"type": "dense", "units": 8, "activation": "relu"},
            {"type": "dense", "units": 1, "activation": "linear"},
        ],
    }
    session_id = client.post("/api/sessions", json={"config": config}).json()["id"]
    try:
        with ws_connect(shared_server, session_id) as ws:
            recv(ws)
            command(ws, "start")
            recv_until(ws, lambda f: f["type"] == "status")  # running
            event, _ = recv_until(ws, lambda f: f["type"] == "event")
            assert event["event"]["type"] == "diverged" and event["event"]["message"]
            status, _ = recv_until(ws, lambda f: f["type"] == "status")
            assert status["session"]["status"] == "diverged"
            assert status["session"]["message"] == event["event"]["message"]
        stored = client.get(f"/api/sessions/{session_id}").json()
        assert stored["status"] == "diverged"
        events = client.get(f"/api/sessions/{session_id}/metrics").json()["events"]
        assert [e["type"] for e in events] == ["diverged"]
    finally:
        client.delete(f"/api/sessions/{session_id}")


def test_deleting_a_session_closes_its_clients_with_4404(
    shared_server: LiveServer, client: httpx.Client
) -> None:
    session_id = client.post("/api/sessions", json={"config": XOR}).json()["id"]
    with ws_connect(shared_server, session_id) as ws:
        recv(ws)
        assert client.delete(f"/api/sessions/{session_id}").status_code == 204
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                recv(ws)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4404


class FakeSocket:
    """Records sent text; `gate` holds sends back like a peer that stopped reading."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def send_text(self, text: str) -> None:
        await self.gate.wait()
        self.sent.append(text)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.gate.set()


def test_hub_latest_wins_never_drops_status_and_caps_the_rate() -> None:
    async def scenario() -> None:
        hub = Hub(asyncio.get_running_loop(), frame_rate=20.0)
        slow, fast = FakeSocket(), FakeSocket()
        slow.gate.clear()  # stalled
        slow_client = hub.add("s", slow)  # type: ignore[arg-type]
        fast_client = hub.add("s", fast)  # type: ignore[arg-type]
        slow_client.start(encode({"type": "hello"}))
        fast_client.start(encode({"type": "hello"}))
        for step in range(1, 101):
            hub.publish("s", "metrics", {"type": "metrics", "step": step})
            if step % 25 == 0:
                hub.publish("s", "status", {"type": "status", "step": step})
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.2)
        slow.gate.set()  # the stalled client reads again
        await asyncio.sleep(0.2)
        for socket_ in (slow, fast):
            frames = [json.loads(text) for text in socket_.sent]
            assert frames[0]["type"] == "hello"
            statuses = [f["step"] for f in frames if f["type"] == "status"]
            assert statuses == [25, 50, 75, 100]  # never dropped, in order
            steps = [f["step"] for f in frames if f["type"] == "metrics"]
            assert steps == sorted(steps) and steps[-1] == 100  # newest always arrives
            for status in statuses:  # the metrics of a step go out before its status
                before = [
                    f["step"]
                    for f in frames[: frames.index({"type": "status", "step": status})]
                    if f["type"] == "metrics"
                ]
                assert before[-1] == status
        slow_steps = [json.loads(t)["step"] for t in slow.sent if '"metrics"' in t]
        assert len(slow_steps) < 15  # the stalled one skipped stale frames
        fast_steps = [json.loads(t)["step"] for t in fast.sent if '"metrics"' in t]
        # ~0.7 s at most 20/s plus the ones flushed ahead of the 4 status frames
        assert len(fast_steps) <= 20 * 0.8 + 4 + 2
        await hub.close_all()
        assert hub.viewers("s") == 0

    asyncio.run(scenario())


def test_hub_caps_clients_per_session() -> None:
    async def scenario() -> None:
        hub = Hub(asyncio.get_running_loop(), max_clients=2)
        hub.add("s", FakeSocket())  # type: ignore[arg-type]
        hub.add("s", FakeSocket())  # type: ignore[arg-type]
        with pytest.raises(HubFullError):
            hub.add("s", FakeSocket())  # type: ignore[arg-type]
        hub.add("other", FakeSocket())  # type: ignore[arg-type]
        assert (hub.viewers("s"), hub.viewers("other")) == (2, 1)

    asyncio.run(scenario())


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65_535, 65_536, 300_001])
def test_text_frame_is_what_the_websockets_parser_reads(size: int) -> None:
    """The prebuilt wire bytes, read back by the websockets library's own frame parser."""
    text = "é" * (size // 4) + "x" * (size - 2 * (size // 4))  # `size` UTF-8 bytes, some 2-byte
    payload = text.encode()
    reader = StreamReader()
    reader.feed_data(text_frame(payload))
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
        raise AssertionError("the parser wanted more bytes than the frame has")
    except StopIteration as done:
        frame = done.value
    assert (frame.opcode, frame.fin, frame.rsv1) == (Opcode.TEXT, True, False)
    assert frame.data == payload and frame.data.decode() == text
    assert not reader.buffer  # nothing left over


def test_clients_of_uvicorn_get_shared_wire_bytes_intact(tmp_path: Any) -> None:
    """In-process uvicorn (the settings `python -m server` uses): each client of a session
    gets a direct link, and frames of every length class arrive whole and in order, also when
    the socket takes only part of a frame."""
    import threading

    import uvicorn

    from server.app import ServerSettings, create_app

    port = free_port()
    app = create_app(ServerSettings(port=port, data_dir=tmp_path / "data"))
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, ws_per_message_deflate=False, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}"
        sid = httpx.post(url + "/api/sessions", json={"config": XOR}).json()["id"]
        with contextlib.ExitStack() as stack:
            sockets = [
                stack.enter_context(
                    connect(
                        f"ws://127.0.0.1:{port}/ws/sessions/{sid}", max_size=None, compression=None
                    )
                )
                for _ in range(3)
            ]
            for ws in sockets:
                assert json.loads(ws.recv(timeout=10))["type"] == "hello"
            hub: Hub = app.state.hub
            clients = hub.clients(sid)
            links = [c.link for c in clients]
            assert len(links) == 3 and all(link is not None and link.fd >= 0 for link in links)
            # a tiny send buffer on one connection: big frames go out partly by os.write, the
            # rest through the transport, and the frames after them must queue behind
            sock = links[0].transport.get_extra_info("socket")  # type: ignore[union-attr]
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            texts = ["", "ü" * 10, "x" * 200, "y" * 70_000, "z" * 400_000, "after", "w" * 130]
            for text in texts:
                hub.publish(sid, "event", {"type": "event", "event": {"note": text}})
            for ws in sockets:
                got = [json.loads(ws.recv(timeout=10))["event"]["note"] for _ in texts]
                assert got == texts
            assert all(c.sent >= 1 + len(texts) for c in hub.clients(sid))
    finally:
        server.should_exit = True
        thread.join(20)
