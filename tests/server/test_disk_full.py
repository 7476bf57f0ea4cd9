"""A full disk is never silent: a real server whose data directory is a small tmpfs (mounted
here, which needs root; skipped with the reason elsewhere) fills up while a session trains.

The run pauses; its message and `save_error` say what failed and which step the data directory
keeps; open WebSockets get a "save_failed" event and a status frame saying so; /stop, /step and
/start answer 507 with that message instead of success, and the WebSocket's stop and start
commands an error frame. Once space is free again, start saves what was pending and trains, stop
answers 200, and a restarted server finds the run at the step it stopped at.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from server.session_writes import WriteBuffer
from tests.support import LiveServer, fill_disk, mount_tmpfs, unmount

XOR = {
    "dataset": {"name": "xor", "samples": 200},
    "layers": [{"type": "dense", "units": 4}, {"type": "dense", "units": 1}],
}
DISK = "4m"  # room for the database, and little else


@pytest.fixture
def small_disk_server(tmp_path: Path) -> Iterator[LiveServer]:
    """A server whose data directory is a DISK-sized tmpfs."""
    data = tmp_path / "data"
    reason = mount_tmpfs(data, DISK)
    if reason is not None:
        pytest.skip(f"cannot fill a disk here: {reason}")
    live = LiveServer(data)
    try:
        live.start()
        yield live
    finally:
        live.stop()
        unmount(data)


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def frames_until(
    ws: ClientConnection, predicate: Callable[[dict[str, Any]], bool], timeout: float = 60.0
) -> dict[str, Any]:
    """Read frames until one matches (bounded by `timeout`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        if predicate(frame):
            return frame
    raise AssertionError(f"no matching frame within {timeout}s")


def is_event(kind: str) -> Callable[[dict[str, Any]], bool]:
    return lambda frame: frame["type"] == "event" and frame["event"]["type"] == kind


def test_a_full_disk_pauses_the_run_says_so_and_saves_again_when_space_returns(
    small_disk_server: LiveServer,
) -> None:
    server = small_disk_server
    data = server.data_dir
    with httpx.Client(base_url=server.url, timeout=60.0) as client:
        sid = client.post("/api/sessions", json={"config": XOR}).json()["id"]
        assert client.post(f"/api/sessions/{sid}/step", json={"steps": 20}).status_code == 200
        with connect(f"{server.ws_url}/ws/sessions/{sid}", max_size=None, open_timeout=10) as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "hello"
            assert client.post(f"/api/sessions/{sid}/start").json()["status"] == "running"
            wait_for(lambda: client.get(f"/api/sessions/{sid}").json()["step"] > 200, "steps")
            filler = fill_disk(data)

            # training pauses, and the session says what failed and what is kept
            def failed() -> dict[str, Any] | None:
                doc = client.get(f"/api/sessions/{sid}").json()
                return doc if doc["save_error"] and doc["status"] == "paused" else None

            paused = wait_for(failed, "the run to pause with a save error")
            message = paused["save_error"]
            assert paused["message"] == message
            assert "is full" in message and str(data) in message
            assert f"Training is paused at step {paused['step']}" in message
            assert "the data directory keeps the checkpoint of step" in message
            time.sleep(0.5)
            assert client.get(f"/api/sessions/{sid}").json()["step"] == paused["step"]

            # open pages hear it: an event, and a status frame carrying the message
            event = frames_until(ws, is_event("save_failed"))["event"]
            assert "is full" in event["message"]
            status = frames_until(
                ws, lambda f: f["type"] == "status" and f["session"]["status"] == "paused"
            )
            assert status["session"]["save_error"] == message

            # nothing answers success while nothing can be saved
            for path, body in (("stop", None), ("step", {"steps": 5}), ("start", None)):
                answer = client.post(f"/api/sessions/{sid}/{path}", json=body)
                assert answer.status_code == 507, (path, answer.text)
                assert answer.json()["detail"] == message, path
                assert answer.json()["code"] == "insufficient_storage", path
            for action in ("stop", "start"):  # the page's WebSocket commands alike
                ws.send(json.dumps({"type": "command", "action": action}))
                error = frames_until(ws, lambda f: f["type"] == "error")
                assert error["message"] == message, action
            after = client.get(f"/api/sessions/{sid}").json()
            assert (after["status"], after["step"]) == ("paused", paused["step"])

            # space returns: start saves what was pending, trains and saves again
            filler.unlink()
            started = client.post(f"/api/sessions/{sid}/start")
            assert started.status_code == 200, started.text
            assert started.json()["status"] == "running" and started.json()["save_error"] is None
            saved = frames_until(ws, is_event("saved"))["event"]
            assert saved["step"] == paused["step"]
            wait_for(
                lambda: client.get(f"/api/sessions/{sid}").json()["step"] > paused["step"] + 100,
                "training to go on",
            )
            stopped = client.post(f"/api/sessions/{sid}/stop")
            assert stopped.status_code == 200, stopped.text
            step = stopped.json()["step"]
            events = client.get(f"/api/sessions/{sid}/metrics").json()["events"]
    kinds = [event["type"] for event in events]
    assert "save_failed" in kinds and "saved" in kinds

    server.stop()
    server.start()
    with httpx.Client(base_url=server.url, timeout=60.0) as client:
        again = client.get(f"/api/sessions/{sid}").json()
        assert (again["status"], again["step"], again["save_error"]) == ("paused", step, None)
        assert again["message"] is None
        assert client.get(f"/api/sessions/{sid}/metrics").json()["step"][-1] == step
        assert (
            client.post(f"/api/sessions/{sid}/step", json={"steps": 1}).json()["step"] == step + 1
        )


def test_a_failed_write_is_given_back_and_goes_first_next_time() -> None:
    writes = WriteBuffer(saved_step=10)
    writes.record({"step": 11}, [{"step": 11, "type": "clip"}])
    writes.checkpointed((12, b"c12"), {"step": 12, "epoch": 0, "metrics": None})
    batch = writes.take(flush=False, busy=True, fields={"step": 12})
    assert (batch.rows, batch.checkpoint) == ([{"step": 11}], (12, b"c12"))
    assert writes.failed(batch, "disk full") is True  # the first failure
    assert writes.failed(writes.take(flush=False, busy=True, fields={}), "disk full") is False
    writes.record({"step": 13}, [])
    writes.checkpointed((14, b"c14"), {"step": 14, "epoch": 0, "metrics": None})
    again = writes.take(flush=False, busy=True, fields={})
    # what failed goes first, and the newer checkpoint replaces the one given back
    assert again.rows == [{"step": 11}, {"step": 13}]
    assert again.events == [{"step": 11, "type": "clip"}]
    assert again.checkpoint == (14, b"c14") and again.record is not None
    message = writes.failure_message(14)
    assert message is not None and message.startswith("disk full. Training is paused at step 14")
    assert "keeps the checkpoint of step 10; steps 11-14 are in memory only" in message
    again.saved_step = 14  # as if the checkpoint had been written before the rows failed
    writes.failed(again, "disk full")
    assert "keeps the checkpoint of step 14." in (writes.failure_message(14) or "")
    assert writes.recovered() == 14 and writes.failure_message(14) is None
