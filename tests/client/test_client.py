"""backprop_lens.Client against a real server (issue 17 item 7): every answer compared with what
the REST API says directly, or with a run made another way (values, not shapes)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from backprop_lens import (
    Client,
    ConfigError,
    NotFound,
    Session,
)
from backprop_lens.frames import EventFrame, HelloFrame, MetricsFrame, SnapshotFrame, StatusFrame
from tests.support import LiveServer

XOR: dict[str, Any] = {
    "seed": 3,
    "dataset": {"name": "xor", "samples": 200, "noise": 0.1},
    "layers": [
        {"type": "dense", "units": 6, "activation": "tanh"},
        {"type": "dense", "units": 1, "activation": "tanh"},
    ],
    "optimizer": {"name": "sgd", "learning_rate": 0.05},
    "batch_size": 8,
}
EVALUATED = ("loss", "accuracy", "test_loss", "test_accuracy")


@pytest.fixture
def api(shared_server: LiveServer) -> Iterator[Client]:
    with Client(shared_server.url) as client:
        yield client


def wait_for(condition: Any, what: str, timeout: float = 30.0) -> None:
    """Poll until condition() holds (a wait for the server, not a measured threshold)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_train_answers_the_evaluation_at_its_last_step(api: Client, client: httpx.Client) -> None:
    session = api.create_session(XOR, name="exact")
    assert session.name == "exact"
    result = session.train(120)
    assert (result.step, result.status) == (120, "paused")
    assert result.metrics is not None and result.metrics.eval_step == 120
    direct = client.post(f"/api/sessions/{session.id}/evaluate", json={"split": "both"}).json()
    assert direct["step"] == 120
    assert result.metrics.loss == direct["train"]["loss"]
    assert result.metrics.accuracy == direct["train"]["accuracy"]
    assert result.metrics.test_loss == direct["test"]["loss"]
    assert result.metrics.test_accuracy == direct["test"]["accuracy"]
    assert result.metrics.learning_rate == 0.05 and result.metrics.batch_size == 8
    evaluation = session.evaluate()
    assert evaluation.step == 120
    assert (evaluation.train.loss, evaluation.test.accuracy) == (  # type: ignore[union-attr]
        direct["train"]["loss"],
        direct["test"]["accuracy"],
    )
    only_test = session.evaluate("test")
    assert only_test.train is None and only_test.test == evaluation.test
    # the same config, seed and steps in a fresh session: the same numbers
    again = api.create_session(XOR).train(120)
    assert again.metrics is not None
    for key in EVALUATED:
        assert getattr(again.metrics, key) == getattr(result.metrics, key), key


def test_history_queries_match_the_metrics_route(api: Client, client: httpx.Client) -> None:
    session = api.create_session(XOR)
    session.train(40)  # a row at every step (interval 1 up to 500 steps)
    raw = client.get(f"/api/sessions/{session.id}/metrics").json()
    history = session.history()
    assert history.steps == raw["step"] == list(range(1, 41))
    assert history.columns["loss"] == raw["loss"]
    assert history.layers["1"]["grad_norm"] == raw["layers"]["1"]["grad_norm"]
    assert session.history(since=30).steps == list(range(31, 41))
    assert session.history(limit=3).steps == [1, 2, 3]
    assert session.history(limit=3, tail=True).steps == [38, 39, 40]
    assert session.history(every=10).steps == [10, 20, 30, 40]
    assert session.history(since=15, every=5, limit=2).steps == [20, 25]
    rows = history.rows()
    assert len(rows) == 40
    assert rows[6]["step"] == 7 and rows[6]["loss"] == raw["loss"][6]
    assert rows[6]["0.grad_norm"] == raw["layers"]["0"]["grad_norm"][6]
    assert rows[-1]["time"] == raw["time"][-1] and rows[-1]["eval_step"] == 40


def test_history_as_dataframe_without_pandas_says_how_to_get_it(
    api: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = api.create_session(XOR)
    monkeypatch.setitem(__import__("sys").modules, "pandas", None)  # import pandas fails
    with pytest.raises(ImportError, match=r"needs pandas.*pip install pandas"):
        session.history(as_dataframe=True)


def test_history_as_dataframe_hands_pandas_the_rows(
    api: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pandas is not installed here: a stand-in module records what DataFrame was given. It
    checks the client's part (one flat dict per row), not pandas."""
    import sys
    import types

    given: list[Any] = []
    fake = types.ModuleType("pandas")
    fake.DataFrame = lambda rows: given.append(rows) or "frame"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pandas", fake)
    session = api.create_session(XOR)
    session.train(5)
    assert session.history(every=2, as_dataframe=True) == "frame"
    assert given == [session.history(every=2).rows()]
    assert [row["step"] for row in given[0]] == [2, 4]


def test_history_as_dataframe_with_real_pandas(api: Client) -> None:
    pandas = pytest.importorskip("pandas", reason="pandas is optional (the test extra installs it)")
    session = api.create_session(XOR)
    session.train(5)
    frame = session.history(as_dataframe=True)
    assert isinstance(frame, pandas.DataFrame)
    assert list(frame["step"]) == [1, 2, 3, 4, 5]
    assert list(frame["0.grad_norm"]) == session.history().layers["0"]["grad_norm"]


def test_update_answers_the_step_it_took_effect(api: Client) -> None:
    session = api.create_session({**XOR, "optimizer": {"name": "sgd", "learning_rate": 0.01}})
    session.start(pace=300)
    try:
        wait_for(lambda: len(session.history(tail=True, limit=1)) > 0, "a first row")
        applied = session.update(learning_rate=0.2)
        wait_for(lambda: session.history(tail=True, limit=1).steps[-1] > applied + 5, "more steps")
    finally:
        stopped = session.stop()
    assert stopped > applied > 0
    history = session.history()
    events = [e for e in history.events if e["type"] == "hyperparameters"]
    assert [e["step"] for e in events] == [applied]
    assert events[0]["changes"]["learning_rate"] == {"old": 0.01, "new": 0.2}
    # a row reports the rate of the next update: the old one up to the step it applied at
    rates = dict(zip(history.steps, history.columns["learning_rate"], strict=True))
    assert {rate for step, rate in rates.items() if step <= applied} == {0.01}
    assert {rate for step, rate in rates.items() if step > applied} == {0.2}
    assert session.config["optimizer"]["learning_rate"] == 0.2
    assert session.update(batch_size=4) == stopped  # idle: it applies at the step it is at


def test_weights_in_both_layouts_and_back(api: Client, client: httpx.Client) -> None:
    session = api.create_session(XOR)
    session.train(10)
    engine = session.get_weights()
    direct = client.get(f"/api/sessions/{session.id}/weights").json()
    assert sorted(engine) == sorted(direct) == ["0.W", "0.b", "1.W", "1.b"]
    for name, values in direct.items():  # float32 numbers, exactly as JSON gives them
        assert engine[name].dtype == np.float32
        assert np.array_equal(engine[name], np.asarray(values, dtype=np.float32)), name
    torch = session.get_weights(layout="torch")
    assert sorted(torch) == ["0.bias", "0.weight", "1.bias", "1.weight"]
    assert np.array_equal(torch["0.weight"], engine["0.W"].T)
    assert np.array_equal(torch["1.weight"], engine["1.W"].T)
    assert np.array_equal(torch["1.bias"], engine["1.b"])
    # PyTorch's layout back in: the engine sees the transpose
    new = {name: value * 0.5 + 0.25 for name, value in torch.items()}
    assert sorted(session.set_weights(new, layout="torch")) == ["0.W", "0.b", "1.W", "1.b"]
    after = session.get_weights()
    assert np.array_equal(after["0.W"], new["0.weight"].T)
    assert np.array_equal(after["1.b"], new["1.bias"])
    # engine layout, one array: its outputs are what a NumPy forward pass gives
    session.set_weights({**after, "1.b": np.array([0.75])})
    inputs = np.array([[0.5, -1.0], [2.0, 0.25]])
    weights = session.get_weights()
    assert weights["1.b"].tolist() == [0.75]
    hidden = np.tanh(inputs @ weights["0.W"] + weights["0.b"])
    expected = np.tanh(hidden @ weights["1.W"] + weights["1.b"])
    np.testing.assert_allclose(session.predict(inputs), expected, rtol=1e-6)
    with pytest.raises(ConfigError) as refused:
        session.set_weights({**after, "0.W": np.zeros((3, 6))})
    assert refused.value.field == "0.W" and "(2, 6)" in refused.value.message
    with pytest.raises(ValueError, match="layout"):
        session.get_weights(layout="keras")


def test_sweep_equals_the_runs_made_one_by_one(api: Client) -> None:
    rates = [0.01, 0.1, 0.5]
    results = api.sweep(XOR, "optimizer.learning_rate", rates, steps=60, name="lr")
    assert [r.value for r in results] == rates
    for swept in results:
        session = api.get_session(swept.session_id)
        assert session.config["optimizer"]["learning_rate"] == swept.value
        assert session.name == f"lr optimizer.learning_rate={swept.value}"
        config = {**XOR, "optimizer": {"name": "sgd", "learning_rate": swept.value}}
        alone = api.create_session(config).train(60)
        assert swept.result.step == alone.step == 60
        assert swept.result.metrics is not None and alone.metrics is not None
        for key in EVALUATED:
            assert getattr(swept.result.metrics, key) == getattr(alone.metrics, key), key
    losses = {r.value: r.result.metrics.loss for r in results}  # type: ignore[union-attr]
    assert len(set(losses.values())) == 3  # the rate did reach each run
    # a list index in the path, and keep=False deletes the sessions
    units = api.sweep(XOR, "layers[0].units", [2, 3], steps=1, keep=False)
    for swept in units:
        with pytest.raises(NotFound):
            api.get_session(swept.session_id)
    with pytest.raises(ValueError, match="param"):
        api.sweep(XOR, "layers[x]", [1], steps=1)


def test_sessions_follows_every_page(api: Client, client: httpx.Client) -> None:
    for i in range(5):
        api.create_session(XOR, name=f"page {i}")
    everything = client.get("/api/sessions", params={"limit": 1000}).json()
    assert everything["next_cursor"] is None
    listed = list(api.sessions(page_size=2))
    assert [s.id for s in listed] == [s["id"] for s in everything["sessions"]]
    assert all(isinstance(s, Session) for s in listed)
    light = next(api.sessions(configs=False, page_size=1))
    assert "config" not in light.info and light.id == everything["sessions"][0]["id"]


def test_stream_gives_typed_frames_of_the_training(api: Client) -> None:
    session = api.create_session(XOR)
    with session.stream(types=["hello", "metrics", "event"], timeout=30) as stream:
        hello = next(stream)
        assert isinstance(hello, HelloFrame) and hello.session["id"] == session.id
        assert hello.config["optimizer"]["learning_rate"] == 0.05
        stream.send_command("step", steps=25)
        last = next(f for f in stream if isinstance(f, MetricsFrame) and f.step == 25)
        session.update(learning_rate=0.07)
        event = next(f for f in stream if isinstance(f, EventFrame))
    evaluation = session.evaluate()
    assert last.eval_step == 25
    assert (last.loss, last.test_accuracy) == (evaluation.train.loss, evaluation.test.accuracy)  # type: ignore[union-attr]
    row = session.history(since=24)
    assert [layer.name for layer in last.layers] == ["0", "1"]
    assert last.layers[0].grad_norm == row.layers["0"]["grad_norm"][0]
    assert last.learning_rate == 0.05 and last.time == row.columns["time"][0]
    assert (event.kind, event.step) == ("hyperparameters", 25)
    assert event.event["changes"]["learning_rate"]["new"] == 0.07
    with pytest.raises(ValueError, match="unknown frame types"):
        session.stream(types=["metric"])


def test_stream_ends_when_the_session_is_deleted(api: Client) -> None:
    session = api.create_session(XOR)
    with session.stream(types=["metrics"], timeout=30) as stream:
        threading.Timer(0.2, session.delete).start()
        assert list(stream) == []  # closed with 4404: the iteration ends
    with pytest.raises(NotFound) as missing:
        session.refresh()
    assert missing.value.code == "not_found" and session.id in missing.value.detail
    with session.stream() as stream, pytest.raises(NotFound) as unknown:
        list(stream)  # the server's error frame, then close 4404 before any hello
    assert session.id in unknown.value.detail


def test_upload_arrays_and_csv(api: Client, client: httpx.Client, tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    X = rng.normal(size=(60, 3))
    y = (X[:, 0] + X[:, 2] > 0).astype(int)
    upload = api.upload_dataset(X, y)
    assert (upload.rows, upload.columns, upload.num_classes) == (60, 3, 2)
    assert upload.name == f"upload:{upload.id}"
    listed = {entry["id"]: entry for entry in api.uploads()}
    assert listed[upload.id]["rows"] == 60
    config = {
        "seed": 0,
        "dataset": {"name": upload.name, "test_fraction": 0.25},
        "layers": [{"type": "dense", "units": 1, "activation": "sigmoid"}],
        "loss": "bce",
    }
    session = api.create_session(config)
    data = client.get(f"/api/sessions/{session.id}/data").json()
    sent = {tuple(row): label for row, label in zip(X.tolist(), y.tolist(), strict=True)}
    got = data["train"]["x"] + data["test"]["x"]
    labels = data["train"]["y"] + data["test"]["y"]
    assert len(got) == 60
    assert all(sent[tuple(row)] == label for row, label in zip(got, labels, strict=True))
    csv = tmp_path / "points.csv"
    csv.write_text("a,label,b\n1,0,2\n3,1,4\n5,0,6\n7,1,8\n")
    from_file = api.upload_dataset(path=csv, target="label")
    assert (from_file.rows, from_file.columns) == (4, 2)
    assert {e["id"]: e for e in api.uploads()}[from_file.id]["columns"] == ["a", "b"]
    with pytest.raises(ConfigError) as refused:
        api.upload_dataset(path=csv, target="nope")
    assert refused.value.field == "target" and "nope" in refused.value.message
    api.delete_upload(from_file.id)
    assert from_file.id not in {e["id"] for e in api.uploads()}
    with pytest.raises(TypeError):
        api.upload_dataset(X, y, path=csv)


def test_stream_snapshot_and_status_frames(api: Client) -> None:
    session = api.create_session(XOR)
    weights = session.get_weights()
    new = {name: value + np.float32(0.5) for name, value in weights.items()}
    with session.stream(types=["hello", "snapshot", "status"], timeout=30) as stream:
        assert isinstance(next(stream), HelloFrame)  # subscribed: what follows reaches us
        session.set_weights(new)
        snapshot = next(f for f in stream if isinstance(f, SnapshotFrame))
        session.start(pace=50)
        running = next(f for f in stream if isinstance(f, StatusFrame))
        session.stop()
        paused = next(f for f in stream if isinstance(f, StatusFrame) and f.status != "running")
    assert snapshot.step == 0
    for name, value in new.items():
        assert np.array_equal(np.asarray(snapshot.weights[name], dtype=np.float32), value), name
    assert (running.status, running.session["id"]) == ("running", session.id)
    assert paused.status == "paused" and paused.step == session.refresh()["step"]
