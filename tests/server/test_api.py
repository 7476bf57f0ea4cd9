"""The REST API over real HTTP against the app under uvicorn: the whole session lifecycle, every
inspection endpoint, field-named 422s, 404s, 409s, 429 over the training cap, uploads, the
OpenAPI document (the README's scripting examples, which use the Python client, run in
tests/client/test_readme_client.py)."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.support import LiveServer

XOR = {
    "seed": 1,
    "dataset": {"name": "xor", "samples": 200},
    "layers": [
        {"type": "dense", "units": 4, "activation": "tanh"},
        {"type": "dense", "units": 1, "activation": "tanh"},
    ],
}
SINE = {
    "dataset": {"name": "sine", "samples": 100},
    "features": ["x1"],
    "layers": [
        {"type": "dense", "units": 4},
        {"type": "dense", "units": 1, "activation": "linear"},
    ],
}


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll until predicate() is truthy (a liveness bound, not a performance threshold)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def create(client: httpx.Client, config: dict[str, Any] = XOR, **extra: Any) -> dict[str, Any]:
    response = client.post("/api/sessions", json={"config": config, **extra})
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
def session(client: httpx.Client) -> Iterator[dict[str, Any]]:
    """A fresh idle XOR session, deleted afterwards."""
    created = create(client)
    yield created
    client.post(f"/api/sessions/{created['id']}/stop")
    client.delete(f"/api/sessions/{created['id']}")


def test_lifecycle_create_start_patch_stop_step_inspect_delete(client: httpx.Client) -> None:
    created = create(client, name="lifecycle")
    sid = created["id"]
    assert created["status"] == "idle"
    assert created["step"] == 0 and created["metrics"] is None
    assert created["name"] == "lifecycle"
    assert created["config"]["layers"][0]["units"] == 4
    assert created["created_at"].startswith("20")
    assert client.get(f"/api/sessions/{sid}").json()["id"] == sid
    assert sid in [s["id"] for s in client.get("/api/sessions").json()["sessions"]]

    started = client.post(f"/api/sessions/{sid}/start")
    assert started.status_code == 200, started.text
    assert started.json()["status"] == "running"
    again = client.post(f"/api/sessions/{sid}/start")
    assert again.status_code == 409
    assert "already running" in again.json()["detail"]
    assert again.json()["code"] == "session_running"
    busy_step = client.post(f"/api/sessions/{sid}/step", json={"steps": 5})
    assert busy_step.status_code == 409 and busy_step.json()["code"] == "session_running"

    wait_for(lambda: client.get(f"/api/sessions/{sid}").json()["step"] > 50, what="steps")
    patched = client.patch(f"/api/sessions/{sid}", json={"learning_rate": 0.1})
    assert patched.status_code == 200, patched.text
    assert patched.json()["config"]["optimizer"]["learning_rate"] == 0.1
    assert client.get(f"/api/sessions/{sid}").json()["config"]["optimizer"]["learning_rate"] == 0.1

    def lr_event() -> list[dict[str, Any]]:
        events = client.get(f"/api/sessions/{sid}/metrics").json()["events"]
        return [e for e in events if e["type"] == "hyperparameters"]

    event = wait_for(lr_event, what="hyperparameters event")[0]
    assert event["changes"]["learning_rate"] == {"old": 0.03, "new": 0.1}
    wait_for(
        lambda: 0.1 in client.get(f"/api/sessions/{sid}/metrics").json()["learning_rate"],
        what="a report at the new learning rate",
    )

    stopped = client.post(f"/api/sessions/{sid}/stop")
    assert stopped.status_code == 200
    assert stopped.json()["status"] == "paused"
    step = stopped.json()["step"]
    assert client.get(f"/api/sessions/{sid}").json()["step"] == step

    metrics = client.get(f"/api/sessions/{sid}/metrics").json()
    assert metrics["step"] and metrics["step"][-1] == step
    assert set(metrics["layers"]) == {"0", "1"}
    assert len(metrics["layers"]["0"]["grad_norm"]) == len(metrics["step"])
    assert all(v is None or v >= 0 for v in metrics["layers"]["0"]["grad_norm"])
    paged = client.get(
        f"/api/sessions/{sid}/metrics", params={"since": metrics["step"][0], "limit": 2}
    )
    assert paged.json()["step"] == metrics["step"][1:3]

    stepped = client.post(f"/api/sessions/{sid}/step", json={"steps": 37})
    assert stepped.status_code == 200, stepped.text
    assert stepped.json()["step"] == step + 37
    assert stepped.json()["status"] == "paused"
    assert stepped.json()["metrics"]["step"] == step + 37
    one = client.post(f"/api/sessions/{sid}/step", json={"steps": 1}).json()
    assert one["step"] == step + 38

    trace = client.post(
        f"/api/sessions/{sid}/trace", json={"inputs": [[1.0, 2.0], [-3.0, 1.0]], "targets": [1, 0]}
    )
    assert trace.status_code == 200, trace.text
    body = trace.json()
    assert isinstance(body["loss"], float)
    assert [layer["name"] for layer in body["layers"]] == ["0", "1"]
    assert np.asarray(body["layers"][0]["grad_W"]).shape == (2, 4)
    assert client.get(f"/api/sessions/{sid}").json()["step"] == step + 38  # trace changes nothing

    predicted = client.post(f"/api/sessions/{sid}/predict", json={"inputs": [[1, 1], [1, -1]]})
    assert np.asarray(predicted.json()["outputs"]).shape == (2, 1)

    grid = client.get(f"/api/sessions/{sid}/boundary", params={"resolution": 12}).json()
    assert grid["resolution"] == 12
    assert np.asarray(grid["output"]).shape == (12, 12)

    data = client.get(f"/api/sessions/{sid}/data", params={"limit": 5}).json()
    assert data["task"] == "binary" and data["input_kind"] == "2d"
    assert np.asarray(data["train"]["x"]).shape == (5, 2) and len(data["test"]["y"]) == 5

    snapshot = client.get(f"/api/sessions/{sid}/snapshot").json()
    assert snapshot["step"] == step + 38 and "0.W" in snapshot["weights"]

    config = client.get(f"/api/sessions/{sid}/config").json()
    assert config["optimizer"]["learning_rate"] == 0.1
    assert config["layers"] == created["config"]["layers"]

    weights_round_trip(client, sid)

    reset = client.post(f"/api/sessions/{sid}/reset").json()
    assert reset["status"] == "idle" and reset["step"] == 0
    events = client.get(f"/api/sessions/{sid}/metrics").json()
    assert events["step"] == [] and [e["type"] for e in events["events"]] == ["reset"]

    assert client.delete(f"/api/sessions/{sid}").status_code == 204
    assert client.get(f"/api/sessions/{sid}").status_code == 404
    assert sid not in [s["id"] for s in client.get("/api/sessions").json()["sessions"]]


def weights_round_trip(client: httpx.Client, sid: str) -> None:
    """GET -> PUT the same -> GET is unchanged; a wrong shape is a 400 naming the array; the .npz
    download holds the same arrays."""
    weights = client.get(f"/api/sessions/{sid}/weights").json()
    assert set(weights) == {"0.W", "0.b", "1.W", "1.b"}
    assert np.asarray(weights["0.W"]).shape == (2, 4)
    changed = dict(weights, **{"1.b": [0.25]})
    put = client.put(f"/api/sessions/{sid}/weights", json=changed)
    assert put.status_code == 200, put.text
    assert put.json()["names"] == ["0.W", "0.b", "1.W", "1.b"]
    again = client.get(f"/api/sessions/{sid}/weights").json()
    assert again["1.b"] == [0.25]
    assert np.allclose(np.asarray(again["0.W"]), np.asarray(weights["0.W"]))

    bad = dict(weights, **{"0.W": [[0.0] * 4] * 3})
    mismatch = client.put(f"/api/sessions/{sid}/weights", json=bad)
    assert mismatch.status_code == 422
    [problem] = mismatch.json()["errors"]
    assert problem["field"] == "0.W" and "(2, 4)" in problem["message"], problem
    assert "0.W: " in mismatch.json()["detail"]

    download = client.get(f"/api/sessions/{sid}/weights.npz")
    assert download.status_code == 200
    assert "attachment" in download.headers["content-disposition"]
    with np.load(io.BytesIO(download.content), allow_pickle=False) as archive:
        assert sorted(archive.files) == sorted(again)
        assert np.allclose(archive["0.W"], np.asarray(again["0.W"]))
        assert np.allclose(archive["1.b"], [0.25])


def test_inspection_answers_are_the_networks_own_numbers(
    client: httpx.Client, session: dict[str, Any]
) -> None:
    """predict, trace, boundary, snapshot, weights and data against the network written out by
    hand from its own GET /weights (XOR's 2-4-1 tanh, float32 on the server)."""
    from engine.trainer import Trainer

    sid = session["id"]
    assert client.post(f"/api/sessions/{sid}/step", json={"steps": 25}).status_code == 200
    weights = client.get(f"/api/sessions/{sid}/weights").json()
    w = {name: np.asarray(value, dtype=np.float64) for name, value in weights.items()}

    def forward(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        hidden = np.tanh(points @ w["0.W"] + w["0.b"])  # (n, 4)
        return hidden, np.tanh(hidden @ w["1.W"] + w["1.b"])  # (n, 1)

    points = np.array([[1.0, 2.0], [-3.0, 1.0], [0.5, -0.5]])
    hidden, out = forward(points)
    predicted = client.post(f"/api/sessions/{sid}/predict", json={"inputs": points.tolist()})
    np.testing.assert_allclose(predicted.json()["outputs"], out, rtol=1e-5, atol=1e-6)

    traced = client.post(
        f"/api/sessions/{sid}/trace", json={"inputs": points.tolist(), "targets": [1, 0, 1]}
    ).json()
    first, last = traced["layers"]
    targets = np.array([[1.0], [-1.0], [1.0]])  # Playground's -1/+1 for a tanh output with mse
    assert traced["targets"] == targets.tolist()
    assert traced["loss"] == pytest.approx(float(np.mean((out - targets) ** 2)), rel=1e-5)
    np.testing.assert_allclose(first["output"], hidden, rtol=1e-5, atol=1e-6)
    delta_out = 2 * (out - targets) / len(points) * (1 - out**2)  # dL/dz of the output
    delta_hidden = (delta_out @ w["1.W"].T) * (1 - hidden**2)
    np.testing.assert_allclose(last["grad_preactivation"], delta_out, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(last["grad_W"], hidden.T @ delta_out, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(first["grad_W"], points.T @ delta_hidden, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(first["grad_b"], delta_hidden.sum(axis=0), rtol=1e-4, atol=1e-7)

    grid = client.get(f"/api/sessions/{sid}/boundary", params={"resolution": 5}).json()
    gx, gy = np.meshgrid(np.linspace(*grid["x"], 5), np.linspace(*grid["y"], 5))
    plane_hidden, plane_out = forward(np.stack([gx.ravel(), gy.ravel()], axis=1))
    np.testing.assert_allclose(np.ravel(grid["output"]), plane_out[:, 0], atol=6e-5)
    neurons = np.array(grid["neurons"]["0"]).reshape(4, -1).T  # (25, 4)
    np.testing.assert_allclose(neurons, plane_hidden, atol=6e-5)

    snapshot = client.get(f"/api/sessions/{sid}/snapshot").json()
    assert snapshot["step"] == 25
    for name, value in weights.items():  # the same float32 numbers, written two ways
        np.testing.assert_array_equal(
            np.asarray(snapshot["weights"][name], dtype=np.float32),
            np.asarray(value, dtype=np.float32),
            err_msg=name,
        )
    with np.load(
        io.BytesIO(client.get(f"/api/sessions/{sid}/weights.npz").content), allow_pickle=False
    ) as archive:
        for name, value in weights.items():
            assert archive[name].dtype == np.float32
            np.testing.assert_array_equal(archive[name], np.asarray(value, dtype=np.float32))

    data = client.get(f"/api/sessions/{sid}/data", params={"limit": 5}).json()
    dataset = Trainer(client.get(f"/api/sessions/{sid}/config").json()).dataset
    np.testing.assert_array_equal(data["train"]["x"], dataset.x_train[:5])  # the session's data
    np.testing.assert_array_equal(data["train"]["y"], dataset.y_train[:5])
    np.testing.assert_array_equal(data["test"]["x"], dataset.x_test[:5])
    assert data["domain"] == [list(pair) for pair in dataset.domain]


@pytest.mark.parametrize(
    ("config", "field"),
    [
        (
            {"dataset": {"name": "xor"}, "layers": [{"type": "dense", "units": 0}]},
            "layers[0].units",
        ),
        ({"dataset": {"name": "xor"}, "layers": []}, "layers"),
        ({"dataset": {"name": "xor"}, "layers": [{"type": "dense", "units": 1}], "lr": 1}, "lr"),
        ({"layers": [{"type": "dense", "units": 1}]}, "dataset"),
        (
            {
                "dataset": {"name": "xor"},
                "layers": [{"type": "dense", "units": 1}],
                "optimizer": {"learning_rate": -1},
            },
            "optimizer.learning_rate",
        ),
        (
            {
                "dataset": {"name": "spiral"},
                "loss": "cross_entropy",
                "layers": [{"type": "dense", "units": 3, "activation": "softmax"}],
            },
            "layers[0].units",
        ),
        (
            {"dataset": {"name": "no-such-data"}, "layers": [{"type": "dense", "units": 1}]},
            "dataset.name",
        ),
    ],
)
def test_bad_config_is_422_naming_the_field(client: httpx.Client, config: dict, field: str) -> None:
    response = client.post("/api/sessions", json={"config": config})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "validation_error" and body["status"] == 422
    errors = body["errors"]
    assert field in [error["field"] for error in errors], errors
    for error in errors:
        assert set(error) == {"field", "message", "code"}
        assert error["message"] and f"{error['field']}: {error['message']}" in body["detail"]


def test_malformed_bodies_are_422_naming_the_field(
    client: httpx.Client, session: dict[str, Any]
) -> None:
    sid = session["id"]
    no_config = client.post("/api/sessions", json={"name": "x"})
    assert no_config.status_code == 422
    assert no_config.json()["errors"][0]["field"] == "config"
    patch = client.patch(f"/api/sessions/{sid}", json={"learning_rate": -1, "bogus": 1})
    assert patch.status_code == 422
    fields = {e["field"]: (e["message"], e["code"]) for e in patch.json()["errors"]}
    assert fields["learning_rate"] == ("must be a number > 0.0, got -1", "greater_than")
    assert fields["bogus"][1] == "extra_forbidden"
    nesterov = client.patch(f"/api/sessions/{sid}", json={"nesterov": True})  # momentum is 0
    assert nesterov.status_code == 422
    assert nesterov.json()["errors"][0]["field"] == "nesterov"
    steps = client.post(f"/api/sessions/{sid}/step", json={"steps": 0})
    assert steps.status_code == 422
    assert steps.json()["errors"][0]["field"] == "steps"
    too_many = client.post(f"/api/sessions/{sid}/step", json={"steps": 100_001})
    assert too_many.status_code == 422
    resolution = client.get(f"/api/sessions/{sid}/boundary", params={"resolution": "abc"})
    assert resolution.status_code == 422
    assert resolution.json()["errors"][0]["field"] == "resolution"
    not_json = client.post(
        "/api/sessions", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 422 and not_json.json()["code"] == "invalid_json"
    [problem] = not_json.json()["errors"]
    assert problem["field"] == "body" and problem["message"].startswith("is not valid JSON: ")


def test_paced_start_holds_its_pace_and_says_so(client: httpx.Client, session: dict) -> None:
    sid = session["id"]
    # one step every 1,000 s: the first step runs at once, the next one not within this test
    started = client.post(f"/api/sessions/{sid}/start", json={"pace": 0.001})
    assert started.status_code == 200, started.text
    assert started.json()["status"] == "running" and started.json()["pace"] == 0.001
    wait_for(lambda: client.get(f"/api/sessions/{sid}").json()["step"] >= 1, what="step 1")
    listed = {s["id"]: s for s in client.get("/api/sessions").json()["sessions"]}
    assert listed[sid]["pace"] == 0.001
    time.sleep(0.3)  # an unpaced run would do thousands of steps meanwhile
    stopped = client.post(f"/api/sessions/{sid}/stop")  # wakes the waiting trainer
    assert stopped.status_code == 200 and stopped.json()["step"] == 1
    after = client.get(f"/api/sessions/{sid}").json()
    assert after["status"] == "paused" and after["pace"] is None
    full = client.post(f"/api/sessions/{sid}/start")  # no body: full speed, as before
    assert full.status_code == 200 and full.json()["pace"] is None
    wait_for(lambda: client.get(f"/api/sessions/{sid}").json()["step"] > 50, what="full speed")
    client.post(f"/api/sessions/{sid}/stop")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"pace": 0}, "must be a number > 0.0, got 0"),
        ({"pace": -3}, "must be a number > 0.0, got -3"),
        ({"pace": 1e9}, "must be a number <= 100000.0"),
        ({"pace": "500"}, "must be a finite number, got '500'"),
        ({"pace": True}, "must be a finite number, got True"),
        ({"pace": 5, "speed": 1}, "is not a known field"),
    ],
)
def test_bad_pace_is_422_naming_the_field(
    client: httpx.Client, session: dict, body: dict, message: str
) -> None:
    answer = client.post(f"/api/sessions/{session['id']}/start", json=body)
    assert answer.status_code == 422, answer.text
    problem = answer.json()["errors"][0]
    assert problem["field"] in ("pace", "speed") and message in problem["message"]
    assert client.get(f"/api/sessions/{session['id']}").json()["status"] == "idle"


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ("5", "must be an integer, got '5'"),
        (True, "must be an integer, got True"),
        (5.0, "must be an integer, got 5.0"),
        (0, "must be an integer >= 1, got 0"),
    ],
)
def test_step_takes_a_json_integer_only_as_the_websocket_does(
    client: httpx.Client, session: dict, steps: Any, message: str
) -> None:
    answer = client.post(f"/api/sessions/{session['id']}/step", json={"steps": steps})
    assert answer.status_code == 422, answer.text
    problem = answer.json()["errors"][0]
    assert problem["field"] == "steps" and message in problem["message"]
    assert client.get(f"/api/sessions/{session['id']}").json()["step"] == 0
    assert client.post(f"/api/sessions/{session['id']}/step", json={"steps": 5}).json()["step"] == 5


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", ""),
        ("PATCH", ""),
        ("DELETE", ""),
        ("POST", "/start"),
        ("POST", "/stop"),
        ("POST", "/step"),
        ("POST", "/reset"),
        ("GET", "/metrics"),
        ("POST", "/trace"),
        ("POST", "/predict"),
        ("GET", "/boundary"),
        ("GET", "/data"),
        ("GET", "/weights"),
        ("PUT", "/weights"),
        ("GET", "/weights.npz"),
        ("GET", "/config"),
        ("GET", "/snapshot"),
    ],
)
def test_unknown_session_is_404(client: httpx.Client, method: str, path: str) -> None:
    bodies = {
        "/trace": {"inputs": [[0, 0]], "targets": [0]},
        "/predict": {"inputs": [[0, 0]]},
        "/step": {"steps": 1},
        "/weights": {},
        "": {},
    }
    body = bodies.get(path) if method in ("POST", "PATCH", "PUT") else None
    response = client.request(method, f"/api/sessions/no-such-id{path}", json=body)
    assert response.status_code == 404, (method, path, response.text)
    assert "no-such-id" in response.json()["detail"]
    assert response.json()["code"] == "not_found"


def test_inputs_that_do_not_fit_the_network_are_422_naming_the_field(
    client: httpx.Client, session: dict[str, Any]
) -> None:
    sid = session["id"]
    trace = client.post(f"/api/sessions/{sid}/trace", json={"inputs": [[1, 2, 3]], "targets": [1]})
    assert trace.status_code == 422
    assert [e["field"] for e in trace.json()["errors"]] == ["inputs"]
    predict = client.post(f"/api/sessions/{sid}/predict", json={"inputs": [["a", "b"]]})
    assert predict.status_code == 422
    assert [e["field"] for e in predict.json()["errors"]] == ["inputs"]
    shape = client.post(f"/api/sessions/{sid}/predict", json={"inputs": [[1.0, 2.0, 3.0]]})
    assert shape.status_code == 422, shape.text
    [problem] = shape.json()["errors"]
    assert problem["field"] == "inputs" and "[2]" in problem["message"], problem
    unknown = client.put(f"/api/sessions/{sid}/weights", json={"9.W": [[1.0]]})
    assert unknown.status_code == 422
    assert "9.W" in [e["field"] for e in unknown.json()["errors"]]


def test_boundary_is_400_for_data_that_is_not_2d(client: httpx.Client) -> None:
    created = create(client, SINE)
    try:
        response = client.get(f"/api/sessions/{created['id']}/boundary")
        assert response.status_code == 400
        assert response.json()["detail"]
        data = client.get(f"/api/sessions/{created['id']}/data").json()
        assert data["input_kind"] == "1d" and data["task"] == "regression"
        assert isinstance(data["train"]["y"][0], float)
    finally:
        client.delete(f"/api/sessions/{created['id']}")


def test_weights_put_is_409_while_running(client: httpx.Client, session: dict[str, Any]) -> None:
    sid = session["id"]
    weights = client.get(f"/api/sessions/{sid}/weights").json()
    assert client.post(f"/api/sessions/{sid}/start").status_code == 200
    assert client.put(f"/api/sessions/{sid}/weights", json=weights).status_code == 409
    # reading works while running: the call runs between two steps in the training thread
    assert set(client.get(f"/api/sessions/{sid}/weights").json()) == set(weights)
    assert (
        client.post(
            f"/api/sessions/{sid}/trace", json={"inputs": [[0, 1]], "targets": [1]}
        ).status_code
        == 200
    )
    reset = client.post(f"/api/sessions/{sid}/reset")  # stops first
    assert reset.status_code == 200 and reset.json()["status"] == "idle"


def _csv_upload(client: httpx.Client, value: float) -> httpx.Response:
    """A 2-D CSV upload whose points sit at +-value."""
    rows = "\n".join(
        f"{value * (-1) ** i:g},{value * (-1) ** (i // 3):g},{i % 2}" for i in range(40)
    )
    return client.post(
        "/api/datasets/upload",
        files={"file": ("far.csv", f"a,b,label\n{rows}\n".encode(), "text/csv")},
        data={"target": "label"},
    )


def test_data_that_overflows_is_refused_on_upload_and_snapshots_keep_working(
    client: httpx.Client,
) -> None:
    # finite, but infinite in float32 training and in the span of the decision grid
    refused = _csv_upload(client, 1e308)
    assert refused.status_code == 422, refused.text
    problem = refused.json()["errors"][0]
    assert problem["field"] == "file"
    assert "inputs X within +-3.4e+38 (float32), got 1e+308" in problem["message"]
    edge = _csv_upload(client, 3.4e38)  # the largest accepted
    assert edge.status_code == 201, edge.text
    layers = [{"type": "dense", "units": 3}, {"type": "dense", "units": 1}]
    sid = create(client, {"dataset": {"name": edge.json()["name"]}, "layers": layers})["id"]
    try:
        for _ in range(2):  # before and after training on it
            for path in ("snapshot", "boundary?resolution=20"):
                answer = client.get(f"/api/sessions/{sid}/{path}")
                assert answer.status_code == 200, (path, answer.text[:300])
            assert client.post(f"/api/sessions/{sid}/step", json={"steps": 3}).status_code == 200
    finally:
        client.delete(f"/api/sessions/{sid}")


def test_upload_csv_then_train_on_it(client: httpx.Client) -> None:
    rng = np.random.default_rng(0)
    points = rng.uniform(-1, 1, (60, 2))
    rows = "\n".join(f"{a:.4f},{b:.4f},{int(a * b > 0)}" for a, b in points)
    csv = f"a,b,label\n{rows}\n".encode()
    upload = client.post(
        "/api/datasets/upload",
        files={"file": ("quad.csv", csv, "text/csv")},
        data={"target": "label"},
    )
    assert upload.status_code == 201, upload.text
    info = upload.json()
    assert info["name"] == f"upload:{info['id']}"
    assert (info["rows"], info["columns"], info["task"], info["num_classes"]) == (
        60,
        2,
        "binary",
        2,
    )
    config = {
        "dataset": {"name": info["name"]},
        "layers": [{"type": "dense", "units": 3}, {"type": "dense", "units": 1}],
    }
    created = create(client, config)
    try:
        assert (
            client.post(f"/api/sessions/{created['id']}/step", json={"steps": 3}).json()["step"]
            == 3
        )
    finally:
        client.delete(f"/api/sessions/{created['id']}")
    bad = client.post("/api/datasets/upload", files={"file": ("x.csv", b"a,b\n1,zz\n", "text/csv")})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "file"
    missing = client.post(
        "/api/datasets/upload", files={"file": ("y.csv", csv, "text/csv")}, data={"target": "nope"}
    )
    assert missing.status_code == 422
    assert [e["field"] for e in missing.json()["errors"]] == ["target"]
    absent = client.post("/api/datasets/upload", data={"target": "y"})
    assert absent.status_code == 422
    assert [e["field"] for e in absent.json()["errors"]] == ["file"]


def test_catalogue_endpoints(client: httpx.Client) -> None:
    datasets = client.get("/api/datasets").json()["datasets"]
    assert {"xor", "spiral", "sine"} <= {d["name"] for d in datasets}
    assert isinstance(client.get("/api/presets").json()["presets"], list)


def test_openapi_documents_every_route_with_a_summary(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/api/sessions",
        "/api/sessions/{session_id}",
        "/api/sessions/{session_id}/step",
        "/api/sessions/{session_id}/metrics",
        "/api/sessions/{session_id}/weights.npz",
        "/api/datasets/upload",
    ):
        assert path in paths, path
    for path, operations in paths.items():
        for method, operation in operations.items():
            assert operation.get("summary"), (method, path)
            assert (
                "200" in operation["responses"]
                or "201" in operation["responses"]
                or "204" in operation["responses"]
            )
    assert "SessionPublic" in spec["components"]["schemas"]
    assert "RunConfig" in spec["components"]["schemas"]


def test_training_cap_is_429(tmp_path: Path) -> None:
    live = LiveServer(tmp_path / "data", ["--max-training", "1"]).start()
    try:
        with httpx.Client(base_url=live.url, timeout=30.0) as http:
            first, second = create(http)["id"], create(http)["id"]
            assert http.post(f"/api/sessions/{first}/start").status_code == 200
            refused = http.post(f"/api/sessions/{second}/start")
            assert refused.status_code == 429
            assert "--max-training 1" in refused.json()["detail"]
            assert refused.json()["code"] == "too_many_training"
            assert http.post(f"/api/sessions/{second}/step", json={"steps": 1}).status_code == 429
            assert http.post(f"/api/sessions/{first}/stop").status_code == 200
            assert http.post(f"/api/sessions/{second}/start").status_code == 200
            assert http.post(f"/api/sessions/{first}/start").status_code == 429
            assert http.post(f"/api/sessions/{second}/stop").json()["status"] == "paused"
    finally:
        live.stop()
