"""One error shape (issue 17.4) and strict types (17.3), over real HTTP.

Every error answer is an RFC 9457 problem (server/problems.py, docs/errors.md): checked against
the Problem schema of the served /openapi.json with jsonschema, for a bad request of every route
family and for the security guards' own answers; the OpenAPI document declares it for every
error status of every route. Numbers and booleans are strict in the config, PATCH and /step
bodies, the same mistake has the same code in every route, and the published RunConfig schema
takes every preset (with its "init": "he" shorthand).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from jsonschema import Draft202012Validator

from engine.presets import all_presets
from server.data_dir import StoreError
from server.errors import ConflictError
from server.limits import MAX_JSON_BYTES
from server.problems import MEDIA_TYPE, TYPE_PREFIX, install_problem_handlers
from tests.support import LiveServer, free_port

XOR = {
    "dataset": {"name": "xor", "samples": 100},
    "layers": [{"type": "dense", "units": 4}, {"type": "dense", "units": 1}],
}
SINE = {
    "dataset": {"name": "sine", "samples": 60},
    "layers": [
        {"type": "dense", "units": 4},
        {"type": "dense", "units": 1, "activation": "linear"},
    ],
}


@pytest.fixture(scope="module")
def spec(shared_server: LiveServer) -> dict[str, Any]:
    """The served OpenAPI document."""
    with httpx.Client(base_url=shared_server.url, timeout=30.0) as http:
        answer = http.get("/openapi.json")
    assert answer.status_code == 200, answer.text
    return answer.json()


def validator(spec: dict[str, Any], name: str) -> Draft202012Validator:
    """A validator of the document's components.schemas[name], its $refs resolved in it."""
    schema = {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def assert_problem(
    answer: httpx.Response,
    spec: dict[str, Any],
    status: int,
    code: str,
    field: str | None = None,
) -> dict[str, Any]:
    """The answer is a problem with this status and code (naming `field` when given), valid
    against the served Problem schema."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == MEDIA_TYPE, answer.headers
    body = answer.json()
    errors = sorted(validator(spec, "Problem").iter_errors(body), key=str)
    assert not errors, [e.message for e in errors]
    assert (body["status"], body["code"], body["type"]) == (status, code, TYPE_PREFIX + code)
    assert body["instance"] == answer.request.url.path
    assert isinstance(body["detail"], str) and body["detail"], body
    if status == 422:
        assert body["errors"], body
    if field is not None:
        assert field in [e["field"] for e in body["errors"]], body
    return body


def created(http: httpx.Client, config: dict[str, Any]) -> str:
    answer = http.post("/api/sessions", json={"config": config})
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


# ----------------------------------------------------------------------------- the OpenAPI document


def test_every_route_declares_its_errors_as_problems(spec: dict[str, Any]) -> None:
    problem = spec["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "code", "detail", "instance"}
    assert problem["properties"]["errors"]["items"] == {"$ref": "#/components/schemas/ProblemField"}
    field = spec["components"]["schemas"]["ProblemField"]
    assert set(field["required"]) == {"field", "message", "code"}
    declared = {"content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    operations = 0
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            operations += 1
            responses = operation["responses"]
            where = f"{method.upper()} {path}"
            assert "500" in responses, where
            if operation.get("parameters") or operation.get("requestBody"):
                assert "422" in responses, where
            for status, response in responses.items():
                if int(status) >= 400:
                    assert response["content"] == declared["content"], (where, status)
                    assert response["description"], (where, status)
    assert operations >= 20
    text = json.dumps(spec)
    for gone in ("HTTPValidationError", 'ValidationError"', "ErrorOut", "FieldErrorOut"):
        assert gone not in text, gone


# ----------------------------------------------------------------------------- every route family


def test_a_bad_request_to_each_route_family_is_a_valid_problem(
    client: httpx.Client, spec: dict[str, Any], shared_server: LiveServer
) -> None:
    sid = created(client, XOR)
    sine = created(client, SINE)
    base = f"/api/sessions/{sid}"
    json_header = {"Content-Type": "application/json"}
    try:
        not_json = client.post("/api/sessions", content=b"{nope", headers=json_header)
        body = assert_problem(not_json, spec, 422, "invalid_json", "body")
        assert "[1]" not in json.dumps(body) and "is not valid JSON" in body["errors"][0]["message"]
        not_utf8 = client.post(f"{base}/step", content=b'{"steps": "\xff"}', headers=json_header)
        assert_problem(not_utf8, spec, 422, "invalid_json", "body")
        bad_config = {**XOR, "layers": [{"type": "dense", "units": 0}]}
        assert_problem(
            client.post("/api/sessions", json={"config": bad_config}),
            spec,
            422,
            "validation_error",
            "layers[0].units",
        )
        assert_problem(
            client.post("/api/sessions/estimate", json={"config": {"layers": []}}),
            spec,
            422,
            "validation_error",
            "dataset",
        )
        assert_problem(client.get("/api/sessions/nope"), spec, 404, "not_found")
        assert_problem(client.get("/api/sessions/nope/weights.npz"), spec, 404, "not_found")
        assert_problem(
            client.patch(base, json={"momentum": "0.5"}), spec, 422, "validation_error", "momentum"
        )
        assert_problem(
            client.get(f"{base}/metrics", params={"limit": 0}),
            spec,
            422,
            "validation_error",
            "limit",
        )
        predict = client.post(f"{base}/predict", json={"inputs": [[1.0, 2.0, 3.0]]})
        assert_problem(predict, spec, 422, "validation_error", "inputs")
        trace = client.post(f"{base}/trace", json={"inputs": [[1.0, 2.0]], "targets": [7]})
        assert_problem(trace, spec, 422, "validation_error", "targets")
        every = client.get(f"{base}/weights").json()
        weights = client.put(f"{base}/weights", json={**every, "0.W": [[1.0]]})
        assert_problem(weights, spec, 422, "validation_error", "0.W")
        assert_problem(client.get(f"/api/sessions/{sine}/boundary"), spec, 400, "bad_request")
        upload = client.post("/api/datasets/upload", data={"target": "y"})
        assert_problem(upload, spec, 422, "validation_error", "file")
        assert client.post(f"{base}/start").status_code == 200
        running = assert_problem(client.post(f"{base}/start"), spec, 409, "session_running")
        assert running["title"] == "Session is running" and "errors" not in running
        assert_problem(client.post(f"{base}/step", json={"steps": 1}), spec, 409, "session_running")
        assert client.post(f"{base}/stop").status_code == 200
        assert_problem(client.get("/api/nowhere"), spec, 404, "not_found")
        not_allowed = assert_problem(client.delete("/api/health"), spec, 405, "method_not_allowed")
        assert "GET" in not_allowed["detail"]
        evil = client.get("/api/health", headers={"Host": "evil.example"})
        assert_problem(evil, spec, 400, "host_not_allowed")
        cross = client.post(f"{base}/stop", headers={"Origin": "http://evil.example"})
        assert_problem(cross, spec, 403, "cross_site")
        big = client.post("/api/sessions", content=b" " * (MAX_JSON_BYTES + 1), headers=json_header)
        assert_problem(big, spec, 413, "too_large")
    finally:
        client.post(f"{base}/stop")
        client.delete(base)
        client.delete(f"/api/sessions/{sine}")


@pytest.fixture(scope="module")
def failing_app() -> Iterator[str]:
    """An app with the project's problem handlers whose routes fail unexpectedly or on the
    store, served by uvicorn in a thread: the answers a healthy server never gives."""
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("kaboom")

    @app.get("/store")
    def store() -> None:
        raise StoreError("cannot write the database: disk I/O error")

    @app.get("/held")
    def held() -> None:
        extensions = {"session_ids": ["ab12"], "status": 200}  # "status" is not theirs to set
        raise ConflictError("held by a session", extensions=extensions)

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_unexpected_and_store_errors_are_problems(failing_app: str, spec: dict[str, Any]) -> None:
    def get(path: str) -> httpx.Response:
        # a connection of its own: uvicorn closes the one an exception went through, and a
        # request sent on it meanwhile would be reset
        with httpx.Client(base_url=failing_app, timeout=30.0, trust_env=False) as http:
            return http.get(path)

    boom = assert_problem(get("/boom"), spec, 500, "internal_error")
    assert boom["detail"] == "internal server error: RuntimeError: kaboom"
    store = assert_problem(get("/store"), spec, 503, "unavailable")
    assert store["detail"] == "cannot write the database: disk I/O error"
    held = assert_problem(get("/held"), spec, 409, "conflict")
    assert held["session_ids"] == ["ab12"] and held["detail"] == "held by a session"


# ----------------------------------------------------------------------------- strict types

# (a change to a valid config, the field named, its code, whether the published schema refuses
# it too: 2.0 for an integer is refused by the server only, as JSON Schema's "integer" is any
# number without a fraction; docs/errors.md says so)
BAD_CONFIGS = [
    ({"optimizer": {"learning_rate": True}}, "optimizer.learning_rate", "float_type", True),
    ({"optimizer": {"learning_rate": "0.1"}}, "optimizer.learning_rate", "float_type", True),
    ({"batch_size": "16"}, "batch_size", "int_type", True),
    ({"batch_size": 16.0}, "batch_size", "int_type", False),
    ({"batch_size": True}, "batch_size", "int_type", True),
    ({"seed": 2.0}, "seed", "int_type", False),
    ({"dataset": {"name": "xor", "samples": True}}, "dataset.samples", "int_type", True),
    ({"dataset": {"name": "xor", "noise": "0.1"}}, "dataset.noise", "float_type", True),
    (
        {"layers": [{"type": "dense", "units": "4"}, {"type": "dense", "units": 1}]},
        "layers[0].units",
        "int_type",
        True,
    ),
    ({"optimizer": {"momentum": 0.5, "nesterov": 1}}, "optimizer.nesterov", "bool_type", True),
    ({"init": {"kind": "normal", "std": "0.1"}}, "init.std", "float_type", True),
    ({"early_stopping": {"restore_best": "yes"}}, "early_stopping.restore_best", "bool_type", True),
    (
        {"dataset": {"name": "points", "points": [[0, 0, 0], [1, 1, 0], [0, 1, 1], [1, 0, True]]}},
        "dataset.points[3][2]",
        "float_type",
        True,
    ),
]
BAD_PATCHES = [
    ({"learning_rate": True}, "learning_rate", "float_type"),
    ({"batch_size": "16"}, "batch_size", "int_type"),
    ({"batch_size": 2.0}, "batch_size", "int_type"),
    ({"nesterov": 1}, "nesterov", "bool_type"),
    ({"momentum": "0.5"}, "momentum", "float_type"),
    ({"regularization": {"kind": "l2", "rate": True}}, "regularization.rate", "float_type"),
]
BAD_STEPS = [
    ({"steps": "5"}, "steps", "int_type"),
    ({"steps": True}, "steps", "int_type"),
    ({"steps": 2.0}, "steps", "int_type"),
]


@pytest.mark.parametrize(("change", "field", "code", "schema_refuses"), BAD_CONFIGS)
def test_a_config_takes_numbers_and_booleans_strictly(
    client: httpx.Client,
    spec: dict[str, Any],
    change: dict[str, Any],
    field: str,
    code: str,
    schema_refuses: bool,
) -> None:
    listed = len(client.get("/api/sessions").json()["sessions"])
    config = {**XOR, **change}
    body = assert_problem(
        client.post("/api/sessions", json={"config": config}), spec, 422, "validation_error", field
    )
    assert [(e["field"], e["code"]) for e in body["errors"]] == [(field, code)]
    assert len(client.get("/api/sessions").json()["sessions"]) == listed
    schema_errors = list(validator(spec, "RunConfig").iter_errors(config))
    assert bool(schema_errors) == schema_refuses, schema_errors


@pytest.mark.parametrize(("body", "field", "code"), BAD_PATCHES + BAD_STEPS)
def test_patch_and_step_take_numbers_and_booleans_strictly(
    client: httpx.Client, spec: dict[str, Any], body: dict[str, Any], field: str, code: str
) -> None:
    sid = created(client, XOR)
    try:
        before = client.get(f"/api/sessions/{sid}").json()
        path = f"/api/sessions/{sid}/step" if "steps" in body else f"/api/sessions/{sid}"
        method = "POST" if "steps" in body else "PATCH"
        answer = client.request(method, path, json=body)
        problem = assert_problem(answer, spec, 422, "validation_error", field)
        assert [(e["field"], e["code"]) for e in problem["errors"]] == [(field, code)]
        after = client.get(f"/api/sessions/{sid}").json()
        assert (after["config"], after["step"]) == (before["config"], before["step"])
    finally:
        client.delete(f"/api/sessions/{sid}")


def test_the_same_mistake_has_the_same_code_in_every_route(client: httpx.Client) -> None:
    sid = created(client, XOR)
    base = f"/api/sessions/{sid}"
    try:
        unknown = [
            client.post("/api/sessions", json={"config": {**XOR, "bogus": 1}}),
            client.post("/api/sessions", json={"config": XOR, "bogus": 1}),
            client.post("/api/sessions/estimate", json={"config": {**XOR, "bogus": 1}}),
            client.patch(base, json={"bogus": 1}),
            client.post(f"{base}/step", json={"bogus": 1}),
            client.post(f"{base}/start", json={"bogus": 1}),
            client.post(f"{base}/predict", json={"inputs": [[0, 0]], "bogus": 1}),
        ]
        for answer in unknown:
            assert answer.status_code == 422, answer.text
            codes = {(e["field"], e["code"]) for e in answer.json()["errors"]}
            assert codes == {("bogus", "extra_forbidden")}, (answer.request.url, codes)
        not_an_integer = {
            "batch_size": client.post("/api/sessions", json={"config": {**XOR, "batch_size": "8"}}),
            "batch_size ": client.patch(base, json={"batch_size": "8"}),
            "steps": client.post(f"{base}/step", json={"steps": "8"}),
            "limit": client.get(f"{base}/metrics", params={"limit": "eight"}),
            "resolution": client.get(f"{base}/boundary", params={"resolution": "8.5"}),
        }
        for field, answer in not_an_integer.items():
            assert answer.status_code == 422, answer.text
            [error] = answer.json()["errors"]
            assert (error["field"], error["code"]) == (field.strip(), "int_type"), error
        layer = client.post("/api/sessions", json={"config": {**XOR, "layers": [{"type": "x"}]}})
        choice = client.post("/api/sessions", json={"config": {**XOR, "loss": "x"}})
        assert [e["code"] for e in layer.json()["errors"]] == ["literal_error"]
        assert [e["code"] for e in choice.json()["errors"]] == ["literal_error"]
    finally:
        client.delete(base)


# ----------------------------------------------------------------------------- the published schema


def _configs(value: Any) -> Iterator[dict[str, Any]]:
    """Every run configuration inside a preset: its own, its "try" and its compared runs."""
    if isinstance(value, dict):
        if "dataset" in value and "layers" in value:
            yield value
        for item in value.values():
            yield from _configs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _configs(item)


def test_every_preset_validates_against_the_published_run_config_schema(
    client: httpx.Client, spec: dict[str, Any]
) -> None:
    run_config = validator(spec, "RunConfig")
    served = client.get("/api/presets").json()["presets"]
    assert served == json.loads(json.dumps(all_presets()))
    configs = [config for preset in served for config in _configs(preset)]
    shorthand = [c for c in configs if isinstance(c.get("init"), str)]
    assert len(configs) >= len(served) and shorthand, (len(configs), len(shorthand))
    for config in configs:
        errors = [e.message for e in run_config.iter_errors(config)]
        assert not errors, (config, errors)
    # the body of POST /api/sessions as published takes it, and the server agrees
    body = validator(spec, "SessionCreate")
    assert not list(body.iter_errors({"config": shorthand[0]}))
    assert list(run_config.iter_errors({**XOR, "init": "glorot"}))  # not a kind
    sid = created(client, {**XOR, "init": "he"})
    try:
        assert client.get(f"/api/sessions/{sid}/config").json()["init"]["kind"] == "he"
    finally:
        client.delete(f"/api/sessions/{sid}")
    refused = client.post("/api/sessions", json={"config": {**XOR, "init": "glorot"}})
    assert [e["field"] for e in refused.json()["errors"]] == ["init.kind"]


def test_the_config_schema_endpoint_allows_the_init_shorthand(client: httpx.Client) -> None:
    schema = client.get("/api/schema").json()["config"]
    Draft202012Validator.check_schema(schema)
    check = Draft202012Validator(schema)
    assert not list(check.iter_errors({**XOR, "init": "he"}))
    assert list(check.iter_errors({**XOR, "batch_size": "16"}))
    assert list(check.iter_errors({**XOR, "optimizer": {"learning_rate": True}}))
