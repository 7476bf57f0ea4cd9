"""Renaming a run over real HTTP: PATCH /api/sessions/{id} takes "name" beside the hyperparameters,
strips it, refuses blank, overlong, null and control-character names with a 422 naming the field,
changes nothing when any part of the body is refused, tells open pages in a "status" frame, and
the new name survives a server restart."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from tests.support import LiveServer

XOR = {
    "dataset": {"name": "xor", "samples": 200},
    "layers": [{"type": "dense", "units": 4}, {"type": "dense", "units": 1}],
}


@pytest.fixture
def sid(client: httpx.Client) -> Iterator[str]:
    """A fresh XOR session named "before", deleted afterwards."""
    response = client.post("/api/sessions", json={"config": XOR, "name": "before"})
    assert response.status_code == 201, response.text
    session_id = response.json()["id"]
    yield session_id
    client.post(f"/api/sessions/{session_id}/stop")
    client.delete(f"/api/sessions/{session_id}")


def name_of(client: httpx.Client, session_id: str) -> str:
    return str(client.get(f"/api/sessions/{session_id}").json()["name"])


def test_rename_is_stripped_stored_and_listed(client: httpx.Client, sid: str) -> None:
    before = client.get(f"/api/sessions/{sid}").json()
    response = client.patch(f"/api/sessions/{sid}", json={"name": "  Spiral, 3 layers (try 2)  "})
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "Spiral, 3 layers (try 2)"
    assert name_of(client, sid) == "Spiral, 3 layers (try 2)"
    listed = {s["id"]: s["name"] for s in client.get("/api/sessions").json()["sessions"]}
    assert listed[sid] == "Spiral, 3 layers (try 2)"
    # a rename alone touches no hyperparameter and records no "hyperparameters" event
    after = client.get(f"/api/sessions/{sid}").json()
    assert after["config"] == before["config"]
    events = client.get(f"/api/sessions/{sid}/metrics").json()["events"]
    assert not [e for e in events if e["type"] == "hyperparameters"]
    # 200 characters is the longest name; unicode is welcome
    long = "é" * 200
    assert client.patch(f"/api/sessions/{sid}", json={"name": long}).json()["name"] == long


def test_name_and_hyperparameters_in_one_body(client: httpx.Client, sid: str) -> None:
    response = client.patch(f"/api/sessions/{sid}", json={"name": "fast", "learning_rate": 0.3})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"] == "fast"
    assert body["config"]["optimizer"]["learning_rate"] == 0.3


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "after stripping spaces, got 0"),
        ("   \t ", "after stripping spaces, got 0"),
        ("x" * 201, "got 201"),
        ("two\nlines", "control characters, got U+000A"),
        ("bell\x07", "control characters, got U+0007"),
        ("del\x7f", "control characters, got U+007F"),
        (None, "got null"),
        (5, "must be a string"),
    ],
)
def test_bad_names_are_422_naming_the_field(
    client: httpx.Client, sid: str, name: Any, message: str
) -> None:
    response = client.patch(f"/api/sessions/{sid}", json={"name": name})
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert [e["field"] for e in errors] == ["name"]
    assert message in errors[0]["message"], errors
    assert name_of(client, sid) == "before"


def test_a_refused_body_changes_nothing(client: httpx.Client, sid: str) -> None:
    # a good name next to a bad learning rate: 422 naming the rate, the name stays
    bad_rate = client.patch(f"/api/sessions/{sid}", json={"name": "new", "learning_rate": -1})
    assert bad_rate.status_code == 422
    assert [e["field"] for e in bad_rate.json()["errors"]] == ["learning_rate"]
    assert name_of(client, sid) == "before"
    # the engine's own cross-field check (nesterov needs momentum) also keeps the old name
    nesterov = client.patch(f"/api/sessions/{sid}", json={"name": "new", "nesterov": True})
    assert nesterov.status_code == 422
    assert name_of(client, sid) == "before"
    # a bad name next to a good rate: the rate is not applied either
    bad_name = client.patch(f"/api/sessions/{sid}", json={"name": " ", "learning_rate": 0.5})
    assert bad_name.status_code == 422
    assert client.get(f"/api/sessions/{sid}").json()["config"]["optimizer"]["learning_rate"] != 0.5


def test_existing_patch_behaviour_is_unchanged(client: httpx.Client, sid: str) -> None:
    assert client.patch(f"/api/sessions/{sid}", json={}).status_code == 200
    unknown = client.patch(f"/api/sessions/{sid}", json={"bogus": 1})
    assert unknown.status_code == 422
    assert [e["field"] for e in unknown.json()["errors"]] == ["bogus"]
    clip = client.patch(f"/api/sessions/{sid}", json={"gradient_clip": None})
    assert clip.status_code == 200 and clip.json()["config"]["gradient_clip"] is None
    assert client.patch("/api/sessions/nope", json={"name": "x"}).status_code == 404


def test_open_pages_get_the_new_name_in_a_status_frame(
    shared_server: LiveServer, client: httpx.Client, sid: str
) -> None:
    with connect(f"{shared_server.ws_url}/ws/sessions/{sid}", proxy=None, open_timeout=10) as ws:
        hello = json.loads(ws.recv(timeout=10))
        assert hello["type"] == "hello" and hello["session"]["name"] == "before"
        assert client.patch(f"/api/sessions/{sid}", json={"name": "watched"}).status_code == 200
        for _ in range(20):
            frame = json.loads(ws.recv(timeout=10))
            if frame["type"] == "status":
                break
        assert frame["type"] == "status"
        assert frame["session"]["id"] == sid and frame["session"]["name"] == "watched"


def test_new_name_survives_a_restart_even_when_renamed_while_training(
    server: LiveServer,
) -> None:
    with httpx.Client(base_url=server.url, timeout=30.0) as http:
        idle = http.post("/api/sessions", json={"config": XOR, "name": "a"}).json()["id"]
        busy = http.post("/api/sessions", json={"config": XOR, "name": "b"}).json()["id"]
        assert http.patch(f"/api/sessions/{idle}", json={"name": "renamed idle"}).status_code == 200
        assert http.post(f"/api/sessions/{busy}/start").status_code == 200
        renamed = http.patch(f"/api/sessions/{busy}", json={"name": "renamed while training"})
        assert renamed.status_code == 200 and renamed.json()["status"] == "running"
    server.stop()
    server.start()
    with httpx.Client(base_url=server.url, timeout=30.0) as http:
        assert name_of(http, idle) == "renamed idle"
        assert name_of(http, busy) == "renamed while training"
        listed = {s["id"]: s["name"] for s in http.get("/api/sessions").json()["sessions"]}
        assert listed == {idle: "renamed idle", busy: "renamed while training"}
