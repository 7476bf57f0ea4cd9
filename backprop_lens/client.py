"""A typed Python client for a Backprop Lens server (REST API and WebSocket).

    from backprop_lens import Client

    with Client("http://127.0.0.1:8000") as client:
        session = client.create_session(config, name="xor")
        result = session.train(500)          # metrics evaluated at step 500
        print(result.metrics.test_accuracy)

Every error answer raises an `ApiError` subclass built from the server's problem document
(backprop_lens/errors.py). It speaks the API of README.md and /openapi.json and imports neither
the engine nor the server, so it runs wherever httpx, websockets and NumPy do.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, overload

import httpx
import numpy as np
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from backprop_lens.errors import ApiError, NotFound, raise_for
from backprop_lens.frames import FRAME_TYPES, Frame, parse_frame
from backprop_lens.results import (
    Evaluation,
    History,
    SweepResult,
    TrainResult,
    UploadInfo,
)

DEFAULT_URL = "http://127.0.0.1:8000"
TOKEN_HEADER = "X-Backprop-Lens-Token"  # server/guards/settings.py; also accepted on the socket
LAYOUTS = ("engine", "torch")
WS_CLOSE_UNAUTHORIZED = 4401  # the WebSocket's 401 (docs/websocket.md, "Close codes")
WS_CLOSE_NOT_FOUND = 4404  # its 404: no such session, or deleted while watched
_PATH_PART = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


class Client:
    """A connection to one server. `token` is needed when the server was started with one (it
    always has one when bound beyond loopback); it goes in the X-Backprop-Lens-Token header of
    every request and WebSocket handshake. `timeout`: seconds to wait for an answer (but for
    `Session.train`, which waits as long as its steps take). Use it as a context manager, or
    call `close()`."""

    def __init__(
        self, url: str = DEFAULT_URL, token: str | None = None, timeout: float = 120.0
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f'url: expected "http://host:port" or "https://...", got {url!r}')
        self.url = url.rstrip("/")
        self.token = token
        self.headers = {TOKEN_HEADER: token} if token else {}
        self.http = httpx.Client(base_url=self.url, headers=self.headers, timeout=timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP connections (open streams close on their own)."""
        self.http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One API request; the matching ApiError subclass is raised for an error answer."""
        return raise_for(self.http.request(method, path, **kwargs))

    # ---- sessions --------------------------------------------------------------------------

    def create_session(self, config: dict[str, Any], name: str | None = None) -> Session:
        """Create an idle session from a run configuration (README: "The run configuration").
        A config the server refuses raises ConfigError naming the field ("layers[0].units");
        one over a cost limit carries the estimate in `error.body["estimate"]`."""
        body: dict[str, Any] = {"config": config}
        if name is not None:
            body["name"] = name
        return Session(self, self.request("POST", "/api/sessions", json=body).json())

    def get_session(self, session_id: str) -> Session:
        """The session with this id; NotFound if there is none."""
        return Session(self, self.request("GET", f"/api/sessions/{session_id}").json())

    def sessions(self, configs: bool = True, page_size: int = 100) -> Iterator[Session]:
        """Every stored session, newest first, following the listing's pages (next_cursor) as
        the iteration goes. configs=False leaves each session's config out (`Session.info`)."""
        params: dict[str, Any] = {"limit": page_size, "configs": str(configs).lower()}
        while True:
            page = self.request("GET", "/api/sessions", params=params).json()
            for document in page["sessions"]:
                yield Session(self, document)
            if page.get("next_cursor") is None:
                return
            params["cursor"] = page["next_cursor"]

    # ---- data ------------------------------------------------------------------------------

    def upload_dataset(
        self,
        X: Any = None,
        y: Any = None,
        *,
        path: str | Path | None = None,
        target: str | None = None,
        filename: str | None = None,
    ) -> UploadInfo:
        """Upload a dataset and answer its name for dataset.name ("upload:<id>").

        Either arrays `X` (samples first: (n, features) or images (n, h, w) / (n, c, h, w)) and
        `y` (n,), sent exactly as an .npz; or `path` of a .csv (a header row, numeric; `target`
        names the target column, default the last) or an .npz with arrays X and y. The 422s
        name the form fields `file` and `target`; CapacityExceeded past the size or quota."""
        if path is not None:
            if X is not None or y is not None:
                raise TypeError("upload_dataset: give X and y, or path, not both")
            source = Path(path)
            content = source.read_bytes()
            filename = filename or source.name
        else:
            if X is None or y is None:
                raise TypeError("upload_dataset: give X and y (arrays), or path=")
            if target is not None:
                raise TypeError("upload_dataset: target names a CSV column; arrays have y")
            buffer = io.BytesIO()
            np.savez(buffer, X=np.asarray(X), y=np.asarray(y))
            content = buffer.getvalue()
            filename = filename or "arrays.npz"
        form = {"target": target} if target is not None else None
        files = {"file": (filename, content, "application/octet-stream")}
        answer = self.request("POST", "/api/datasets/upload", files=files, data=form)
        return UploadInfo.from_dict(answer.json())

    def uploads(self) -> list[dict[str, Any]]:
        """The stored uploads (GET /api/datasets/uploads' entries: id, name, columns, rows,
        task, classes, bytes, created_at, in_use_by)."""
        return list(self.request("GET", "/api/datasets/uploads").json()["uploads"])

    def delete_upload(self, upload_id: str) -> None:
        """Remove an upload; Conflict (code upload_in_use) while a session uses it."""
        self.request("DELETE", f"/api/datasets/uploads/{upload_id}")

    # ---- experiments -----------------------------------------------------------------------

    def sweep(
        self,
        base_config: dict[str, Any],
        param: str,
        values: Iterable[Any],
        steps: int,
        name: str | None = None,
        keep: bool = True,
    ) -> list[SweepResult]:
        """Train one fresh session per value of `param` (a path into the config such as
        "optimizer.learning_rate", "batch_size" or "layers[0].units") for `steps` steps, in
        order, and answer their results (each evaluated at its last step, so a sweep's numbers
        equal those of the same runs made one by one). keep=False deletes each session after."""
        results = []
        for value in values:
            config = with_value(base_config, param, value)
            session = self.create_session(config, name=f"{name or 'sweep'} {param}={value}")
            result = session.train(steps)
            results.append(SweepResult(value=value, session_id=session.id, result=result))
            if not keep:
                session.delete()
        return results


class Session:
    """One training session on the server. `info` is its latest session document seen (id,
    name, status, step, metrics, config, ...); `refresh()` reads it again."""

    def __init__(self, client: Client, info: dict[str, Any]) -> None:
        self.client = client
        self.id: str = str(info["id"])
        self.info = info

    def __repr__(self) -> str:
        return f"Session(id={self.id!r}, name={self.info.get('name')!r})"

    @property
    def path(self) -> str:
        """The session's REST path, /api/sessions/<id>."""
        return f"/api/sessions/{self.id}"

    @property
    def name(self) -> str:
        """The display name as last seen."""
        return str(self.info.get("name"))

    @property
    def config(self) -> dict[str, Any]:
        """The run configuration as last seen (with hyperparameter changes)."""
        return dict(self.info.get("config") or {})

    def refresh(self) -> dict[str, Any]:
        """Read the session document again (status, step, latest metrics, config)."""
        self.info = self.client.request("GET", self.path).json()
        return self.info

    # ---- training --------------------------------------------------------------------------

    def train(self, steps: int = 1) -> TrainResult:
        """Run exactly `steps` training steps (1-100,000) and wait for them. The metrics are
        evaluated at the last step, so equal configs, seeds and steps give equal numbers.
        Conflict while the session trains in the background; CapacityExceeded when too many
        sessions train at once."""
        # no time limit on the answer: 100,000 steps of a large network may take minutes
        body = {"steps": steps}
        answer = self.client.request("POST", f"{self.path}/step", json=body, timeout=None).json()
        return TrainResult.from_dict(answer)

    def start(self, pace: float | None = None) -> dict[str, Any]:
        """Train in the background until `stop()` (at most `pace` steps per second if given).
        Answers the session document."""
        body = {"pace": pace} if pace is not None else None
        self.info = self.client.request("POST", f"{self.path}/start", json=body).json()
        return self.info

    def stop(self) -> int:
        """Stop background training after the current step and save; answers the step."""
        return int(self.client.request("POST", f"{self.path}/stop").json()["step"])

    def reset(self) -> dict[str, Any]:
        """Back to step 0 with the seed's weights, the history cleared."""
        self.info = self.client.request("POST", f"{self.path}/reset").json()
        return self.info

    def update(self, **hyperparameters: Any) -> int:
        """Change hyperparameters, even while training: learning_rate, batch_size,
        regularization, gradient_clip, momentum, nesterov, beta1, beta2, eps, alpha. Answers
        the step count when they applied: steps after it use the new values (the history's
        "hyperparameters" event carries the same step). ConfigError names a refused field."""
        if not hyperparameters:
            raise TypeError("update: name at least one hyperparameter, e.g. learning_rate=0.1")
        if "name" in hyperparameters:
            raise TypeError("update: the display name is not a hyperparameter; use rename()")
        answer = self.client.request("PATCH", self.path, json=hyperparameters).json()
        self.info = {key: value for key, value in answer.items() if key != "applied_at_step"}
        return int(answer["applied_at_step"])

    def rename(self, name: str) -> None:
        """Give the session a new display name."""
        self.info = self.client.request("PATCH", self.path, json={"name": name}).json()

    def delete(self) -> None:
        """Delete the session with its history and checkpoint (open streams end)."""
        self.client.request("DELETE", self.path)

    # ---- reading ---------------------------------------------------------------------------

    def evaluate(self, split: str = "both") -> Evaluation:
        """Loss and accuracy over the whole "train" and/or "test" split ("both") at the current
        step; allowed while training (it runs between two steps)."""
        answer = self.client.request("POST", f"{self.path}/evaluate", json={"split": split})
        return Evaluation.from_dict(answer.json())

    @overload
    def history(
        self,
        since: int | None = None,
        limit: int | None = None,
        tail: bool = False,
        every: int | None = None,
        max_points: int | None = None,
        as_dataframe: Literal[False] = False,
    ) -> History: ...

    @overload
    def history(
        self,
        since: int | None = None,
        limit: int | None = None,
        tail: bool = False,
        every: int | None = None,
        max_points: int | None = None,
        *,
        as_dataframe: Literal[True],
    ) -> Any: ...

    def history(
        self,
        since: int | None = None,
        limit: int | None = None,
        tail: bool = False,
        every: int | None = None,
        max_points: int | None = None,
        as_dataframe: bool = False,
    ) -> History | Any:
        """The recorded metrics, ascending by step: rows after step `since`, only steps that are
        multiples of `every`, the first `limit` rows (the latest with tail=True), thinned to
        `max_points`. A `History` of columns, or with as_dataframe=True a pandas DataFrame of
        `History.rows()` (one row per step, per-layer statistics as "0.grad_norm" columns;
        needs pandas, which the client does not install)."""
        if as_dataframe:
            pandas = _import_pandas()
        query = {"since": since, "limit": limit, "every": every, "max_points": max_points}
        params: dict[str, Any] = {key: value for key, value in query.items() if value is not None}
        if tail:
            params["tail"] = "true"
        history = History.from_dict(
            self.client.request("GET", f"{self.path}/metrics", params=params).json()
        )
        return pandas.DataFrame(history.rows()) if as_dataframe else history

    def stream(self, types: Iterable[str] | None = None, timeout: float | None = 30.0) -> Stream:
        """Watch the session live over its WebSocket: an iterator of typed frames
        (backprop_lens.frames), only those of `types` if given ("hello", "metrics", "snapshot",
        "status", "event", "error"). `timeout`: seconds to wait for the next frame before
        TimeoutError (None: forever). A refused token raises ApiError (401), an unknown session
        NotFound; once watching, the iteration ends when the server closes the socket (the
        session deleted, this client too slow to read). Close it (or use a with block)."""
        return Stream(self, types, timeout)

    def predict(self, inputs: Any) -> np.ndarray:
        """The network's outputs for `inputs` (samples first), as the session computes them."""
        body = {"inputs": np.asarray(inputs, dtype=float).tolist()}
        answer = self.client.request("POST", f"{self.path}/predict", json=body).json()
        return np.asarray(answer["outputs"], dtype=float)

    def get_weights(self, layout: str = "engine") -> dict[str, np.ndarray]:
        """Every weight and buffer, exactly (read from the .npz download). layout="engine":
        "0.W" (fan_in, units), "0.b", "1.gamma", ...; layout="torch": PyTorch's state_dict
        names and shapes ("0.weight" (units, fan_in), "0.bias", ...)."""
        _check_layout(layout)
        answer = self.client.request("GET", f"{self.path}/weights.npz", params={"layout": layout})
        with np.load(io.BytesIO(answer.content)) as archive:
            return {name: archive[name] for name in archive.files}

    def set_weights(self, weights: dict[str, Any], layout: str = "engine") -> list[str]:
        """Replace every weight (the names and shapes get_weights gives in the same layout;
        batch norm's running statistics may be left out). Answers the names set; ConfigError
        names an array that is missing or does not fit, Conflict while the session trains."""
        _check_layout(layout)
        body = {name: np.asarray(value, dtype=float).tolist() for name, value in weights.items()}
        answer = self.client.request(
            "PUT", f"{self.path}/weights", params={"layout": layout}, json=body
        )
        return list(answer.json()["names"])


class Stream:
    """The frames of one session's WebSocket, as typed frames (an iterator and a context
    manager). Made by `Session.stream()`."""

    def __init__(
        self, session: Session, types: Iterable[str] | None, timeout: float | None
    ) -> None:
        wanted = None if types is None else frozenset(types)
        if wanted is not None and not wanted <= set(FRAME_TYPES):
            unknown = sorted(wanted - set(FRAME_TYPES))
            raise ValueError(f"stream: unknown frame types {unknown}, known: {list(FRAME_TYPES)}")
        self.types = wanted
        self.timeout = timeout
        self.greeted = False  # whether the hello came (the session exists)
        base = session.client.url
        url = "ws" + base[len("http") :] + f"/ws/sessions/{session.id}"
        # No Origin header: the server admits non-browser clients without one (docs/websocket.md);
        # max_size=None: a hello with a long history can pass the library's 1 MiB default.
        # Entered as a context manager, as websockets >= 17.1 wants (and older ones allow).
        self._exit = contextlib.ExitStack()
        self.connection: ClientConnection = self._exit.enter_context(
            connect(url, additional_headers=session.client.headers, max_size=None)
        )

    def __iter__(self) -> Iterator[Frame]:
        return self

    def __next__(self) -> Frame:
        while True:
            try:
                text = self.connection.recv(timeout=self.timeout)
            except ConnectionClosed as closed:
                raise self._ending(closed) from None
            frame = parse_frame(json.loads(text))
            self.greeted = self.greeted or frame.type == "hello"
            if self.types is None or frame.type in self.types:
                return frame

    def _ending(self, closed: ConnectionClosed) -> Exception:
        """What a closed socket means to the iteration (close codes in docs/websocket.md): a
        refused token or an unknown session raise, as their HTTP counterparts would; after the
        hello, any close (the session deleted, this client too slow) ends the iteration."""
        code = closed.rcvd.code if closed.rcvd is not None else None
        reason = closed.rcvd.reason if closed.rcvd is not None else ""
        if code == WS_CLOSE_UNAUTHORIZED:
            return ApiError(401, "unauthorized", reason or "the token is missing or wrong")
        if code == WS_CLOSE_NOT_FOUND and not self.greeted:
            return NotFound(404, "not_found", reason or "no such session")
        return StopIteration()

    def send_command(self, action: str, **fields: Any) -> None:
        """Send a command ("start", "stop", "step", "reset"; docs/websocket.md)."""
        self.connection.send(json.dumps({"type": "command", "action": action, **fields}))

    def close(self) -> None:
        """Close the WebSocket."""
        self._exit.close()

    def __enter__(self) -> Stream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def with_value(config: dict[str, Any], param: str, value: Any) -> dict[str, Any]:
    """A deep copy of `config` with `value` at `param`, a path such as "optimizer.learning_rate"
    or "layers[1].units" (missing objects on the way are created; list items must exist)."""
    parts = _split_path(param)
    result = copy.deepcopy(config)
    node: Any = result
    for here, after in zip(parts, parts[1:], strict=False):
        if isinstance(here, int):
            node = node[here]
        else:
            node = node.setdefault(here, [] if isinstance(after, int) else {})
    node[parts[-1]] = value
    return result


def _split_path(param: str) -> Sequence[str | int]:
    """ "layers[1].units" -> ["layers", 1, "units"]; ValueError for anything that is not one."""
    parts: list[str | int] = []
    position = 0
    for match in _PATH_PART.finditer(param):
        gap = param[position : match.start()]
        if gap not in ("", ".") or (gap == "" and position and match.group(1)):
            break
        parts.append(match.group(1) if match.group(1) else int(match.group(2)))
        position = match.end()
    if not parts or position != len(param) or isinstance(parts[0], int):
        raise ValueError(f'param: expected a path like "optimizer.learning_rate", got {param!r}')
    return parts


def _check_layout(layout: str) -> None:
    if layout not in LAYOUTS:
        raise ValueError(f'layout: expected "engine" or "torch", got {layout!r}')


def _import_pandas() -> Any:
    """pandas, which only as_dataframe=True needs; a clear ImportError without it."""
    try:
        import pandas
    except ImportError as exc:
        raise ImportError(
            "history(as_dataframe=True) needs pandas, which backprop_lens does not install: "
            "pip install pandas (or call history() for plain columns)"
        ) from exc
    return pandas
