"""The client's typed exceptions, built from the server's problem documents (issue 17 items 4
and 7): each carries the status, code, detail and the fields the server named."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from backprop_lens import (
    ApiError,
    CapacityExceeded,
    Client,
    ConfigError,
    Conflict,
    NotFound,
    Session,
)
from backprop_lens.errors import error_class, from_response
from tests.support import ROOT, LiveServer

XOR: dict[str, Any] = {
    "seed": 0,
    "dataset": {"name": "xor", "samples": 100},
    "layers": [{"type": "dense", "units": 4}, {"type": "dense", "units": 1}],
}


@pytest.fixture
def api(shared_server: LiveServer) -> Iterator[Client]:
    with Client(shared_server.url) as client:
        yield client


@pytest.fixture(scope="module")
def tight_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One training session at a time, a 10 KB upload quota and a token."""
    args = ["--max-training", "1", "--upload-quota", "10KB"]
    live = LiveServer(
        tmp_path_factory.mktemp("tight") / "data", args, token="client-test-token-0123456789"
    )
    live.start()
    try:
        yield live
    finally:
        live.stop()


def test_config_error_names_the_field(api: Client) -> None:
    bad = {**XOR, "layers": [{"type": "dense", "units": 0}, {"type": "dense", "units": 1}]}
    with pytest.raises(ConfigError) as refused:
        api.create_session(bad)
    error = refused.value
    assert (error.status, error.code) == (422, "validation_error")
    assert error.field == "layers[0].units"
    assert error.message == "must be an integer >= 1, got 0"
    assert error.errors[0]["code"] == "greater_than_equal"
    assert isinstance(error, ApiError) and "layers[0].units" in str(error)


def test_config_error_of_every_field_and_its_estimate(api: Client) -> None:
    two = {**XOR, "batch_size": "16", "optimizer": {"name": "sgd", "learning_rate": True}}
    with pytest.raises(ConfigError) as refused:
        api.create_session(two)
    fields = sorted(entry["field"] for entry in refused.value.errors)
    assert fields == ["batch_size", "optimizer.learning_rate"]
    huge = {
        **XOR,
        "layers": [{"type": "dense", "units": 4096}] * 3 + [{"type": "dense", "units": 1}],
    }
    with pytest.raises(ConfigError) as costly:
        api.create_session(huge)
    assert costly.value.errors[0]["code"] == "over_limit"
    assert (
        costly.value.body["estimate"]["parameters"]
        == 2 * 4096 + 4096 + 2 * (4096 * 4096 + 4096) + 4097
    )


def test_update_refuses_a_boolean_learning_rate(api: Client) -> None:
    session = api.create_session(XOR)
    with pytest.raises(ConfigError) as refused:
        session.update(learning_rate=True)
    assert refused.value.field == "learning_rate"
    with pytest.raises(ConfigError) as steps:
        session.train(0)
    assert steps.value.field == "steps" and ">= 1" in steps.value.message
    with pytest.raises(TypeError, match="rename"):
        session.update(name="x")


def test_not_found(api: Client) -> None:
    with pytest.raises(NotFound) as missing:
        api.get_session("no-such-session")
    assert (missing.value.status, missing.value.code) == (404, "not_found")
    assert "no-such-session" in missing.value.detail
    with pytest.raises(NotFound):
        api.delete_upload("0123456789ab")


def test_conflict_while_training(api: Client) -> None:
    session = api.create_session(XOR)
    session.start(pace=50)
    try:
        with pytest.raises(Conflict) as busy:
            session.train(5)
        assert (busy.value.status, busy.value.code) == (409, "session_running")
        with pytest.raises(Conflict):
            session.set_weights(session.get_weights())
    finally:
        session.stop()


def test_capacity_and_token(tight_server: LiveServer) -> None:
    with Client(tight_server.url) as stranger, pytest.raises(ApiError) as denied:
        stranger.create_session(XOR)
    assert type(denied.value) is ApiError
    assert (denied.value.status, denied.value.code) == (401, "unauthorized")
    with Client(tight_server.url, token=tight_server.token) as api:
        sid = api.create_session(XOR).id
    with (
        Client(tight_server.url) as stranger,
        Session(stranger, {"id": sid}).stream() as frames,
        pytest.raises(ApiError) as closed,
    ):
        next(frames)  # the socket is closed with 4401, the WebSocket's 401
    assert type(closed.value) is ApiError and closed.value.status == 401
    with Client(tight_server.url, token=tight_server.token) as api:
        first, second = api.create_session(XOR), api.create_session(XOR)
        first.start(pace=50)
        try:
            with pytest.raises(CapacityExceeded) as busy:
                second.train(1)
            assert (busy.value.status, busy.value.code) == (429, "too_many_training")
            with second.stream(types=["hello"]) as stream:  # the token opens the socket too
                assert next(stream).session["id"] == second.id  # type: ignore[attr-defined]
        finally:
            first.stop()
        rng = np.random.default_rng(0)
        with pytest.raises(CapacityExceeded) as full:
            api.upload_dataset(rng.normal(size=(2000, 2)), rng.integers(0, 2, 2000))
        assert (full.value.status, full.value.code) == (507, "upload_quota")


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (422, "validation_error", ConfigError),
        (422, "invalid_json", ConfigError),
        (404, "not_found", NotFound),
        (409, "session_running", Conflict),
        (409, "upload_in_use", Conflict),
        (429, "too_many_training", CapacityExceeded),
        (413, "too_large", CapacityExceeded),
        (507, "memory_budget", CapacityExceeded),
        (507, "insufficient_storage", CapacityExceeded),
        (400, "bad_request", ApiError),
        (500, "step_failed", ApiError),
    ],
)
def test_error_class_by_status_and_code(status: int, code: str, expected: type) -> None:
    assert error_class(status, code) is expected


def test_an_answer_that_is_no_problem_document_keeps_its_text() -> None:
    answer = httpx.Response(502, text="<html>bad gateway</html>")
    error = from_response(answer)
    assert type(error) is ApiError
    assert (error.status, error.code, error.detail) == (
        502,
        "http_error",
        "<html>bad gateway</html>",
    )


def test_upload_arguments_are_checked(api: Client, tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="X and y"):
        api.upload_dataset(np.zeros((2, 2)))
    with pytest.raises(TypeError, match="target"):
        api.upload_dataset(np.zeros((2, 2)), np.zeros(2), target="y")


def test_the_client_is_packaged_with_its_dependencies() -> None:
    """`pip install backprop-lens` gives the client: its package in the wheel, httpx at run time."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "backprop_lens" in project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    runtime = {
        re.split(r"[<>=\[ ]", dep, maxsplit=1)[0] for dep in project["project"]["dependencies"]
    }
    assert {"httpx", "websockets", "numpy"} <= runtime


def test_a_url_without_its_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="url"):
        Client("127.0.0.1:8000")
