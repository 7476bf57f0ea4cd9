"""The ingest WebSocket and external sessions, spoken to frame by frame (no torch needed): schema
validation naming the field, the token, live / finished / disconnected, resuming after a
reconnect, persistence across a restart, the 409s of engine-only actions and the controls."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.support import LiveServer

TOPOLOGY: dict[str, Any] = {
    "type": "topology",
    "version": 1,
    "name": "script run",
    "framework": "pytorch",
    "model": "Net",
    "parameters": 99,
    "layers": [
        {"name": "fc1", "type": "dense", "module": "Linear", "parameters": 24,
         "units": 8, "in_features": 2},
        {"name": "act", "type": "generic", "module": "ReLU", "parameters": 0},
        {"name": "conv", "type": "conv2d", "module": "Conv2d", "parameters": 75,
         "filters": 3, "in_channels": 1, "kernel_size": [5, 5]},
    ],
}  # fmt: skip


def metrics_frame(step: int, grad_norm: float = 0.5) -> dict[str, Any]:
    layer = {
        "type": "dense",
        "grad_norm": grad_norm,
        "grad_mean_abs": 0.1,
        "grad_max_abs": 0.3,
        "weight_norm": 2.0,
        "update_ratio": 0.01,
    }
    return {
        "type": "metrics",
        "step": step,
        "loss": 1.0 / step,
        "learning_rate": 0.1,
        "layers": [{"name": "fc1", **layer}, {"name": "conv", **layer, "type": "conv2d"}],
        "scalars": {"seen": float(step)},
    }


def snapshot_frame(step: int, grad: dict[str, Any], weight: dict[str, Any]) -> dict[str, Any]:
    """A histograms frame for the layer fc1."""
    return {
        "type": "snapshot",
        "step": step,
        "histograms": {"fc1": {"grad": grad, "weight": weight}},
    }


@contextlib.contextmanager
def open_ingest(
    live: LiveServer, first: dict[str, Any] = TOPOLOGY
) -> Iterator[tuple[ClientConnection, dict[str, Any]]]:
    """A script's connection that sent `first`, and the server's answer."""
    with connect(live.ws_url + "/ws/ingest", additional_headers=live.headers(), proxy=None) as ws:
        ws.send(orjson.dumps(first).decode())
        yield ws, orjson.loads(ws.recv(timeout=10))


def api(live: LiveServer, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, live.url + path, headers=live.headers(), timeout=30, **kwargs)


def listed(live: LiveServer) -> list[dict[str, Any]]:
    return api(live, "GET", "/api/sessions").json()["sessions"]


def settle(live: LiveServer, session_id: str, step: int) -> None:
    """Wait until the server recorded `step` (frames are applied in order)."""
    for _ in range(500):
        if api(live, "GET", f"/api/sessions/{session_id}").json()["step"] == step:
            return
        time.sleep(0.02)
    raise AssertionError(f"step {step} never recorded")


def test_a_run_is_live_then_finished_with_its_metrics_and_topology(server: LiveServer) -> None:
    with open_ingest(server) as (ws, hello):
        sid = hello["session"]["id"]
        assert hello["type"] == "session" and hello["session"]["kind"] == "external"
        assert [(s["id"], s["kind"], s["status"]) for s in listed(server)] == [
            (sid, "external", "live")
        ]
        for step in (1, 2, 3):
            ws.send(orjson.dumps(metrics_frame(step, grad_norm=step / 10)).decode())
        settle(server, sid, 3)
        # the script's last step (7) may be past its last logged one (3)
        ws.send(orjson.dumps({"type": "finish", "step": 7}).decode())
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)
        session = api(server, "GET", f"/api/sessions/{sid}").json()
        assert (session["status"], session["step"], session["name"]) == (
            "finished",
            7,
            "script run",
        )
        assert session["config"]["layers"][2]["filters"] == 3
        got = api(server, "GET", f"/api/sessions/{sid}/metrics").json()
        assert got["step"] == [1, 2, 3]
        assert got["loss"] == [1.0, 0.5, pytest.approx(1 / 3)]
        assert got["layers"]["fc1"]["grad_norm"] == [0.1, 0.2, 0.3]
        assert got["scalars"] == {"seen": [1.0, 2.0, 3.0]}
        # an engine session next to it says so
        created = api(server, "POST", "/api/sessions", json={"config": {
            "dataset": {"name": "xor"}, "layers": [{"type": "dense", "units": 1}]}})  # fmt: skip
        assert created.json()["kind"] == "engine"


def test_engine_only_actions_answer_409_with_a_message(server: LiveServer) -> None:
    with open_ingest(server) as (ws, hello):
        sid = hello["session"]["id"]
        for method, path, body in (
            ("POST", "start", None),
            ("POST", "step", {"steps": 1}),
            ("POST", "reset", None),
            ("PUT", "weights", {"0.W": [[1.0]]}),
            ("PATCH", "", {"learning_rate": 0.1}),
            ("GET", "config", None),
            ("POST", "trace", {"inputs": [[0.0, 0.0]], "targets": [0]}),
        ):
            answer = api(server, method, f"/api/sessions/{sid}/{path}".rstrip("/"), json=body)
            assert answer.status_code == 409, (path, answer.text)
            assert "external run" in answer.json()["detail"], path
        # renaming works as for any session
        assert (
            api(server, "PATCH", f"/api/sessions/{sid}", json={"name": "b"}).json()["name"] == "b"
        )


def test_invalid_frames_are_refused_naming_the_field(server: LiveServer) -> None:
    bad = {**TOPOLOGY, "layers": [{**TOPOLOGY["layers"][0], "units": 0}]}
    with open_ingest(server, bad) as (ws, answer):
        assert answer["type"] == "error" and "layers[0].units" in answer["message"]
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4422
        assert listed(server) == []

    with open_ingest(server) as (ws, hello):
        sid = hello["session"]["id"]
        frame = metrics_frame(1)
        frame["layers"][1]["grad_norm"] = "big"
        ws.send(orjson.dumps(frame).decode())
        error = orjson.loads(ws.recv(timeout=10))
        assert error["type"] == "error" and "layers[1].grad_norm" in error["message"]
        ws.send(orjson.dumps({**metrics_frame(2), "extra": 1}).decode())
        assert "extra" in orjson.loads(ws.recv(timeout=10))["message"]
        ws.send(orjson.dumps(metrics_frame(3)).decode())  # the connection stays usable
        settle(server, sid, 3)
        assert api(server, "GET", f"/api/sessions/{sid}/metrics").json()["step"] == [3]


def test_token_is_required_on_the_ingest_socket(tmp_path: Path) -> None:
    live = LiveServer(tmp_path / "data", token="s3cret-token-value").start()
    try:
        with (
            connect(live.ws_url + "/ws/ingest", proxy=None) as ws,
            pytest.raises(ConnectionClosed) as closed,
        ):
            ws.send(orjson.dumps(TOPOLOGY).decode())
            ws.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
        with open_ingest(live) as (ws, hello):
            assert hello["type"] == "session"
    finally:
        live.stop()


def test_disconnect_resume_and_restart_keep_one_session(tmp_path: Path) -> None:
    live = LiveServer(tmp_path / "data").start()
    try:
        with open_ingest(live) as (ws, hello):
            sid = hello["session"]["id"]
            ws.send(orjson.dumps(metrics_frame(1)).decode())
            settle(live, sid, 1)
            ws.close()  # without a finish frame
        for _ in range(100):
            if listed(live)[0]["status"] == "disconnected":
                break
            time.sleep(0.05)
        assert [(s["id"], s["status"]) for s in listed(live)] == [(sid, "disconnected")]
        older = {"edges": [0.0, 1.0], "counts": [5]}
        latest = {"edges": [-1.0, 0.0, 1.0], "counts": [2, 7]}
        with open_ingest(live, {**TOPOLOGY, "resume": sid}) as (ws, again):
            assert again["session"]["id"] == sid and again["session"]["status"] == "live"
            for step, histogram in ((1, older), (2, latest)):
                ws.send(orjson.dumps(snapshot_frame(step, histogram, older)).decode())
            ws.send(orjson.dumps(metrics_frame(2)).decode())  # frames are applied in order
            settle(live, sid, 2)
            live.stop()  # the connection goes with the server
        live.start()
        assert [(s["id"], s["status"], s["step"]) for s in listed(live)] == [
            (sid, "disconnected", 2)
        ]
        assert api(live, "GET", f"/api/sessions/{sid}/metrics").json()["step"] == [1, 2]
        # the latest histograms outlive the restart, as an engine session's (from its weights)
        kept = api(live, "GET", f"/api/sessions/{sid}/snapshot").json()
        assert (kept["step"], kept["histograms"]["fc1"]) == (2, {"grad": latest, "weight": older})
        with connect(live.ws_url + f"/ws/sessions/{sid}", proxy=None) as viewer:
            first = orjson.loads(viewer.recv(timeout=10))
            second = orjson.loads(viewer.recv(timeout=10))
        assert first["type"] == "hello" and first["history"]["step"] == [1, 2]
        assert second["type"] == "snapshot" and second["histograms"]["fc1"]["grad"] == latest
    finally:
        live.stop()


def test_controls_reach_the_connected_script(server: LiveServer) -> None:
    with open_ingest(server) as (ws, hello):
        sid = hello["session"]["id"]
        answer = api(server, "POST", f"/api/sessions/{sid}/control",
                     json={"action": "learning_rate", "learning_rate": 0.05})  # fmt: skip
        assert answer.status_code == 200, answer.text
        assert orjson.loads(ws.recv(timeout=10)) == {
            "type": "control",
            "action": "learning_rate",
            "learning_rate": 0.05,
        }
        missing = api(
            server, "POST", f"/api/sessions/{sid}/control", json={"action": "learning_rate"}
        )
        assert missing.status_code == 422 and '"field":"learning_rate"' in missing.text
        ws.send(orjson.dumps({"type": "finish"}).decode())
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)
        late = api(server, "POST", f"/api/sessions/{sid}/control", json={"action": "pause"})
        assert late.status_code == 409 and "not connected" in late.json()["detail"]


def test_the_page_streams_an_external_session(server: LiveServer) -> None:
    """A viewer of /ws/sessions/{id} gets the hello with the history, then the script's
    metrics and histograms as they come; engine commands get an error frame."""
    with open_ingest(server) as (ws, hello):
        sid = hello["session"]["id"]
        ws.send(orjson.dumps(metrics_frame(1)).decode())
        settle(server, sid, 1)
        with connect(server.ws_url + f"/ws/sessions/{sid}", proxy=None) as viewer:
            first = orjson.loads(viewer.recv(timeout=10))
            assert first["type"] == "hello" and first["history"]["step"] == [1]
            assert first["session"]["kind"] == "external"
            histogram = {"edges": [0.0, 0.5, 1.0], "counts": [3, 4]}
            ws.send(orjson.dumps(metrics_frame(2, grad_norm=0.75)).decode())
            ws.send(
                orjson.dumps(
                    {
                        "type": "snapshot",
                        "step": 2,
                        "histograms": {"fc1": {"grad": histogram, "weight": histogram}},
                    }
                ).decode()
            )
            seen: dict[str, dict[str, Any]] = {}
            while not {"metrics", "snapshot"} <= set(seen):
                frame = orjson.loads(viewer.recv(timeout=10))
                seen[frame["type"]] = frame
            assert seen["metrics"]["step"] == 2
            assert seen["metrics"]["layers"][0]["grad_norm"] == 0.75
            assert seen["snapshot"]["histograms"]["fc1"]["grad"] == histogram
            latest = api(server, "GET", f"/api/sessions/{sid}/snapshot").json()
            assert (latest["step"], latest["histograms"]["fc1"]["weight"]) == (2, histogram)
            viewer.send(orjson.dumps({"type": "command", "action": "start"}).decode())
            while (frame := orjson.loads(viewer.recv(timeout=10)))["type"] != "error":
                pass
            assert "external run" in frame["message"]


def test_a_page_opened_later_gets_the_latest_histograms_after_the_hello(
    server: LiveServer,
) -> None:
    """Histograms come only when the script sends them (about once a second): a page opened
    between two, or after the run ended, gets the latest right after its hello."""
    older = {"edges": [0.0, 1.0], "counts": [5]}
    newer = {"edges": [0.0, 0.5, 1.0], "counts": [1, 6]}
    with open_ingest(server) as (ws, hello):
        sid = hello["session"]["id"]
        ws.send(orjson.dumps(metrics_frame(1)).decode())
        for step, histogram in ((1, older), (2, newer)):
            ws.send(orjson.dumps(snapshot_frame(step, histogram, older)).decode())
        ws.send(orjson.dumps(metrics_frame(2)).decode())
        settle(server, sid, 2)
        ws.send(orjson.dumps({"type": "finish", "step": 2}).decode())
    for _ in range(500):  # the script is gone: the run has ended
        if api(server, "GET", f"/api/sessions/{sid}").json()["status"] != "live":
            break
        time.sleep(0.02)
    with connect(server.ws_url + f"/ws/sessions/{sid}", proxy=None) as viewer:
        first = orjson.loads(viewer.recv(timeout=10))
        second = orjson.loads(viewer.recv(timeout=10))
    assert first["type"] == "hello" and first["session"]["status"] == "finished"
    assert second["type"] == "snapshot" and second["step"] == 2
    assert second["histograms"]["fc1"]["grad"] == newer


def test_deleting_a_live_session_tells_the_script(server: LiveServer) -> None:
    with open_ingest(server) as (ws, hello):
        sid = hello["session"]["id"]
        assert api(server, "DELETE", f"/api/sessions/{sid}").status_code == 204
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4404
    assert listed(server) == []


def test_frames_beyond_the_rate_limit_are_dropped_and_said(server: LiveServer) -> None:
    """1,000 frames sent at once: the burst (400) and what the rate refills pass, the rest is
    dropped with an error frame naming the limit; the connection stays, and the finish frame
    that follows at once still ends the run."""
    with open_ingest(server) as (ws, hello):
        sid = hello["session"]["id"]
        for step in range(1, 1001):
            ws.send(orjson.dumps(metrics_frame(step)).decode())
        error = orjson.loads(ws.recv(timeout=10))
        assert error["type"] == "error" and "more than 200 a second" in error["message"]
        ws.send(orjson.dumps({"type": "finish", "step": 1000}).decode())
        with pytest.raises(ConnectionClosed):
            while True:
                ws.recv(timeout=10)
    recorded = api(server, "GET", f"/api/sessions/{sid}/metrics").json()["step"]
    assert recorded[:400] == list(range(1, 401)) and len(recorded) < 1000
    session = api(server, "GET", f"/api/sessions/{sid}").json()
    assert (session["status"], session["step"]) == ("finished", 1000)  # finish is never dropped


def test_a_message_may_hold_an_array_of_frames_each_counted_and_checked(
    server: LiveServer,
) -> None:
    """The watcher's batches: an array's frames are applied in order, a bad one among them is
    refused naming its field while the others are kept, each counts against the rate as if it
    came alone, and an array past MAX_BATCH is refused whole."""
    with open_ingest(server) as (ws, hello):
        sid = hello["session"]["id"]
        bad = metrics_frame(2)
        bad["layers"][0]["update_ratio"] = "small"
        ws.send(orjson.dumps([metrics_frame(1), bad, metrics_frame(3)]))  # binary, as sent
        error = orjson.loads(ws.recv(timeout=10))
        assert error["type"] == "error" and "layers[0].update_ratio" in error["message"]
        settle(server, sid, 3)
        assert api(server, "GET", f"/api/sessions/{sid}/metrics").json()["step"] == [1, 3]

        ws.send(orjson.dumps([metrics_frame(4)] * 1001).decode())
        error = orjson.loads(ws.recv(timeout=10))
        assert error["message"] == "expected at most 1000 frames in one message, got 1001"

        # 400 at once pass (the burst, less the 3 above, plus what the rate refilled)...
        ws.send(orjson.dumps([metrics_frame(step) for step in range(4, 1004)]))
        error = orjson.loads(ws.recv(timeout=10))
        assert "frames dropped: more than 200 a second" in error["message"]
        ws.send(orjson.dumps([{"type": "finish", "step": 1003}]).decode())
        with pytest.raises(ConnectionClosed):
            while True:
                ws.recv(timeout=10)
    steps = api(server, "GET", f"/api/sessions/{sid}/metrics").json()["step"]
    assert steps[:399] == [1, *range(3, 401)] and len(steps) < 1000
    session = api(server, "GET", f"/api/sessions/{sid}").json()
    assert (session["status"], session["step"]) == ("finished", 1003)
