"""Persistence across server processes: history and state survive a clean restart (Ctrl-C) and a
kill -9 (the running session comes back "interrupted" and resumes from its checkpoint step); a
data directory that is locked or unusable stops the CLI with one line and exit code 2."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from server.store import Store
from tests.support import ROOT, LiveServer, free_port

XOR = {
    "dataset": {"name": "xor", "samples": 200},
    "layers": [{"type": "dense", "units": 4}, {"type": "dense", "units": 1}],
}


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def http(server: LiveServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=30.0)


def test_history_and_state_survive_a_clean_restart(server: LiveServer) -> None:
    with http(server) as client:
        sid = client.post("/api/sessions", json={"config": XOR, "name": "keep"}).json()["id"]
        assert client.post(f"/api/sessions/{sid}/step", json={"steps": 300}).status_code == 200
        client.patch(f"/api/sessions/{sid}", json={"learning_rate": 0.07})
        before = client.get(f"/api/sessions/{sid}").json()
        history = client.get(f"/api/sessions/{sid}/metrics").json()
        weights = client.get(f"/api/sessions/{sid}/weights").json()
    assert before["step"] == 300 and history["step"][-1] == 300

    server.stop()
    server.start()

    with http(server) as client:
        after = client.get(f"/api/sessions/{sid}").json()
        assert after["status"] == "paused" and after["step"] == 300 and after["name"] == "keep"
        assert after["config"]["optimizer"]["learning_rate"] == 0.07
        assert after["metrics"] == before["metrics"]
        assert client.get(f"/api/sessions/{sid}/metrics").json() == history
        assert client.get(f"/api/sessions/{sid}/weights").json() == weights
        assert client.post(f"/api/sessions/{sid}/step", json={"steps": 5}).json()["step"] == 305


def test_ctrl_c_while_training_checkpoints_and_resumes(server: LiveServer) -> None:
    with http(server) as client:
        sid = client.post("/api/sessions", json={"config": XOR}).json()["id"]
        client.post(f"/api/sessions/{sid}/start")
        wait_for(lambda: client.get(f"/api/sessions/{sid}").json()["step"] > 100, what="steps")
    server.stop()  # SIGINT: the worker stops after its step, checkpoints and writes everything
    server.start()
    with http(server) as client:
        session = client.get(f"/api/sessions/{sid}").json()
        assert session["status"] == "interrupted"
        assert session["message"]
        step = session["step"]
        assert step > 100
        assert client.get(f"/api/sessions/{sid}/metrics").json()["step"][-1] == step
        resumed = client.post(f"/api/sessions/{sid}/step", json={"steps": 1}).json()
        assert resumed["step"] == step + 1  # exactly from the checkpoint written at shutdown


def test_kill_9_leaves_an_interrupted_session_that_resumes_from_its_checkpoint(
    server: LiveServer,
) -> None:
    with http(server) as client:
        sid = client.post("/api/sessions", json={"config": XOR}).json()["id"]
        other = client.post("/api/sessions", json={"config": XOR}).json()["id"]
        client.post(f"/api/sessions/{other}/step", json={"steps": 10})
        client.post(f"/api/sessions/{sid}/start")
        wait_for(lambda: client.get(f"/api/sessions/{sid}").json()["step"] > 200, what="steps")
        time.sleep(2.5)  # checkpoints are taken about every second while training
        seen = client.get(f"/api/sessions/{sid}").json()["step"]
    server.kill()

    with Store(server.data_dir) as store:  # the lock died with the process
        checkpoint = store.load_checkpoint(sid)
        assert checkpoint is not None
        saved_step = checkpoint[0]
        stored_history = store.load_history(sid)
    assert 0 < saved_step <= seen
    # the stored history never runs ahead of the checkpoint it would resume from
    assert stored_history.last() is not None
    assert stored_history.last()["step"] <= saved_step

    server.start()
    with http(server) as client:
        session = client.get(f"/api/sessions/{sid}").json()
        assert session["status"] == "interrupted"
        assert session["step"] == saved_step
        assert client.get(f"/api/sessions/{other}").json()["status"] == "paused"
        resumed = client.post(f"/api/sessions/{sid}/step", json={"steps": 1}).json()
        assert resumed["step"] == saved_step + 1
        started = client.post(f"/api/sessions/{sid}/start")
        assert started.status_code == 200 and started.json()["status"] == "running"
        wait_for(
            lambda: client.get(f"/api/sessions/{sid}").json()["step"] > saved_step + 50,
            what="training to continue",
        )
        stopped = client.post(f"/api/sessions/{sid}/stop").json()
        assert stopped["status"] == "paused" and stopped["step"] > saved_step + 1


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server", "--port", str(free_port()), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_locked_data_dir_exits_2_with_one_line(server: LiveServer) -> None:
    done = run_cli("--data-dir", str(server.data_dir))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "another Backprop Lens server" in lines[0] and str(server.data_dir) in lines[0]


def test_an_unusable_data_dir_exits_2_with_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    done = run_cli("--data-dir", str(blocker / "data"))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("backprop-lens: error:") and "data" in lines[0]
