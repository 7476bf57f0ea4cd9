"""Exact results and a usable history over real HTTP (issue 17, items 1 and 2).

A synchronous POST .../step ends with an evaluation at its last step, so the same config, seed
and steps give the same numbers in every fresh session, and the numbers of an engine run of the
same length; POST .../evaluate evaluates at the current step, also while the session trains.
The history keeps a row at every multiple of a round step interval of a step call, and
/metrics filters it by step (`since`, `every`) and from the end (`tail`); rows and frames carry
eval_step, batch_size and an ISO 8601 UTC time, and keep them through a restart, also in a
database written before these columns existed."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from engine.trainer import Trainer
from server.store import DB_NAME
from tests.support import LiveServer

# dropout draws masks from the seed's generator and batch norm keeps running statistics: both
# would show a trajectory that depends on when the server reports or evaluates
CIRCLE: dict[str, Any] = {
    "seed": 7,
    "dataset": {"name": "circle", "samples": 300, "noise": 0.2},
    "layers": [
        {"type": "dense", "units": 8, "activation": "relu"},
        {"type": "batchnorm"},
        {"type": "dropout", "rate": 0.2},
        {"type": "dense", "units": 1, "activation": "tanh"},
    ],
    "optimizer": {"name": "sgd", "learning_rate": 0.3},
    "batch_size": 12,
}
XOR: dict[str, Any] = {
    "seed": 1,
    "dataset": {"name": "xor", "samples": 200},
    "layers": [{"type": "dense", "units": 4}, {"type": "dense", "units": 1}],
    "batch_size": 8,
}
EVALUATED = ("loss", "accuracy", "test_loss", "test_accuracy")


def create(client: httpx.Client, config: dict[str, Any]) -> str:
    response = client.post("/api/sessions", json={"config": config})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def step(client: httpx.Client, sid: str, steps: int) -> dict[str, Any]:
    response = client.post(f"/api/sessions/{sid}/step", json={"steps": steps})
    assert response.status_code == 200, response.text
    return dict(response.json())


def engine_run(config: dict[str, Any], steps: int) -> dict[str, float | None]:
    """An independent run in this process: `steps` steps, then an evaluation."""
    trainer = Trainer(config)
    trainer.train(steps)
    return trainer.evaluate()


@pytest.fixture
def sessions(client: httpx.Client) -> Iterator[list[str]]:
    """Session ids a test creates; stopped and deleted afterwards."""
    made: list[str] = []
    yield made
    for sid in made:
        client.post(f"/api/sessions/{sid}/stop")
        client.delete(f"/api/sessions/{sid}")


def test_same_config_seed_and_steps_give_identical_numbers_evaluated_at_the_last_step(
    client: httpx.Client, sessions: list[str]
) -> None:
    answers = []
    for _ in range(3):
        sessions.append(create(client, CIRCLE))
        answers.append(step(client, sessions[-1], 1500))
    truth = engine_run(CIRCLE, 1500)
    for answer in answers:
        metrics = answer["metrics"]
        assert answer["step"] == metrics["step"] == metrics["eval_step"] == 1500
        # exact: the same arithmetic in the same order, whenever the server reported
        assert {key: metrics[key] for key in EVALUATED} == truth
    # a different seed is a different run: the equality above is not of constants
    sessions.append(create(client, {**CIRCLE, "seed": 8}))
    other = step(client, sessions[-1], 1500)["metrics"]
    assert other["test_loss"] != truth["test_loss"]


def test_the_answer_and_evaluate_give_the_test_accuracy_of_the_last_step(
    client: httpx.Client, sessions: list[str]
) -> None:
    sessions.append(sid := create(client, CIRCLE))
    metrics = step(client, sid, 700)["metrics"]
    # right after an evaluation the budget would skip the next one: +1 must still be exact
    metrics = step(client, sid, 1)["metrics"]
    assert metrics["step"] == metrics["eval_step"] == 701
    truth = engine_run(CIRCLE, 701)
    assert metrics["test_accuracy"] == truth["test_accuracy"]
    assert metrics["test_loss"] == truth["test_loss"]
    both = client.post(f"/api/sessions/{sid}/evaluate", json={"split": "both"})
    assert both.status_code == 200, both.text
    assert both.json() == {
        "step": 701,
        "train": {"loss": truth["loss"], "accuracy": truth["accuracy"]},
        "test": {"loss": truth["test_loss"], "accuracy": truth["test_accuracy"]},
    }
    assert client.post(f"/api/sessions/{sid}/evaluate").json() == both.json()  # no body: both
    test_only = client.post(f"/api/sessions/{sid}/evaluate", json={"split": "test"}).json()
    assert test_only == {"step": 701, "train": None, "test": both.json()["test"]}
    train_only = client.post(f"/api/sessions/{sid}/evaluate", json={"split": "train"}).json()
    assert train_only == {"step": 701, "train": both.json()["train"], "test": None}
    # evaluating changed nothing: the next steps are the engine's
    assert step(client, sid, 9)["metrics"]["test_loss"] == engine_run(CIRCLE, 710)["test_loss"]


def test_evaluate_while_training_is_at_one_step(client: httpx.Client, sessions: list[str]) -> None:
    sessions.append(sid := create(client, XOR))
    started = client.post(f"/api/sessions/{sid}/start", json={"pace": 400})
    assert started.status_code == 200, started.text
    answers = []
    for _ in range(3):
        time.sleep(0.1)
        answer = client.post(f"/api/sessions/{sid}/evaluate")
        assert answer.status_code == 200, answer.text
        answers.append(answer.json())
    client.post(f"/api/sessions/{sid}/stop")
    steps = [answer["step"] for answer in answers]
    assert steps == sorted(steps) and steps[-1] > 0
    for answer in answers:  # the weights of exactly that step, not of a step half-applied
        truth = engine_run(XOR, answer["step"])
        assert answer["test"] == {"loss": truth["test_loss"], "accuracy": truth["test_accuracy"]}


def test_evaluate_refuses_an_unknown_split_and_session(client: httpx.Client) -> None:
    sid = create(client, XOR)
    try:
        bad = client.post(f"/api/sessions/{sid}/evaluate", json={"split": "all"})
        assert bad.status_code == 422
        assert "split" in bad.text
        missing = client.post("/api/sessions/nope/evaluate")
        assert missing.status_code == 404
    finally:
        client.delete(f"/api/sessions/{sid}")


def test_a_step_call_records_rows_on_its_interval_and_metrics_filters_them(
    client: httpx.Client, sessions: list[str]
) -> None:
    sessions.append(sid := create(client, XOR))
    before = datetime.now(UTC)
    assert step(client, sid, 5000)["step"] == 5000
    after = datetime.now(UTC)
    full = client.get(f"/api/sessions/{sid}/metrics").json()
    steps = full["step"]
    # a row at every multiple of 10 (5,000 steps: at most 500 rows by step), perhaps a few more
    # by time on a busy machine, and never 6 rows for 5,000 steps again
    assert set(range(10, 5001, 10)) <= set(steps)
    assert steps == sorted(set(steps))
    assert full["eval_step"][-1] == 5000
    assert all(e is not None and e <= s for e, s in zip(full["eval_step"], steps, strict=True))
    assert set(full["batch_size"]) == {8}
    times = [datetime.fromisoformat(t.replace("Z", "+00:00")) for t in full["time"]]
    assert all(t.endswith("Z") and len(t) == 24 for t in full["time"])
    assert times == sorted(times)
    assert before.replace(microsecond=before.microsecond // 1000 * 1000) <= times[0]
    assert times[-1] <= after

    def metrics(**params: Any) -> dict[str, Any]:
        response = client.get(f"/api/sessions/{sid}/metrics", params=params)
        assert response.status_code == 200, response.text
        return dict(response.json())

    assert metrics(every=100)["step"] == list(range(100, 5001, 100))
    latest = metrics(limit=3, tail="true")
    assert latest["step"] == steps[-3:]
    assert latest["time"] == full["time"][-3:] and latest["loss"] == full["loss"][-3:]
    assert metrics(limit=3, tail="false")["step"] == steps[:3]
    assert metrics(limit=3)["step"] == steps[:3]  # the first N, as before
    assert metrics(since=4000, limit=2)["step"] == [s for s in steps if s > 4000][:2]
    assert metrics(since=4000, every=500)["step"] == [4500, 5000]
    assert metrics(every=1000, limit=2, tail="true")["step"] == [4000, 5000]
    for params, field in (({"every": 0}, "every"), ({"tail": "maybe"}, "tail")):
        refused = client.get(f"/api/sessions/{sid}/metrics", params=params)
        assert refused.status_code == 422 and field in refused.text


def test_metrics_frames_carry_eval_step_batch_size_and_both_clocks(
    shared_server: LiveServer, client: httpx.Client, sessions: list[str]
) -> None:
    sessions.append(sid := create(client, XOR))
    url = f"{shared_server.ws_url}/ws/sessions/{sid}"
    with connect(url, max_size=None, proxy=None, open_timeout=10) as ws:
        hello = json.loads(ws.recv(timeout=10))
        assert hello["type"] == "hello" and hello["history"]["eval_step"] == []
        sent = time.monotonic()
        wall = datetime.now(UTC).replace(microsecond=0)
        step(client, sid, 300)
        frame: dict[str, Any] = {}
        deadline = time.monotonic() + 15
        while frame.get("step") != 300 and time.monotonic() < deadline:  # latest wins
            received = json.loads(ws.recv(timeout=10))
            if received["type"] == "metrics":
                frame = received
    assert frame["step"] == frame["eval_step"] == 300 and frame["batch_size"] == 8
    assert sent <= frame["t"] <= time.monotonic()  # the monotonic clock, as before
    stamp = datetime.fromisoformat(frame["time"].replace("Z", "+00:00"))
    assert frame["time"].endswith("Z") and wall <= stamp <= datetime.now(UTC)
    last = client.get(f"/api/sessions/{sid}/metrics", params={"limit": 1, "tail": "true"}).json()
    assert (last["step"], last["time"]) == ([300], [frame["time"]])  # the frame is the row


def test_new_columns_survive_a_restart_and_an_older_database_opens(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        sid = create(client, XOR)
        step(client, sid, 200)
        client.patch(f"/api/sessions/{sid}", json={"batch_size": 4}).raise_for_status()
        step(client, sid, 100)
        before = client.get(f"/api/sessions/{sid}/metrics").json()
    assert before["batch_size"][0] == 8 and before["batch_size"][-1] == 4
    assert before["step"][-1] == 300 and before["eval_step"][-1] == 300

    server.stop()
    server.start()
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        assert client.get(f"/api/sessions/{sid}/metrics").json() == before

    # the rows as a version before these columns wrote them: the same JSON without the keys
    server.stop()
    with sqlite3.connect(server.data_dir / DB_NAME) as db:
        db.execute(
            "UPDATE metrics SET row_json = json_remove(row_json, '$.eval_step',"
            " '$.batch_size', '$.time', '$.steps_per_second')"
        )
    server.start()
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        old = client.get(f"/api/sessions/{sid}/metrics").json()
        assert old["step"] == before["step"] and old["loss"] == before["loss"]
        n = len(old["step"])
        assert old["eval_step"] == old["batch_size"] == old["time"] == [None] * n
        assert step(client, sid, 10)["metrics"]["eval_step"] == 310  # and it trains on
        new = client.get(f"/api/sessions/{sid}/metrics", params={"since": 300}).json()
    assert new["step"] == list(range(301, 311)) and new["batch_size"] == [4] * 10
    assert None not in new["time"] and new["eval_step"][-1] == 310


def test_patch_answers_the_step_its_hyperparameters_applied_at(
    client: httpx.Client, sessions: list[str]
) -> None:
    sid = create(client, XOR)
    sessions.append(sid)
    step(client, sid, 7)
    changed = client.patch(f"/api/sessions/{sid}", json={"learning_rate": 0.2}).json()
    assert changed["applied_at_step"] == 7
    client.post(f"/api/sessions/{sid}/start", json={"pace": 300})
    try:
        while client.get(f"/api/sessions/{sid}").json()["step"] < 20:
            time.sleep(0.02)
        # while training the session document lags the trainer; the answer says where it applied
        applied = client.patch(f"/api/sessions/{sid}", json={"learning_rate": 0.3}).json()
    finally:
        stopped = client.post(f"/api/sessions/{sid}/stop").json()["step"]
    assert 20 <= applied["applied_at_step"] <= stopped
    events = client.get(f"/api/sessions/{sid}/metrics").json()["events"]
    steps = [e["step"] for e in events if e["type"] == "hyperparameters"]
    assert steps == [7, applied["applied_at_step"]]
    renamed = client.patch(f"/api/sessions/{sid}", json={"name": "renamed"}).json()
    assert renamed["applied_at_step"] is None and renamed["name"] == "renamed"
