"""GET /api/ws-schema against real frames: live training sessions on a real server send every
kind of frame (hello, metrics, snapshot, status, event, error) and of event (clip, diverged,
early_stop, hyperparameters, weights, reset), and each validates against the schema its "type"
names. A frame or event type without a schema fails; the schemas refuse broken frames."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import jsonschema
import pytest
from websockets.sync.client import ClientConnection, connect

from engine.recorder import REPORT_SCALARS
from engine.stats import LAYER_STAT_KEYS
from tests.support import LiveServer

Validator = jsonschema.Draft202012Validator

CLIPPED = {  # clipped at every step: a "clip" event per report
    "seed": 2,
    "dataset": {"name": "circle", "samples": 200},
    "features": ["x1", "x2"],
    "layers": [
        {"type": "dense", "units": 4, "activation": "tanh"},
        {"type": "batchnorm"},
        {"type": "dense", "units": 1, "activation": "tanh"},
    ],
    "gradient_clip": {"kind": "value", "threshold": 0.001},
}
EARLY = {  # min_delta so large that only the first evaluation counts as an improvement
    "dataset": {"name": "xor", "samples": 100},
    "layers": [{"type": "dense", "units": 1}],
    "early_stopping": {"patience": 1, "eval_every": 5, "min_delta": 1e9},
}
EXPLODING = {  # a linear regression at learning rate 100 diverges within a few steps
    "dataset": {"name": "sine", "samples": 100},
    "layers": [{"type": "dense", "units": 1, "activation": "linear"}],
    "loss": "mse",
    "optimizer": {"name": "sgd", "learning_rate": 100.0},
}
EVENT_TYPES = {"clip", "diverged", "early_stop", "hyperparameters", "weights", "reset"}
FRAME_TYPES = {"hello", "metrics", "snapshot", "status", "event", "error"}


@pytest.fixture(scope="module")
def http(shared_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=shared_server.url, timeout=60.0) as client:
        yield client


@pytest.fixture(scope="module")
def document(http: httpx.Client) -> dict[str, Any]:
    response = http.get("/api/ws-schema")
    assert response.status_code == 200, response.text
    return response.json()


class Recorder:
    """One WebSocket client that keeps every frame it receives."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []

    def send(self, message: dict[str, Any]) -> None:
        self.ws.send(json.dumps(message))

    def until(self, wanted: Callable[[dict[str, Any]], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"no such frame within {timeout} s; got {self.types()}"
            frame = json.loads(self.ws.recv(timeout=left))
            self.frames.append(frame)
            if wanted(frame):
                return

    def types(self) -> list[str]:
        return [f["type"] for f in self.frames]


def is_event(kind: str) -> Callable[[dict[str, Any]], bool]:
    return lambda f: f["type"] == "event" and f["event"]["type"] == kind


def collect(server: LiveServer, http: httpx.Client) -> list[dict[str, Any]]:
    """Real frames of three sessions, with every frame and event type the server sends while
    its data directory can be written (save_failed and saved need a full disk)."""
    frames: list[dict[str, Any]] = []

    def create(config: dict[str, Any]) -> str:
        response = http.post("/api/sessions", json={"config": config})
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def watching(session_id: str) -> ClientConnection:
        return connect(f"{server.ws_url}/ws/sessions/{session_id}", max_size=None, proxy=None)

    sid = create(CLIPPED)
    with watching(sid) as ws:
        watch = Recorder(ws)
        watch.until(lambda f: f["type"] == "hello")
        watch.send({"type": "command", "action": "start", "pace": 300})
        watch.until(lambda f: f["type"] == "status" and f["session"]["status"] == "running")
        for _ in range(3):
            watch.until(lambda f: f["type"] == "metrics")
        watch.until(lambda f: f["type"] == "snapshot")
        watch.until(is_event("clip"))
        http.patch(f"/api/sessions/{sid}", json={"learning_rate": 0.05}).raise_for_status()
        watch.until(is_event("hyperparameters"))
        watch.send({"type": "command", "action": "stop"})
        watch.until(lambda f: f["type"] == "status" and f["session"]["status"] == "paused")
        weights = http.get(f"/api/sessions/{sid}/weights").json()
        http.put(f"/api/sessions/{sid}/weights", json=weights).raise_for_status()
        watch.until(is_event("weights"))
        watch.send({"type": "command", "action": "reset"})
        watch.until(is_event("reset"))
        watch.send({"type": "command", "action": "fly"})
        watch.until(lambda f: f["type"] == "error")
        watch.send({"type": "command", "action": "step", "steps": 3})
        watch.until(lambda f: f["type"] == "metrics" and f["step"] == 3)
        frames += watch.frames
    for config, kind in ((EARLY, "early_stop"), (EXPLODING, "diverged")):
        with watching(create(config)) as ws:
            watch = Recorder(ws)
            watch.until(lambda f: f["type"] == "hello")
            watch.send({"type": "command", "action": "start"})
            watch.until(is_event(kind))
            watch.until(lambda f: f["type"] == "status" and f["session"]["status"] != "running")
            frames += watch.frames
    with watching("nosuchsession") as unknown:
        frames.append(json.loads(unknown.recv(timeout=10)))
    return frames


@pytest.fixture(scope="module")
def frames(shared_server: LiveServer, http: httpx.Client) -> list[dict[str, Any]]:
    return collect(shared_server, http)


def check(schema: dict[str, Any], frame: dict[str, Any]) -> list[str]:
    """What is wrong with `frame` according to `schema` (empty: it validates)."""
    return [f"{list(e.absolute_path)}: {e.message}" for e in Validator(schema).iter_errors(frame)]


def test_the_schemas_are_valid_json_schema(document: dict[str, Any]) -> None:
    assert set(document["server_frames"]) == FRAME_TYPES
    assert document["url"] == "/ws/sessions/{session_id}"
    for schema in [*document["server_frames"].values(), *document["client_messages"].values()]:
        Validator.check_schema(schema)
    layer = document["server_frames"]["metrics"]["properties"]["layers"]["items"]
    assert set(LAYER_STAT_KEYS) <= set(layer["properties"])  # every stat the engine sends
    metrics = document["server_frames"]["metrics"]["properties"]
    assert set(REPORT_SCALARS) <= set(metrics)  # every field of a report is described


def test_every_real_frame_validates_against_its_type(
    document: dict[str, Any], frames: list[dict[str, Any]]
) -> None:
    schemas = document["server_frames"]
    assert {f["type"] for f in frames} == FRAME_TYPES
    assert {f["event"]["type"] for f in frames if f["type"] == "event"} == EVENT_TYPES
    for frame in frames:
        assert frame["type"] in schemas, f"frame type {frame['type']!r} has no schema"
        assert check(schemas[frame["type"]], frame) == [], frame["type"]
    # the batchnorm layer's batch statistics and the metrics' eval_step came through
    metrics = [f for f in frames if f["type"] == "metrics"]
    assert any("batch_mean" in layer for f in metrics for layer in f["layers"])
    assert any(f.get("eval_step") is not None for f in metrics)


def test_the_schemas_refuse_broken_frames(
    document: dict[str, Any], frames: list[dict[str, Any]]
) -> None:
    schemas = document["server_frames"]
    first = {}
    for frame in frames:
        first.setdefault(frame["type"], frame)
    clip = next(f for f in frames if f["type"] == "event" and f["event"]["type"] == "clip")
    breakages: list[tuple[dict[str, Any], Callable[[dict[str, Any]], None]]] = [
        (first["metrics"], lambda f: f.update(step="5")),
        (first["metrics"], lambda f: f["layers"][0].pop("grad_norm")),
        (first["metrics"], lambda f: f.pop("learning_rate")),
        (first["metrics"], lambda f: f.update(time=5)),
        (first["hello"], lambda f: f["session"].update(status="sleeping")),
        (first["status"], lambda f: f.pop("session")),
        (first["snapshot"], lambda f: f["histograms"][next(iter(f["histograms"]))].pop("grad")),
        (clip, lambda f: f["event"].update(type="teleported")),
        (clip, lambda f: f["event"].pop("threshold")),
        (first["error"], lambda f: f.update(message=None)),
    ]
    for frame, breaking in breakages:
        broken = copy.deepcopy(frame)
        breaking(broken)
        assert check(schemas[frame["type"]], broken) != [], broken
    # a metrics frame may carry fields added later (e.g. "time")
    later = {**first["metrics"], "time": "2026-12-03T07:18:13.123Z", "novel": 1}
    assert check(schemas["metrics"], later) == []


def test_commands_have_a_schema_too(document: dict[str, Any]) -> None:
    command = document["client_messages"]["command"]
    good = [
        {"type": "command", "action": "start", "pace": 300},
        {"type": "command", "action": "step", "steps": 3},
        {"type": "command", "action": "stop"},
        {"type": "command", "action": "reset"},
    ]
    bad = [
        {"type": "command", "action": "fly"},
        {"type": "command", "action": "step", "steps": 0},
        {"type": "command", "action": "step", "steps": True},
        {"type": "command", "action": "start", "pace": 0},
        {"action": "start"},
    ]
    assert [check(command, m) == [] for m in good] == [True] * len(good)
    assert [check(command, m) == [] for m in bad] == [False] * len(bad)


def test_the_openapi_document_points_to_the_websocket(http: httpx.Client) -> None:
    openapi = http.get("/openapi.json").json()
    description = openapi["info"]["description"]
    assert "/ws/sessions/{session_id}" in description and "(/api/ws-schema)" in description
    assert "docs/websocket.md" in description
    assert "/api/ws-schema" in openapi["paths"]
