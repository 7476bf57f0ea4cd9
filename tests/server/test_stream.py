"""The WebSocket stream against the real server: hello, metrics with per-layer stats, snapshots,
status and event frames, client commands, malformed messages, the client cap, and a stalled
client that must not hold up anyone else and is dropped with a close frame.

The tests that depend on how frames travel run under each of uvicorn's WebSocket
implementations (`--ws`), with per-message deflate off (the default: a browser offers it, the
server declines) and on (`--ws-per-message-deflate`: negotiated). They use an in-process server
built with the command line's own uvicorn options, so they can also see the hub's clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from engine.stats import LAYER_STAT_KEYS
from engine.trainer import Trainer
from server.app import ServerSettings, create_app
from server.cli import build_parser, main, uvicorn_options
from server.hub import CLOSE_POLICY, Hub, HubFullError, encode
from server.limits import MAX_WS_FRAME_BYTES
from tests.support import LiveServer, close_frame, free_port, stalled_websocket

# The legacy implementation (`--ws websockets`) warns that it is deprecated when uvicorn loads it.
pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The `websockets` implementation is deprecated"),
]

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


def ws_connect(
    server: LiveServer | StreamServer, session_id: str, compression: str | None = None
) -> ClientConnection:
    """A client; compression="deflate" offers per-message deflate, as browsers do."""
    return connect(
        f"{server.ws_url}/ws/sessions/{session_id}",
        max_size=None,
        proxy=None,
        open_timeout=10,
        compression=compression,
    )


def deflate_negotiated(ws: ClientConnection) -> bool:
    """True when the server accepted the client's per-message deflate offer."""
    assert ws.response is not None
    return "permessage-deflate" in ws.response.headers.get("Sec-WebSocket-Extensions", "")


@dataclass
class StreamServer:
    """The app under uvicorn in a thread of the test process, started with the command line's
    options for one WebSocket implementation, per-message deflate on or off."""

    ws: str
    deflate: bool
    app: FastAPI
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def hub(self) -> Hub:
        return self.app.state.hub


IMPLEMENTATIONS = ("websockets-sansio", "websockets", "wsproto")  # "auto" is websockets-sansio
PLAIN = [(ws, False) for ws in IMPLEMENTATIONS]
DEFLATE = [(ws, True) for ws in IMPLEMENTATIONS]


def _config_id(param: tuple[str, bool]) -> str:
    return param[0] + ("+deflate" if param[1] else "")


@pytest.fixture(scope="module", params=PLAIN + DEFLATE, ids=_config_id)
def stream_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StreamServer]:
    """One in-process server per configuration, for the whole module."""
    ws, deflate = request.param
    port = free_port()
    argv = ["--port", str(port), "--ws", ws, "--log-level", "warning"]
    options = uvicorn_options(
        build_parser().parse_args(argv + ["--ws-per-message-deflate"] * deflate)
    )
    data_dir: Path = tmp_path_factory.mktemp("stream") / "data"
    app = create_app(ServerSettings(port=port, data_dir=data_dir))
    server = uvicorn.Server(uvicorn.Config(app, **options))
    thread = threading.Thread(target=server.run, name=f"uvicorn-{ws}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    if not server.started:
        raise RuntimeError(f"the in-process server ({_config_id(request.param)}) did not start")
    try:
        yield StreamServer(ws, deflate, app, port)
    finally:
        server.should_exit = True
        thread.join(20)


@pytest.fixture
def stream_client(stream_server: StreamServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stream_server.url, timeout=30.0, trust_env=False) as http:
        yield http


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
    stream_server: StreamServer, stream_client: httpx.Client
) -> None:
    client = stream_client
    created = client.post("/api/sessions", json={"config": XOR})
    assert created.status_code == 201, created.text
    sid = created.json()["id"]
    client.post(f"/api/sessions/{sid}/step", json={"steps": 20})
    with ws_connect(stream_server, sid, compression="deflate") as ws:
        assert deflate_negotiated(ws) == stream_server.deflate
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
    assert client.delete(f"/api/sessions/{sid}").status_code == 204


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


def test_unknown_session_is_closed_with_4404(stream_server: StreamServer) -> None:
    with ws_connect(stream_server, "no-such-session", compression="deflate") as ws:
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


def test_stalled_client_does_not_block_other_clients_or_requests(
    shared_server: LiveServer, client: httpx.Client
) -> None:
    sid = client.post("/api/sessions", json={"config": WIDE}).json()["id"]
    stalled = stalled_websocket(shared_server.port, sid)
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
    stream_server: StreamServer, stream_client: httpx.Client
) -> None:
    client = stream_client
    session_id = client.post("/api/sessions", json={"config": XOR}).json()["id"]
    with ws_connect(stream_server, session_id, compression="deflate") as ws:
        recv(ws)
        assert client.delete(f"/api/sessions/{session_id}").status_code == 204
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                recv(ws)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4404


class FakeSocket:
    """Records sent text and the close; `gate` holds sends back like a peer that stopped
    reading (a close waits behind it too, as it does in uvicorn)."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.closed: tuple[int, str] | None = None
        self.gate = asyncio.Event()
        self.gate.set()

    async def send_text(self, text: str) -> None:
        await self.gate.wait()
        self.sent.append(text)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self.gate.wait()
        self.closed = (code, reason)


async def until(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Wait (on the loop) until `predicate` holds; the timeout only bounds a broken run."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        await asyncio.sleep(0.01)


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
        texts = {id(t) for t in slow.sent} & {id(t) for t in fast.sent}
        assert len(texts) >= 5  # 4 statuses and the last metrics: one text object for both
        await hub.close_all()
        assert hub.viewers("s") == 0

    asyncio.run(scenario())


def test_hub_drops_a_client_whose_send_stays_blocked_with_a_close_frame() -> None:
    """A send blocked for stall_seconds: that client is removed and a 1008 close is queued
    (sent once the peer reads again); the other client of the session keeps getting frames."""

    async def scenario() -> None:
        hub = Hub(asyncio.get_running_loop(), stall_seconds=0.1)
        stuck, reader = FakeSocket(), FakeSocket()
        stuck.gate.clear()
        stuck_client = hub.add("s", stuck)  # type: ignore[arg-type]
        hub.add("s", reader).start(encode({"type": "hello"}))  # type: ignore[arg-type]
        stuck_client.start(encode({"type": "hello"}))
        await until(lambda: stuck_client not in hub.clients("s"), "the stuck client dropped")
        assert hub.viewers("s") == 1 and stuck.closed is None  # the close waits for room
        hub.publish("s", "event", {"type": "event", "n": 1})
        await until(lambda: len(reader.sent) == 2, "the reader's event")
        stuck.gate.set()  # the peer reads again: the close frame follows
        await until(lambda: stuck.closed is not None, "the close frame")
        assert stuck.closed == (CLOSE_POLICY, "stopped reading for 0.1 s")
        assert stuck.sent == []  # the blocked hello was given up, and nothing followed the drop
        await hub.close_all()

    asyncio.run(scenario())


def test_hub_cuts_off_a_client_with_too_many_pending_status_frames() -> None:
    async def scenario() -> None:
        hub = Hub(asyncio.get_running_loop(), max_pending=3)
        stuck = FakeSocket()
        stuck.gate.clear()
        client = hub.add("s", stuck)  # type: ignore[arg-type]
        client.start()
        for step in range(1, 6):  # one in the blocked send, three pending, then one too many
            hub.publish("s", "status", {"type": "status", "step": step})
            await asyncio.sleep(0)
        assert hub.viewers("s") == 0
        stuck.gate.set()
        await until(lambda: stuck.closed is not None, "the close frame")
        assert stuck.closed == (CLOSE_POLICY, "client too slow")
        await hub.close_all()

    asyncio.run(scenario())


def test_ending_the_endpoint_cancels_a_close_still_waiting() -> None:
    async def scenario() -> None:
        hub = Hub(asyncio.get_running_loop(), stall_seconds=0.1)
        stuck = FakeSocket()
        stuck.gate.clear()
        client = hub.add("s", stuck)  # type: ignore[arg-type]
        client.start(encode({"type": "hello"}))
        await until(lambda: hub.viewers("s") == 0, "the drop")
        hub.remove(client)  # what the endpoint does when the peer goes away
        await asyncio.sleep(0.05)
        stuck.gate.set()
        await asyncio.sleep(0.05)
        assert stuck.closed is None  # cancelled, not left waiting forever

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
        await hub.close_all()

    asyncio.run(scenario())


def test_frames_of_every_length_arrive_whole_and_in_order(
    stream_server: StreamServer, stream_client: httpx.Client
) -> None:
    """Frames of every length class (7-bit, 16-bit and 64-bit lengths), some larger than the
    transport's buffer, reach three clients of a session whole and in order."""
    sid = stream_client.post("/api/sessions", json={"config": XOR}).json()["id"]
    with contextlib.ExitStack() as stack:
        sockets = [
            stack.enter_context(ws_connect(stream_server, sid, compression=compression))
            for compression in ("deflate", "deflate", None)
        ]
        assert [deflate_negotiated(ws) for ws in sockets] == [stream_server.deflate] * 2 + [False]
        for ws in sockets:
            assert recv(ws)["type"] == "hello"
        texts = ["", "ü" * 10, "x" * 200, "y" * 70_000, "z" * 400_000, "after", "w" * 130]
        hub = stream_server.hub
        for text in texts:
            hub.publish(sid, "event", {"type": "event", "event": {"note": text}})
        for ws in sockets:
            got = [recv(ws)["event"]["note"] for _ in texts]
            assert got == texts
        assert all(c.sent >= 1 + len(texts) for c in hub.clients(sid))
    stream_client.delete(f"/api/sessions/{sid}")


@pytest.mark.parametrize("stream_server", PLAIN, ids=_config_id, indirect=True)
def test_stalled_client_is_dropped_with_a_close_frame(
    stream_server: StreamServer, stream_client: httpx.Client
) -> None:
    """A client that never reads (a 4 KiB receive buffer) while megabyte frames stream: the hub
    drops it once a send has waited stall_seconds, a reading client of the same session gets
    every frame, and when the stalled peer reads again it finds the close frame (1008 and the
    reason) after the data that was already on its way. Without deflate only: the raw client
    does not offer it."""
    hub = stream_server.hub
    hub.stall_seconds = 0.2  # the drop path is the same; the test waits less
    sid = stream_client.post("/api/sessions", json={"config": XOR}).json()["id"]
    stalled = stalled_websocket(stream_server.port, sid)
    try:
        with ws_connect(stream_server, sid) as ws:
            assert recv(ws)["type"] == "hello"
            deadline = time.monotonic() + 30
            while hub.viewers(sid) < 2 and time.monotonic() < deadline:  # (thread-safe)
                time.sleep(0.01)
            published = 0
            deadline = time.monotonic() + 60  # bounds a broken run; the drop takes about a second
            while hub.viewers(sid) > 1 and time.monotonic() < deadline:
                published += 1
                note = f"{published:08d}" + "x" * 1_000_000
                hub.publish(sid, "event", {"type": "event", "event": {"note": note}})
                assert recv(ws)["event"]["note"] == note  # only the other client stalls
            assert hub.viewers(sid) == 1, "the stalled client was never dropped"
        data = bytearray()
        stalled.settimeout(10)
        while (close := close_frame(bytes(data))) is None:
            chunk = stalled.recv(1 << 20)
            assert chunk, f"EOF after {len(data)} bytes and no close frame"
            data += chunk
        assert len(data) > 1_000_000  # the close frame came after the data on its way
        assert close == (CLOSE_POLICY, "stopped reading for 0.2 s")
    finally:
        hub.stall_seconds = 2.0
        stalled.close()
        stream_client.delete(f"/api/sessions/{sid}")


def test_ws_options_reach_uvicorn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--ws` and `--ws-per-message-deflate` are what uvicorn.run gets; deflate is off unless
    asked, and an unknown implementation is a usage error naming the option."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: calls.append(options))
    port = ["--port", str(free_port())]
    assert main([*port, "--data-dir", str(tmp_path / "a")]) == 0
    assert (
        main(
            [
                *port,
                "--data-dir",
                str(tmp_path / "b"),
                "--ws",
                "wsproto",
                "--ws-per-message-deflate",
            ]
        )
        == 0
    )
    assert [(c["ws"], c["ws_per_message_deflate"]) for c in calls] == [
        ("auto", False),
        ("wsproto", True),
    ]
    assert {c["ws_max_size"] for c in calls} == {MAX_WS_FRAME_BYTES}
    with pytest.raises(SystemExit) as usage:
        build_parser().parse_args(["--ws", "h2"])
    assert usage.value.code == 2
    assert "--ws: invalid choice: 'h2'" in capsys.readouterr().err
