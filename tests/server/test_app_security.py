"""Security of the real app as a whole: `python -m server` (the CLI, create_app and its routes),
not a test-built app. Host and Origin checks on the real routes and WebSockets, every response
header as sent, cross-origin writes refused and leaving nothing changed, the CLI's --token,
--allowed-host and a non-loopback --host end to end, NaN and infinity refused in every JSON body
that takes numbers and never stored, the 200-session cap, and NPZ uploads over HTTP.

test_security.py checks the middleware's rules one by one on a small app; this module checks
that the real server is wired to them (a create_app without the middleware fails here).
"""

from __future__ import annotations

import io
import json
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from server.limits import MAX_SESSIONS
from server.store import DB_NAME
from tests.support import ROOT, LiveServer, free_port

EVIL = "http://evil.example"
TOKEN = "cli-token-0123456789abcdef"
XOR = {
    "seed": 1,
    "dataset": {"name": "xor", "samples": 40},
    "layers": [
        {"type": "dense", "units": 4, "activation": "tanh"},
        {"type": "dense", "units": 1, "activation": "tanh"},
    ],
}
# Every header SECURITY.md promises on every HTTP answer, with its value.
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}


def app_csp(port: int) -> str:
    """The strict policy of SECURITY.md, for a server on 127.0.0.1:<port>."""
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        f"font-src 'self'; connect-src 'self' ws://127.0.0.1:{port} ws://localhost:{port}; "
        "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )


def assert_security_headers(response: httpx.Response, port: int) -> None:
    """Every security header present exactly once, with SECURITY.md's value."""
    where = f"{response.request.method} {response.request.url.path} -> {response.status_code}"
    sent = response.headers.get_list("content-security-policy")
    assert sent == [app_csp(port)], (where, sent)  # a missing policy fails here
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get_list(name) == [value], (where, name)
    assert not any(name.startswith("access-control-") for name in response.headers), where


def ws(server: LiveServer, path: str, host: str | None = None, **kwargs: Any) -> ClientConnection:
    """A WebSocket to the server on 127.0.0.1; `host` sets the Host header."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return connect(
        f"ws://{host or f'127.0.0.1:{server.port}'}{path}",
        sock=sock,
        proxy=None,
        open_timeout=10,
        close_timeout=2,
        compression=None,
        max_size=None,
        **kwargs,
    )


def create(http: httpx.Client, config: dict[str, Any] = XOR, **extra: Any) -> dict[str, Any]:
    response = http.post("/api/sessions", json={"config": config, **extra})
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
def sid(client: httpx.Client) -> Iterator[str]:
    """A fresh idle session on the module's server, deleted afterwards."""
    session_id = create(client, name="guarded")["id"]
    yield session_id
    client.post(f"/api/sessions/{session_id}/stop")
    client.delete(f"/api/sessions/{session_id}")


def state(http: httpx.Client, session_id: str) -> dict[str, Any]:
    """What a write would change: the session as listed, and its weights."""
    session = http.get(f"/api/sessions/{session_id}")
    assert session.status_code == 200, session.text
    public = session.json()
    return {
        "name": public["name"],
        "status": public["status"],
        "step": public["step"],
        "config": public["config"],
        "weights": http.get(f"/api/sessions/{session_id}/weights").json(),
    }


# ----------------------------------------------------------------------------- headers


def test_every_answer_of_the_real_app_carries_every_security_header(
    shared_server: LiveServer, client: httpx.Client, sid: str
) -> None:
    port = shared_server.port
    answers = [
        client.get("/"),  # the page
        client.get("/static/js/main.js"),  # its scripts
        client.get("/api/health"),
        client.get(f"/api/sessions/{sid}"),
        client.get(f"/api/sessions/{sid}/weights.npz"),
        client.get("/openapi.json"),
        client.get("/api/sessions/no-such-id"),  # 404
        client.post("/api/sessions", json={"config": {}}),  # 422
        client.put("/api/health"),  # 405
        client.post(f"/api/sessions/{sid}/trace", json={"inputs": [[1, 2, 3]], "targets": [0]}),
        client.post("/api/sessions", json={}, headers={"Origin": EVIL}),  # 403 by the guard
        client.post(  # 413 by the guard
            "/api/sessions",
            content=b"{" + b" " * (2 << 20) + b"}",
            headers={"Content-Type": "application/json"},
        ),
    ]
    statuses = [a.status_code for a in answers]
    assert statuses == [200, 200, 200, 200, 200, 200, 404, 422, 405, 422, 403, 413], statuses
    assert answers[0].headers["content-type"].startswith("text/html")
    for answer in answers:
        assert_security_headers(answer, port)
    refused = client.get("/api/health", headers={"Host": "evil.example"})
    assert refused.status_code == 400
    for name, value in SECURITY_HEADERS.items():  # even the Host refusal
        assert refused.headers[name] == value, name
    assert "content-security-policy" in refused.headers


def test_the_policy_names_the_host_the_page_was_opened_by(
    shared_server: LiveServer, client: httpx.Client
) -> None:
    page = client.get("/", headers={"Host": f"localhost:{shared_server.port}"})
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == app_csp(shared_server.port)
    tunnel = client.get("/", headers={"Host": "localhost:9999"})  # an SSH tunnel's local port
    csp = tunnel.headers["content-security-policy"]
    assert "ws://localhost:9999" in csp and f"ws://127.0.0.1:{shared_server.port}" in csp


def test_the_api_docs_alone_get_the_relaxed_policy(client: httpx.Client) -> None:
    docs = client.get("/docs")
    assert docs.status_code == 200
    csp = docs.headers["content-security-policy"]
    assert "'unsafe-inline'" in csp
    assert "http" not in csp, csp  # the vendored files only: no CDN, no font host
    assert "frame-ancestors 'none'" in csp and docs.headers["x-frame-options"] == "DENY"
    for path in ("/", "/openapi.json", "/api/health"):
        assert "unsafe-inline" not in client.get(path).headers["content-security-policy"], path


# ----------------------------------------------------------------------------- Host


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "127.0.0.1.nip.io"])
def test_the_real_app_refuses_a_foreign_host(
    shared_server: LiveServer, client: httpx.Client, sid: str, host: str
) -> None:
    for method, path in (
        ("GET", "/"),
        ("GET", "/api/sessions"),
        ("POST", f"/api/sessions/{sid}/step"),
    ):
        answer = client.request(method, path, headers={"Host": host}, json={"steps": 1})
        assert answer.status_code == 400, (method, path)
        assert answer.json()["detail"].startswith(f"Host header '{host}' is not allowed")
        assert answer.json()["code"] == "host_not_allowed"
    assert client.get(f"/api/sessions/{sid}").json()["step"] == 0
    with pytest.raises(InvalidStatus) as refused:
        ws(shared_server, f"/ws/sessions/{sid}", host=host)
    assert refused.value.response.status_code == 400


def test_the_real_app_answers_to_every_loopback_name(
    shared_server: LiveServer, client: httpx.Client, sid: str
) -> None:
    for name in ("127.0.0.1", "localhost", "[::1]"):
        for host in (name, f"{name}:{shared_server.port}"):
            assert client.get("/api/health", headers={"Host": host}).status_code == 200, host
    with ws(shared_server, f"/ws/sessions/{sid}", host=f"localhost:{shared_server.port}") as sock:
        assert json.loads(sock.recv(timeout=10))["type"] == "hello"


# ----------------------------------------------------------------------------- Origin (CSRF)

# Every state-changing route: (method, path under the session, JSON body or "upload").
WRITES = {
    "POST-sessions": ("POST", "/api/sessions", {"config": XOR}),
    "PATCH-name": ("PATCH", "", {"name": "renamed by another site"}),
    "PATCH-learning_rate": ("PATCH", "", {"learning_rate": 0.5}),
    "PUT-weights": ("PUT", "/weights", "weights"),
    "DELETE-session": ("DELETE", "", None),
    "POST-start": ("POST", "/start", None),
    "POST-step": ("POST", "/step", {"steps": 5}),
    "POST-reset": ("POST", "/reset", None),
    "POST-stop": ("POST", "/stop", None),
    "POST-trace": ("POST", "/trace", {"inputs": [[1, 1]], "targets": [1]}),
    "POST-predict": ("POST", "/predict", {"inputs": [[1, 1]]}),
    "POST-upload": ("POST", "/api/datasets/upload", "upload"),
}
CROSS_SITE = {
    "origin": {"Origin": EVIL},
    "other-port": {"Origin": "http://localhost:3000"},
    "null-origin": {"Origin": "null"},
    "referer": {"Referer": f"{EVIL}/attack.html"},
    "fetch-metadata": {"Sec-Fetch-Site": "cross-site"},
}


def send_write(
    http: httpx.Client, method: str, path: str, body: Any, sid: str, headers: dict[str, str]
) -> httpx.Response:
    url = path if path.startswith("/api/") else f"/api/sessions/{sid}{path}"
    if body == "upload":
        csv = b"a,b,label\n" + b"".join(b"%d,%d,%d\n" % (i, -i, i % 2) for i in range(20))
        return http.post(url, files={"file": ("d.csv", csv, "text/csv")}, headers=headers)
    if body == "weights":
        weights = http.get(f"/api/sessions/{sid}/weights").json()
        body = {name: (np.asarray(value) * 0 + 0.5).tolist() for name, value in weights.items()}
    return http.request(method, url, json=body, headers=headers)


@pytest.mark.parametrize("how", list(CROSS_SITE))
@pytest.mark.parametrize("write", list(WRITES))
def test_the_real_app_refuses_cross_origin_writes(
    shared_server: LiveServer, client: httpx.Client, sid: str, write: str, how: str
) -> None:
    method, path, body = WRITES[write]
    before = state(client, sid)
    listed = len(client.get("/api/sessions", params={"limit": 1000}).json()["sessions"])
    answer = send_write(client, method, path, body, sid, CROSS_SITE[how])
    assert answer.status_code == 403, answer.text
    detail = answer.json()["detail"]
    assert f"{method} refused" in detail and "cross-" in detail
    assert answer.json()["code"] == "cross_site"
    assert answer.headers["content-type"] == "application/problem+json"
    assert_security_headers(answer, shared_server.port)
    assert state(client, sid) == before  # nothing changed: not the name, weights or step
    assert len(client.get("/api/sessions", params={"limit": 1000}).json()["sessions"]) == listed


@pytest.mark.parametrize("write", list(WRITES))
def test_the_same_writes_from_the_page_itself_are_served(
    shared_server: LiveServer, client: httpx.Client, sid: str, write: str
) -> None:
    method, path, body = WRITES[write]
    own = {"Origin": shared_server.url, "Sec-Fetch-Site": "same-origin"}
    answer = send_write(client, method, path, body, sid, own)
    assert answer.status_code in (200, 201, 204), answer.text
    if method == "POST" and path == "/api/sessions":
        client.delete(f"/api/sessions/{answer.json()['id']}")
    if path == "/start":
        client.post(f"/api/sessions/{sid}/stop")


def test_the_real_app_refuses_a_cross_origin_websocket(shared_server: LiveServer, sid: str) -> None:
    for origin in (EVIL, "http://localhost:3000", "null"):
        with pytest.raises(InvalidStatus) as refused:
            ws(shared_server, f"/ws/sessions/{sid}", origin=origin)
        assert refused.value.response.status_code == 403, origin
        assert b"WebSocket Origin" in refused.value.response.body
    with ws(shared_server, f"/ws/sessions/{sid}", origin=shared_server.url) as sock:
        assert json.loads(sock.recv(timeout=10))["type"] == "hello"


# ----------------------------------------------------------------------------- the CLI


@pytest.fixture(scope="module")
def token_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """`backprop-lens --token TOKEN` on loopback."""
    live = LiveServer(tmp_path_factory.mktemp("token") / "data", token=TOKEN).start()
    try:
        yield live
    finally:
        live.stop()


def test_cli_token_is_required_by_every_route_and_websocket(token_server: LiveServer) -> None:
    assert token_server.printed_url() == f"http://127.0.0.1:{token_server.port}/?token={TOKEN}"
    with httpx.Client(base_url=token_server.url, timeout=30, trust_env=False) as http:
        for path in ("/", "/api/health", "/api/sessions", "/static/js/main.js", "/openapi.json"):
            missing = http.get(path)
            assert missing.status_code == 401, path
            assert "requires an access token" in missing.json()["detail"]
            assert missing.json()["code"] == "unauthorized" and missing.json()["instance"] == path
            assert_security_headers(missing, token_server.port)
        wrong = http.get("/api/health", headers={"X-Backprop-Lens-Token": "x" * 26})
        assert wrong.status_code == 401 and "token is wrong" in wrong.json()["detail"]
        assert http.post("/api/sessions", json={"config": XOR}).status_code == 401
        assert token_server.headers() == {"X-Backprop-Lens-Token": TOKEN}
        by_header = http.post(
            "/api/sessions", json={"config": XOR}, headers=token_server.headers()
        ).json()
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        assert http.get(f"/api/sessions/{by_header['id']}", headers=bearer).status_code == 200
        first = http.get("/", params={"token": TOKEN})  # the printed URL, opened once
        assert first.status_code == 200
        cookie = first.headers["set-cookie"]
        assert cookie.startswith(f"bl_token={TOKEN};") and "HttpOnly" in cookie
        assert "SameSite=Strict" in cookie
        assert http.get("/api/sessions").status_code == 200  # the cookie alone, from now on
    with (
        ws(token_server, f"/ws/sessions/{by_header['id']}") as sock,
        pytest.raises(ConnectionClosed) as closed,
    ):
        sock.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    with ws(token_server, f"/ws/sessions/{by_header['id']}?token={TOKEN}") as sock:
        assert json.loads(sock.recv(timeout=10))["type"] == "hello"


def test_cli_non_loopback_host_makes_a_token_and_allowed_hosts_work(tmp_path: Path) -> None:
    live = LiveServer(
        tmp_path / "data", ["--allowed-host", "lab.example.org"], host="0.0.0.0"
    ).start()
    try:
        printed = live.printed_url()
        token = live.token
        assert token is not None and len(token) >= 43
        # the first --allowed-host is the address to open, with the token that is now required
        assert printed == f"http://lab.example.org:{live.port}/?token={token}"
        with httpx.Client(base_url=live.url, timeout=30, trust_env=False) as http:
            assert http.get("/api/health").status_code == 401
            assert http.get("/api/health", params={"token": token[:-1]}).status_code == 401
            assert http.get("/api/health", headers=live.headers()).status_code == 200
            for host in ("lab.example.org", f"lab.example.org:{live.port}", "LAB.example.org."):
                named = http.get("/api/health", headers={**live.headers(), "Host": host})
                assert named.status_code == 200, host
            other = http.get("/api/health", headers={**live.headers(), "Host": "other.example"})
            assert other.status_code == 400 and "--allowed-host" in other.json()["detail"]
            page = http.get("/", headers={**live.headers(), "Host": f"lab.example.org:{live.port}"})
            assert f"ws://lab.example.org:{live.port}" in page.headers["content-security-policy"]
            cross = http.post(
                "/api/sessions",
                json={"config": XOR},
                headers={**live.headers(), "Origin": EVIL},
            )
            assert cross.status_code == 403  # a token does not make a foreign page trusted
            same = http.post(
                "/api/sessions",
                json={"config": XOR},
                headers={
                    **live.headers(),
                    "Host": f"lab.example.org:{live.port}",
                    "Origin": f"http://lab.example.org:{live.port}",
                },
            )
            assert same.status_code == 201, same.text
    finally:
        live.stop()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--token", "short"], "token: expected at least 16 characters"),
        (["--token", "has spaces in it, 1234"], "other characters"),
        (["--allowed-host", "evil/x"], "got 'evil/x'"),
        (["--host", "0.0.0.0", "--token", "short"], "token: expected at least 16 characters"),
    ],
    ids=["short-token", "token-with-spaces", "bad-allowed-host", "wildcard-with-short-token"],
)
def test_cli_refuses_weak_tokens_and_bad_host_names(
    tmp_path: Path, args: list[str], words: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "server", "--port", str(free_port()), "--data-dir", str(tmp_path)]
        + args,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert words in done.stderr and "serving" not in done.stdout


# ----------------------------------------------------------------------------- NaN and infinity

NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e999"]  # Python's JSON reads all four


def raw(http: httpx.Client, method: str, url: str, text: str) -> httpx.Response:
    """A JSON body as written, so NaN and Infinity reach the server as such."""
    return http.request(
        method, url, content=text.encode(), headers={"Content-Type": "application/json"}
    )


def config_text(where: str, bad: str) -> str:
    """XOR's config with one number replaced by `bad` (the JSON text of the number)."""
    config = json.loads(json.dumps(XOR))
    config["optimizer"] = {"learning_rate": 0.03}
    config["regularization"] = {"kind": "l2", "rate": 0.01}
    config["dataset"]["noise"] = 0.1
    marker = 12345.678
    if where == "optimizer.learning_rate":
        config["optimizer"]["learning_rate"] = marker
    elif where == "regularization.rate":
        config["regularization"]["rate"] = marker
    elif where == "dataset.noise":
        config["dataset"]["noise"] = marker
    elif where == "dataset.points":
        config["dataset"] = {
            "name": "points",
            "points": [[1.0, 1.0, 1], [marker, -1.0, 0], [-1.0, 1.0, 1], [2.0, 2.0, 0]],
        }
    return json.dumps({"config": config}).replace(str(marker), bad)


@pytest.mark.parametrize("bad", NON_FINITE)
@pytest.mark.parametrize(
    "where", ["optimizer.learning_rate", "regularization.rate", "dataset.noise", "dataset.points"]
)
def test_non_finite_numbers_in_a_config_are_refused_naming_the_field(
    client: httpx.Client, where: str, bad: str
) -> None:
    listed = len(client.get("/api/sessions").json()["sessions"])
    answer = raw(client, "POST", "/api/sessions", config_text(where, bad))
    assert answer.status_code == 422, answer.text
    fields = {e["field"]: e["message"] for e in answer.json()["errors"]}
    named = [f for f in fields if f.startswith(where)]
    assert named, fields
    assert "finite" in fields[named[0]], fields
    assert len(client.get("/api/sessions").json()["sessions"]) == listed  # nothing stored


@pytest.mark.parametrize("bad", NON_FINITE)
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"learning_rate": %s}', "learning_rate"),
        ('{"momentum": %s}', "momentum"),
        ('{"regularization": {"kind": "l2", "rate": %s}}', "regularization.rate"),
        ('{"gradient_clip": {"kind": "norm", "threshold": %s}}', "gradient_clip.threshold"),
    ],
    ids=["learning_rate", "momentum", "regularization.rate", "gradient_clip.threshold"],
)
def test_non_finite_hyperparameters_are_refused_and_the_config_kept(
    client: httpx.Client, sid: str, body: str, field: str, bad: str
) -> None:
    before = state(client, sid)
    answer = raw(client, "PATCH", f"/api/sessions/{sid}", body % bad)
    assert answer.status_code == 422, answer.text
    problem = answer.json()["errors"][0]
    assert problem["field"] == field and "finite" in problem["message"], problem
    assert state(client, sid) == before


@pytest.mark.parametrize("bad", NON_FINITE)
def test_non_finite_weights_are_refused_naming_the_array_and_never_stored(
    client: httpx.Client, sid: str, bad: str
) -> None:
    before = state(client, sid)
    weights = before["weights"]
    for name in ("0.W", "1.b"):
        changed = dict(weights, **{name: np.asarray(weights[name]) * 0 + 12345.678})
        text = json.dumps({k: np.asarray(v).tolist() for k, v in changed.items()})
        answer = raw(client, "PUT", f"/api/sessions/{sid}/weights", text.replace("12345.678", bad))
        assert answer.status_code == 422, answer.text
        [problem] = answer.json()["errors"]
        assert (problem["field"], problem["message"]) == (name, "contains NaN or infinite values")
    assert state(client, sid) == before


@pytest.mark.parametrize("bad", NON_FINITE)
@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/trace", '{"inputs": [[1.0, %s]], "targets": [1]}', "inputs"),
        ("/trace", '{"inputs": [[1.0, 2.0]], "targets": [%s]}', "targets"),
        ("/predict", '{"inputs": [[0.5, 0.5], [%s, 1.0]]}', "inputs"),
        ("/start", '{"pace": %s}', "pace"),
        ("/step", '{"steps": %s}', "steps"),
    ],
    ids=["trace-inputs", "trace-targets", "predict-inputs", "start-pace", "step-steps"],
)
def test_non_finite_inputs_are_refused_naming_the_field(
    client: httpx.Client, sid: str, path: str, body: str, field: str, bad: str
) -> None:
    before = state(client, sid)
    answer = raw(client, "POST", f"/api/sessions/{sid}{path}", body % bad)
    assert answer.status_code == 422, answer.text
    errors = answer.json()["errors"]
    assert errors[0]["field"] == field, errors
    assert state(client, sid) == before


def test_the_database_never_holds_a_non_finite_number(
    shared_server: LiveServer, client: httpx.Client, sid: str
) -> None:
    """After everything above (and a diverging run), no NaN or Infinity is stored anywhere."""
    diverging = dict(XOR, optimizer={"learning_rate": 100.0})
    diverging["layers"] = [
        {"type": "dense", "units": 8, "activation": "relu"},
        {"type": "dense", "units": 1, "activation": "linear"},
    ]
    diverging["dataset"] = {"name": "plane", "samples": 100}
    run = create(client, diverging)["id"]
    stepped = client.post(f"/api/sessions/{run}/step", json={"steps": 500})
    assert stepped.status_code == 200 and stepped.json()["status"] == "diverged"
    raw(client, "PATCH", f"/api/sessions/{sid}", '{"learning_rate": NaN}')
    database = shared_server.data_dir / DB_NAME
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        texts = 0
        for table in tables:
            for row in db.execute(f'SELECT * FROM "{table}"'):  # noqa: S608 - our own names
                for value in row:
                    if isinstance(value, str):
                        texts += 1
                        assert "NaN" not in value and "Infinity" not in value, (table, value)
                    elif isinstance(value, float):
                        assert np.isfinite(value), (table, row)
    assert texts > 0
    client.delete(f"/api/sessions/{run}")


# ----------------------------------------------------------------------------- NPZ uploads


def npz(**arrays: Any) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def upload(http: httpx.Client, blob: bytes, name: str = "data.npz") -> httpx.Response:
    return http.post(
        "/api/datasets/upload", files={"file": (name, blob, "application/octet-stream")}
    )


def test_npz_upload_over_http_trains_on_exactly_its_arrays(client: httpx.Client) -> None:
    rng = np.random.default_rng(4)
    x = rng.uniform(-3, 3, (40, 2))
    y = (x[:, 0] * x[:, 1] > 0).astype(np.int64)
    answer = upload(client, npz(X=x, y=y), name="quadrants.bin")  # found by its zip magic
    assert answer.status_code == 201, answer.text
    info = answer.json()
    assert (info["rows"], info["columns"], info["task"], info["num_classes"]) == (
        40,
        2,
        "binary",
        2,
    )
    config = {
        "dataset": {"name": info["name"], "test_fraction": 0.25},
        "layers": [{"type": "dense", "units": 4}, {"type": "dense", "units": 1}],
    }
    session = create(client, config)["id"]
    try:
        data = client.get(f"/api/sessions/{session}/data").json()
        served = np.concatenate([data["train"]["x"], data["test"]["x"]])  # (40, 2)
        labels = np.concatenate([data["train"]["y"], data["test"]["y"]])
        order = np.lexsort(served.T[::-1])
        expected = np.lexsort(x.T[::-1])
        np.testing.assert_array_equal(served[order], x[expected])  # the very numbers sent
        np.testing.assert_array_equal(labels[order], y[expected])
        assert len(data["test"]["x"]) == 10
        stepped = client.post(f"/api/sessions/{session}/step", json={"steps": 5})
        assert stepped.status_code == 200 and stepped.json()["step"] == 5
    finally:
        client.delete(f"/api/sessions/{session}")


def test_npz_uploads_that_could_carry_code_or_poison_are_refused(client: httpx.Client) -> None:
    x = np.zeros((6, 2))
    y = np.array([0, 1, 0, 1, 0, 1])
    objects = np.empty(6, dtype=object)
    objects[:] = [{"a": 1}] * 6
    nan_x = x.copy()
    nan_x[3, 1] = np.nan
    cases = {
        "pickled objects": (npz(X=x, y=objects), "numeric array y"),
        "a NaN": (npz(X=nan_x, y=y), "finite"),
        "an infinity": (npz(X=x, y=np.array([0.0, 1, 0, 1, np.inf, 1])), "finite"),
        "another member": (npz(X=x, y=y, payload=x), "only the arrays X and y"),
        "no y": (npz(X=x), "X and y"),
        "not a zip": (b"PK\x03\x04 but nothing after", "npz"),
    }
    for what, (blob, words) in cases.items():
        answer = upload(client, blob)
        assert answer.status_code == 422, (what, answer.text)
        problem = answer.json()["errors"][0]
        assert problem["field"] == "file" and words in problem["message"], (what, problem)


# ----------------------------------------------------------------------------- the session cap


def test_the_200_session_cap_over_http(server: LiveServer) -> None:
    tiny = {"dataset": {"name": "xor", "samples": 8}, "layers": [{"type": "dense", "units": 1}]}
    # a config whose data takes a moment to build: creates sent together overlap on the server
    slow = {"dataset": {"name": "spiral", "samples": 100_000}, "layers": tiny["layers"]}
    with httpx.Client(base_url=server.url, timeout=60, trust_env=False) as http:
        ids = [create(http, tiny)["id"] for _ in range(MAX_SESSIONS - 1)]

        def attempt(_: int) -> httpx.Response:
            with httpx.Client(base_url=server.url, timeout=60, trust_env=False) as own:
                return own.post("/api/sessions", json={"config": slow})

        with ThreadPoolExecutor(8) as pool:  # eight at once for the one place left
            codes = sorted(answer.status_code for answer in pool.map(attempt, range(8)))
        assert codes == [201] + [409] * 7, codes
        assert (
            len(http.get("/api/sessions", params={"limit": 1000}).json()["sessions"])
            == MAX_SESSIONS
            == 200
        )
        refused = http.post("/api/sessions", json={"config": tiny})
        assert refused.status_code == 409
        assert refused.json()["detail"] == (
            "200 sessions are stored, the limit is 200; delete one first"
        )
        assert refused.json()["code"] == "too_many_sessions"
        assert len(http.get("/api/sessions", params={"limit": 1000}).json()["sessions"]) == 200
        assert http.delete(f"/api/sessions/{ids[0]}").status_code == 204
        assert create(http, tiny)["id"] not in ids  # room for exactly one again
        assert http.post("/api/sessions", json={"config": tiny}).status_code == 409
