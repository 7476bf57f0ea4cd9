"""GET /api/schema over real HTTP: the run configuration's JSON Schema with every top-level default
written out, and where each field PATCH takes lives in the config document. A session PATCHed
through each of those paths answers with the change at that very path."""

from __future__ import annotations

from typing import Any

import httpx

from engine.config import HyperparameterUpdate, RunConfig
from server.schemas import MAX_NAME_LENGTH

XOR = {
    "dataset": {"name": "xor", "samples": 100},
    "layers": [
        {"type": "dense", "units": 4, "activation": "tanh"},
        {"type": "dense", "units": 1, "activation": "tanh"},
    ],
}
# A value for each PATCH field that differs from its default and is valid alone.
CHANGES: dict[str, Any] = {
    "learning_rate": 0.5,
    "batch_size": 7,
    "regularization": {"kind": "l2", "rate": 0.25},
    "gradient_clip": {"kind": "value", "threshold": 2.0},
    "momentum": 0.5,
    "nesterov": True,
    "beta1": 0.8,
    "beta2": 0.9,
    "eps": 1e-6,
    "alpha": 0.9,
}


def lookup(doc: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        doc = doc[part]
    return doc


def test_schema_has_every_default_and_the_place_of_each_patch_field(
    client: httpx.Client,
) -> None:
    answer = client.get("/api/schema")
    assert answer.status_code == 200
    body = answer.json()
    assert body["name_max_length"] == MAX_NAME_LENGTH
    properties = body["config"]["properties"]
    assert set(properties) == set(RunConfig.model_fields)
    full = RunConfig.model_validate(XOR).model_dump(mode="json")
    for name, field in RunConfig.model_fields.items():
        if field.is_required():
            assert "default" not in properties[name], name
        else:
            assert properties[name]["default"] == full[name], name
    hot = body["hot"]
    assert list(hot) == list(HyperparameterUpdate.model_fields)
    assert set(CHANGES) == set(hot)
    session = client.post("/api/sessions", json={"config": XOR}).json()
    # momentum first: nesterov needs it
    for name in sorted(CHANGES, key=lambda n: n != "momentum"):
        before = lookup(session["config"], hot[name])
        session = client.patch(f"/api/sessions/{session['id']}", json={name: CHANGES[name]}).json()
        assert lookup(session["config"], hot[name]) == CHANGES[name] != before, name
