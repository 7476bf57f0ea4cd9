"""Uploads under a real server: the catalogue (GET /api/datasets/uploads and GET /api/datasets),
deleting one (404 unknown, 409 while a session trains on it), the upload quota counted on the
decompressed arrays, and a run on an upload taking the file's columns as its inputs."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from engine.cost import format_bytes
from engine.uploads import NPZ_MAX_BYTES
from server.store import Store
from tests.support import LiveServer

HEADER = 128  # bytes of the .npy header the store keeps with each small array


def npz(**arrays: Any) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def table_csv(rows: int = 60) -> bytes:
    """Three inputs (height, width, depth) and a 0/1 target column "kind" in the middle."""
    lines = ["height,kind,width,depth"]
    for i in range(rows):
        lines.append(f"{i % 7 - 3},{i % 2},{(i * 3) % 5 - 2},{(i % 4) / 4}")
    return ("\n".join(lines) + "\n").encode()


def run_on(upload: str, units: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "seed": 0,
        "dataset": {"name": upload},
        "layers": [
            {"type": "dense", "units": 4, "activation": "tanh"},
            {"type": "dense", "units": units, "activation": "tanh"},
        ],
        **extra,
    }


def post_file(
    http: httpx.Client, name: str, blob: bytes, target: str | None = None
) -> httpx.Response:
    data = {"target": target} if target is not None else None
    return http.post("/api/datasets/upload", files={"file": (name, blob)}, data=data)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path / "data", extra_args=["--upload-quota", "200KiB"]).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def http(live: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.url, timeout=60.0, trust_env=False) as client:
        yield client


def test_uploads_are_listed_with_their_columns_rows_task_and_stored_size(
    http: httpx.Client,
) -> None:
    posted = post_file(http, "shapes.csv", table_csv(60), target="kind")
    assert posted.status_code == 201, posted.text
    upload_id = posted.json()["id"]
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(50, 2)), rng.normal(size=50)
    second = post_file(http, "values.npz", npz(X=x, y=y))
    assert second.status_code == 201, second.text

    listing = http.get("/api/datasets/uploads").json()
    newest, table = listing["uploads"]
    assert table == {
        "id": upload_id,
        "name": f"upload:{upload_id}",
        "filename": "shapes.csv",
        "columns": ["height", "width", "depth"],
        "target": "kind",
        "rows": 60,
        "task": "classification",
        "classes": 2,
        "bytes": 60 * 3 * 8 + 60 * 8 + 2 * HEADER,  # float64 inputs and targets, as stored
        "created_at": table["created_at"],
        "in_use_by": [],
    }
    assert table["created_at"].startswith(time.strftime("%Y-", time.gmtime()))
    assert newest["filename"] == "values.npz" and newest["task"] == "regression"
    assert newest["classes"] is None and newest["target"] is None and newest["rows"] == 50
    assert newest["bytes"] == x.nbytes + y.nbytes + 2 * HEADER
    assert listing["used_bytes"] == table["bytes"] + newest["bytes"]
    assert listing["quota_bytes"] == 200 * 1024
    assert http.get("/api/datasets").json()["uploads"] == listing["uploads"]


def test_an_upload_in_use_cannot_be_deleted_and_an_unknown_one_is_404(
    http: httpx.Client,
) -> None:
    upload_id = post_file(http, "shapes.csv", table_csv(), target="kind").json()["id"]
    sid = http.post("/api/sessions", json={"config": run_on(f"upload:{upload_id}")}).json()["id"]
    assert http.get("/api/datasets/uploads").json()["uploads"][0]["in_use_by"] == [sid]

    busy = http.delete(f"/api/datasets/uploads/{upload_id}")
    assert busy.status_code == 409, busy.text
    assert sid in str(busy.json()["detail"])
    assert busy.json()["code"] == "upload_in_use" and busy.json()["session_ids"] == [sid]
    assert http.get("/api/datasets/uploads").json()["uploads"][0]["id"] == upload_id

    assert http.delete(f"/api/sessions/{sid}").status_code == 204
    assert http.delete(f"/api/datasets/uploads/{upload_id}").status_code == 204
    assert http.get("/api/datasets/uploads").json()["uploads"] == []
    assert http.delete(f"/api/datasets/uploads/{upload_id}").status_code == 404
    gone = http.post("/api/sessions", json={"config": run_on(f"upload:{upload_id}")})
    assert gone.status_code == 422 and gone.json()["errors"][0]["field"] == "dataset.name"


def test_the_quota_counts_what_an_npz_inflates_to_not_the_file_sent(
    http: httpx.Client,
) -> None:
    # 12,000 rows of two inputs and a label: 288,000 bytes of arrays in a zip of a few KB
    x = np.zeros((12_000, 2))
    y = np.arange(12_000) % 2.0
    blob = npz(X=x, y=y)
    assert len(blob) < 10_000
    refused = post_file(http, "bomb.npz", blob)
    assert refused.status_code == 507, refused.text
    detail = str(refused.json()["detail"])
    inflated = x.nbytes + y.nbytes + 2 * HEADER
    assert format_bytes(inflated) in detail and "200 KiB upload quota" in detail
    assert refused.json()["code"] == "upload_quota"

    half = post_file(http, "half.npz", npz(X=x[:5000], y=y[:5000]))  # 120 KB stored
    assert half.status_code == 201, half.text
    more = post_file(http, "more.npz", npz(X=x[:5000], y=y[:5000]))  # 240 KB together
    assert more.status_code == 507, more.text
    assert "already take" in str(more.json()["detail"])
    assert http.delete(f"/api/datasets/uploads/{half.json()['id']}").status_code == 204
    assert post_file(http, "more.npz", npz(X=x[:5000], y=y[:5000])).status_code == 201


def test_an_npz_over_the_decompressed_limit_is_refused_naming_the_file(
    http: httpx.Client,
) -> None:
    rows = NPZ_MAX_BYTES // 16 + 1  # X of two float64 columns just past the limit
    blob = npz(X=np.zeros((rows, 2)), y=np.arange(rows) % 2)
    answer = post_file(http, "huge.npz", blob)
    assert answer.status_code == 422, answer.text
    problem = answer.json()["errors"][0]
    assert problem["field"] == "file" and "uncompressed" in problem["message"]
    named = post_file(http, "small.npz", npz(X=np.zeros((20, 2)), y=np.arange(20) % 2), "y")
    assert named.status_code == 422 and named.json()["errors"][0]["field"] == "target"


def test_a_run_on_an_upload_takes_its_columns_as_inputs_and_refuses_features(
    live: LiveServer, http: httpx.Client
) -> None:
    upload_id = post_file(http, "shapes.csv", table_csv(), target="kind").json()["id"]
    name = f"upload:{upload_id}"
    refused = http.post("/api/sessions", json={"config": run_on(name, features=["x1", "x2"])})
    assert refused.status_code == 422, refused.text
    problem = refused.json()["errors"][0]
    assert problem["field"] == "features" and "3 columns" in problem["message"]

    created = http.post("/api/sessions", json={"config": run_on(name)})
    assert created.status_code == 201, created.text
    sid = created.json()["id"]
    assert "features" not in created.json()["config"]
    data = http.get(f"/api/sessions/{sid}/data", params={"limit": 2}).json()
    assert data["input_names"] == ["height", "width", "depth"]
    patched = http.patch(f"/api/sessions/{sid}", json={"learning_rate": 0.05})
    assert "features" not in patched.json()["config"]
    assert http.post(f"/api/sessions/{sid}/step", json={"steps": 3}).json()["step"] == 3

    # A session stored by an earlier version says Playground's default features: it still loads.
    live.stop()
    with Store(live.data_dir) as store:
        config = store.get_session(sid)["config"]
        store.update_session(sid, config={**config, "features": ["x1", "x2"]})
    live.start()
    with httpx.Client(base_url=live.url, timeout=60.0, trust_env=False) as again:
        assert again.post(f"/api/sessions/{sid}/step", json={"steps": 2}).json()["step"] == 5


def test_a_two_column_upload_takes_playground_features_when_asked(http: httpx.Client) -> None:
    rows = "\n".join(f"{(i % 9) / 4 - 1},{(i % 5) / 2 - 1},{i % 2}" for i in range(40))
    upload_id = post_file(http, "plane.csv", f"a,b,c\n{rows}\n".encode()).json()["id"]
    name = f"upload:{upload_id}"
    plain = http.post("/api/sessions", json={"config": run_on(name)}).json()
    assert "features" not in plain["config"]
    chosen = http.post("/api/sessions", json={"config": run_on(name, features=["x1", "x1*x2"])})
    assert chosen.status_code == 201, chosen.text
    assert chosen.json()["config"]["features"] == ["x1", "x1*x2"]
    bad = http.post("/api/sessions", json={"config": run_on(name, features=["x3"])})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "features[0]"
