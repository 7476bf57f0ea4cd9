"""Sessions over time under a real server: idle ones are unloaded from memory and rebuilt from
the store exactly as they were, the loaded ones are held within a server-wide memory budget
(engine/cost.py's estimates), and a batch-size change moves a session's reservation.

The budget numbers below are engine/cost.py's estimates of the configs (the server's
POST /api/sessions/estimate answers the same), so the tests follow the estimate if its formula
changes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from engine import cost
from engine.config import parse_config
from engine.cost import format_bytes
from tests.support import LiveServer, peak_rss_mb, rss_mb

XOR = {
    "seed": 3,
    "dataset": {"name": "xor", "noise": 0.1, "samples": 400},
    "layers": [
        {"type": "dense", "units": 8, "activation": "tanh"},
        {"type": "dense", "units": 1, "activation": "tanh"},
    ],
    "optimizer": {"name": "adam", "learning_rate": 0.02},
    "batch_size": 10,
}
SINE = {  # 1-D data: its default features are x1 alone, which the stored config must say
    "seed": 1,
    "dataset": {"name": "sine", "samples": 300, "noise": 0.05},
    "layers": [
        {"type": "dense", "units": 6, "activation": "tanh"},
        {"type": "dense", "units": 1, "activation": "linear"},
    ],
    "optimizer": {"name": "sgd", "learning_rate": 0.05, "momentum": 0.9},
}


def serve(tmp_path: Path, *args: str) -> LiveServer:
    tmp_path.mkdir(parents=True, exist_ok=True)
    return LiveServer(tmp_path / "data", extra_args=list(args)).start()


@pytest.fixture
def http_of() -> Iterator[Any]:
    clients: list[httpx.Client] = []

    def make(server: LiveServer) -> httpx.Client:
        client = httpx.Client(base_url=server.url, timeout=60.0, trust_env=False)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def create(http: httpx.Client, config: dict[str, Any]) -> str:
    answer = http.post("/api/sessions", json={"config": config})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def step(http: httpx.Client, sid: str, steps: int) -> dict[str, Any]:
    answer = http.post(f"/api/sessions/{sid}/step", json={"steps": steps})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def memory_of(http: httpx.Client, sid: str) -> dict[str, Any]:
    report = http.get("/api/memory").json()
    return next(row for row in report["sessions"] if row["id"] == sid)


def estimate(config: dict[str, Any]) -> int:
    """engine/cost.py's peak memory of a session with this config, in bytes."""
    run = parse_config(config)
    shape = cost.data_shape(run)
    assert shape is not None
    return cost.estimate(run, shape).memory_bytes


def wait_unloaded(http: httpx.Client, sid: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = memory_of(http, sid)
        if not row["loaded"]:
            return row
        time.sleep(0.1)
    raise AssertionError(f"session {sid} was not unloaded within {timeout} s: {row}")


def state(http: httpx.Client, sid: str) -> dict[str, Any]:
    """Everything a client can read of a session that unloading must keep."""
    public = http.get(f"/api/sessions/{sid}").json()
    public.pop("updated_at")
    return {
        "session": public,
        "weights": http.get(f"/api/sessions/{sid}/weights").json(),
        "metrics": http.get(f"/api/sessions/{sid}/metrics").json(),
    }


# ----------------------------------------------------------------------------- unloading


@pytest.mark.parametrize("config", [XOR, SINE], ids=["xor", "sine"])
def test_an_unloaded_session_comes_back_exactly_and_trains_on_as_if_it_had_stayed(
    tmp_path: Path, http_of: Any, config: dict[str, Any]
) -> None:
    server = serve(tmp_path, "--unload-after", "0.5")
    http = http_of(server)
    try:
        sid, twin = create(http, config), create(http, config)
        step(http, sid, 40)
        before = state(http, sid)
        assert memory_of(http, sid)["memory_bytes"] == estimate(config)

        row = wait_unloaded(http, sid)  # 0.5 s idle, then the next round of the persister
        assert row["memory_bytes"] == 0 and row["idle_seconds"] is None
        report = http.get("/api/memory").json()
        assert report["stored"] == 2 and report["unload_after"] == 0.5

        assert state(http, sid) == before  # read back from the store: same weights, rows, step
        assert memory_of(http, sid)["loaded"]  # the weights needed the trainer: loaded again
        after = step(http, sid, 40)
        whole = step(http, twin, 80)  # the same run without a break
        assert after["step"] == whole["step"] == 80
        weights = http.get(f"/api/sessions/{sid}/weights").json()
        assert weights == http.get(f"/api/sessions/{twin}/weights").json()
        assert after["metrics"]["loss"] == whole["metrics"]["loss"]
    finally:
        server.stop()


def test_a_watched_session_stays_loaded_and_a_websocket_rebuilds_an_unloaded_one(
    tmp_path: Path, http_of: Any
) -> None:
    server = serve(tmp_path, "--unload-after", "0.5")
    http = http_of(server)
    url = f"{server.ws_url}/ws/sessions/"
    try:
        sid = create(http, XOR)
        step(http, sid, 25)
        history = http.get(f"/api/sessions/{sid}/metrics").json()
        with connect(url + sid, proxy=None, max_size=None, open_timeout=10) as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "hello"
            time.sleep(2.5)  # two rounds of the persister: a page is watching it
            assert memory_of(http, sid)["loaded"]
        wait_unloaded(http, sid)
        with connect(url + sid, proxy=None, max_size=None, open_timeout=10) as ws:
            hello = json.loads(ws.recv(timeout=10))
            assert hello["history"] == history and hello["session"]["step"] == 25
            ws.send(json.dumps({"type": "command", "action": "step", "steps": 5}))
            deadline = time.monotonic() + 20
            while http.get(f"/api/sessions/{sid}").json()["step"] != 30:
                assert time.monotonic() < deadline, "the step command did not run"
                time.sleep(0.05)
        assert memory_of(http, sid)["memory_bytes"] == estimate(XOR)
    finally:
        server.stop()


def test_a_restarted_server_rebuilds_a_1d_session_from_its_stored_config(
    tmp_path: Path, http_of: Any
) -> None:
    server = serve(tmp_path)
    http = http_of(server)
    sid = create(http, SINE)
    assert http.get(f"/api/sessions/{sid}").json()["config"]["features"] == ["x1"]
    step(http, sid, 5)
    server.stop()
    server.start()
    try:
        assert step(http_of(server), sid, 5)["step"] == 10  # 409 "cannot be rebuilt" before
    finally:
        server.stop()


def test_never_unloads_with_unload_after_never(tmp_path: Path, http_of: Any) -> None:
    server = serve(tmp_path, "--unload-after", "never")
    http = http_of(server)
    try:
        sid = create(http, XOR)
        time.sleep(2.5)  # two rounds of the persister, which is what unloads
        row = memory_of(http, sid)
        assert row["loaded"] and row["memory_bytes"] == estimate(XOR)
        assert http.get("/api/memory").json()["unload_after"] is None
    finally:
        server.stop()


# ----------------------------------------------------------------------------- the budget


def test_the_budget_refuses_what_cannot_fit_and_unloads_idle_sessions_to_make_room(
    tmp_path: Path, http_of: Any
) -> None:
    one = estimate(XOR)
    budget = one + one // 2  # one session fits, two do not
    server = serve(tmp_path, "--memory-budget", str(budget), "--unload-after", "never")
    http = http_of(server)
    try:
        first = create(http, XOR)
        second = create(http, XOR)  # the idle first one is unloaded to make room
        assert not memory_of(http, first)["loaded"] and memory_of(http, second)["loaded"]

        started = http.post(f"/api/sessions/{second}/start", json={"pace": 20})
        assert started.status_code == 200, started.text
        refused = http.post("/api/sessions", json={"config": XOR})  # the training one stays
        assert refused.status_code == 507, refused.text
        detail = str(refused.json()["detail"])
        assert format_bytes(one) in detail and format_bytes(budget) in detail
        assert "--memory-budget" in detail
        assert refused.json()["code"] == "memory_budget"
        again = http.post(f"/api/sessions/{first}/start")  # loading it needs room too
        assert again.status_code == 507, again.text
        assert len(http.get("/api/sessions").json()["sessions"]) == 2  # nothing was stored

        assert http.post(f"/api/sessions/{second}/stop").status_code == 200
        third = create(http, XOR)  # now the stopped one can be unloaded
        report = http.get("/api/memory").json()
        assert report["loaded"] == 1 and report["reserved_bytes"] == one
        assert memory_of(http, third)["loaded"] and not memory_of(http, second)["loaded"]
    finally:
        server.stop()


def test_a_batch_size_change_moves_the_reservation_and_is_refused_past_the_budget(
    tmp_path: Path, http_of: Any
) -> None:
    small, twenty, large = (estimate({**XOR, "batch_size": b}) for b in (10, 20, XOR_TRAIN_SAMPLES))
    assert small < twenty < large
    server = serve(tmp_path, "--memory-budget", str((twenty + large) // 2))
    http = http_of(server)
    try:
        sid = create(http, XOR)
        assert memory_of(http, sid)["memory_bytes"] == small
        grown = http.patch(f"/api/sessions/{sid}", json={"batch_size": 20})
        assert grown.status_code == 200, grown.text
        assert memory_of(http, sid)["memory_bytes"] == twenty
        refused = http.patch(f"/api/sessions/{sid}", json={"batch_size": XOR_TRAIN_SAMPLES})
        assert refused.status_code == 507, refused.text
        assert f"batch_size {XOR_TRAIN_SAMPLES} needs about {format_bytes(large)}" in refused.text
        assert http.get(f"/api/sessions/{sid}").json()["config"]["batch_size"] == 20
        assert memory_of(http, sid)["memory_bytes"] == twenty  # unchanged by the refusal
        assert http.patch(f"/api/sessions/{sid}", json={"batch_size": 10}).status_code == 200
        assert memory_of(http, sid)["memory_bytes"] == small
    finally:
        server.stop()


XOR_TRAIN_SAMPLES = 280  # 400 samples, 30 % held out


# ----------------------------------------------------------------------------- process memory

BIG = {  # about 1.1 million parameters: some 25 MB once built and stepped
    "seed": 0,
    "dataset": {"name": "spiral", "samples": 2000},
    "layers": [
        {"type": "dense", "units": 1024, "activation": "relu"},
        {"type": "dense", "units": 1024, "activation": "relu"},
        {"type": "dense", "units": 1, "activation": "tanh"},
    ],
    "batch_size": 32,
}


def _peaks(tmp_path: Path, http_of: Any, counts: tuple[int, ...], *args: str) -> list[float]:
    """How far the server's peak resident memory (VmHWM) had risen, in MB, once it had created
    and stepped each of `counts` big sessions (cumulative), and its memory report after."""
    server = serve(tmp_path, *args)
    http = http_of(server)
    try:
        pid = server.proc.pid
        before, peaks, made = rss_mb(pid), [], 0
        for count in counts:
            while made < count:
                step(http, create(http, BIG), 1)
                made += 1
            peaks.append(peak_rss_mb(pid) - before)
        report = http.get("/api/memory").json()
        assert report["stored"] == counts[-1]
        assert report["reserved_bytes"] <= report["budget_bytes"]
        return peaks
    finally:
        server.stop()


def test_unloading_keeps_the_peak_memory_of_many_sessions_bounded(
    tmp_path: Path, http_of: Any
) -> None:
    one = estimate(BIG)
    # Without unloading every session stays: the peak grows by a session's memory each time.
    kept_4, kept_8 = _peaks(tmp_path / "kept", http_of, (4, 8), "--unload-after", "never")
    per_session = (kept_8 - kept_4) / 4
    assert per_session > 5  # MB: the sessions are big enough to see
    # With room for two, creating one unloads the least recently used: the peak stops growing.
    budget = ("--memory-budget", str(2 * one), "--unload-after", "never")
    bounded_4, bounded_12 = _peaks(tmp_path / "bounded", http_of, (4, 12), *budget)
    assert bounded_12 - bounded_4 < per_session / 2, (bounded_4, bounded_12, per_session)
    assert bounded_12 < kept_8, (bounded_12, kept_8)
