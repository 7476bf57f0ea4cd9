"""The watcher's side of the ingest WebSocket: a background sender thread with a bounded buffer.

The training loop only ever puts frames into memory (`Sender.put_metrics`, `put_snapshot`,
`put_event`); a daemon thread connects, sends and reconnects. Nothing here raises into the
caller: a server that is down, slow or gone mid-run costs the training loop one lock and one
deque append per logged step, and `close` returns within its timeout whatever the server does.

Wire (server/external.py validates it): the first frame is {"type": "topology", ...} (with
"resume": <session id> after a reconnect, so the run stays one session); the server answers
{"type": "session", "session": {...}} or {"type": "error", "message"} and closes. Then
"metrics" frames (oldest dropped first when the buffer is full, the count carried in their
"dropped"), "snapshot" frames (the latest wins), "event" frames and, from close, one
{"type": "finish"}. The server may send {"type": "control", "action": ...} at any time.

Every FLUSH_INTERVAL the thread sends what gathered as one message, a JSON array of frames
(split where a message would pass MAX_FRAME_BYTES): one message a tenth of a second instead of
one per logged step, so the thread wakes, encodes and takes the interpreter lock from the
training loop about ten times a second whatever the logging rate (server/routes/ingest.py
takes an array as its frames in order).
"""

from __future__ import annotations

import contextlib
import logging
import random
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

log = logging.getLogger("backprop_lens.watch")

WIRE_VERSION = 1
TOKEN_HEADER = "X-Backprop-Lens-Token"  # as server/guards/settings.py reads it
INGEST_PATH = "/ws/ingest"
BUFFER_FRAMES = 1000  # metrics frames kept while the server cannot take them
SEND_RATE = 100.0  # metrics frames per second at most (the server refuses more than 200)
FLUSH_INTERVAL = 0.1  # seconds between two sends: what gathered meanwhile goes as one message
BACKOFF_START = 0.5  # seconds before the first reconnect; doubles up to BACKOFF_MAX
BACKOFF_MAX = 15.0
OPEN_TIMEOUT = 5.0  # seconds for the TCP and WebSocket handshake
ACK_TIMEOUT = 10.0  # seconds for the server's answer to the topology frame
MAX_FRAME_BYTES = 1024 * 1024  # the server closes the socket on a larger message
# Close codes after which reconnecting cannot help: bad token (4401), refused by Origin (403
# arrives as a refused handshake), a session deleted from the page (4404), a topology the
# server refused (4422), the server's session cap (4409).
FINAL_CLOSE_CODES = frozenset({4401, 4403, 4404, 4409, 4422})


def ingest_url(url: str) -> str:
    """The ingest WebSocket URL of a server's base URL: http://h:p -> ws://h:p/ws/ingest."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme)
    if scheme is None or not parts.netloc:
        raise ValueError(
            f"url: expected http(s)://host:port of a Backprop Lens server, got {url!r}"
        )
    path = parts.path.rstrip("/")
    if not path.endswith(INGEST_PATH):
        path += INGEST_PATH
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))


@dataclass(frozen=True)
class Control:
    """What the page asked of the training script, as last heard from the server."""

    seq: int = 0  # how many control frames arrived; a change means there is news
    paused: bool = False
    stop: bool = False
    learning_rate: float | None = None  # the latest rate asked for, None: never asked


class _GiveUp(Exception):
    """Reconnecting cannot help (bad token, deleted session, refused topology)."""


class Sender:
    """A daemon thread that keeps one ingest connection and sends what the watcher buffered."""

    def __init__(
        self,
        url: str,
        token: str | None,
        topology: dict[str, Any],
        *,
        buffer_frames: int = BUFFER_FRAMES,
        send_rate: float = SEND_RATE,
    ) -> None:
        self._url = ingest_url(url)
        self._headers = {TOKEN_HEADER: token} if token else {}
        self._topology = topology
        self._per_flush = max(1, round(send_rate * FLUSH_INTERVAL))  # metrics per message
        self._metrics: deque[dict[str, Any]] = deque()
        self._buffer_frames = buffer_frames
        self._snapshot: dict[str, Any] | None = None  # latest wins
        self._events: deque[dict[str, Any]] = deque(maxlen=100)
        self._lock = threading.Lock()  # guards the three above and `dropped`
        self._closing = threading.Event()
        self._ws: ClientConnection | None = None
        self._warned = False
        self._warned_size = False  # a frame too large to send was reported
        self.dropped = 0  # metrics frames dropped because the buffer was full
        self.sent = 0  # metrics frames the server took
        self.session_id: str | None = None
        self.connected = False
        self.gave_up: str | None = None  # why the sender stopped trying, if it did
        self.control = Control()
        self.final_step: int | None = None  # the run's last completed step, told at finish
        self._thread = threading.Thread(target=self._run, name="backprop-lens-sender", daemon=True)
        self._thread.start()

    # ---- the training thread ------------------------------------------------------------------

    def put_metrics(self, frame: dict[str, Any]) -> None:
        """Queue a metrics frame; the oldest is dropped (and counted) when the buffer is full."""
        with self._lock:
            if len(self._metrics) >= self._buffer_frames:
                self._metrics.popleft()
                self.dropped += 1
            self._metrics.append(frame)

    def put_snapshot(self, frame: dict[str, Any]) -> None:
        """Queue a snapshot frame in place of any not sent yet."""
        with self._lock:
            self._snapshot = frame

    def put_event(self, event: dict[str, Any]) -> None:
        """Queue an event (e.g. a control applied at a step)."""
        with self._lock:
            self._events.append({"type": "event", "event": event})

    def close(self, timeout: float = 3.0) -> None:
        """Flush what the server takes within `timeout` seconds, say the run finished, stop.
        Returns within about `timeout` seconds whatever the server does."""
        deadline = time.monotonic() + timeout
        self._closing.set()
        self._thread.join(max(0.0, deadline - time.monotonic() - 0.5))
        if self._thread.is_alive():  # stuck in a send to a server that does not read
            ws = self._ws
            if ws is not None:
                with contextlib.suppress(OSError):
                    ws.socket.shutdown(socket.SHUT_RDWR)
            self._thread.join(max(0.0, deadline - time.monotonic()))

    # ---- the sender thread --------------------------------------------------------------------

    def _run(self) -> None:
        delay = BACKOFF_START
        while not self._closing.is_set():
            try:
                self._connection()
                delay = BACKOFF_START
            except _GiveUp as exc:
                self.gave_up = str(exc)
                log.warning("backprop_lens: stopped sending to %s: %s", self._url, exc)
                with self._lock:
                    self._metrics.clear()
                return
            except Exception as exc:  # anything at all: the training loop must not see it
                if not self._warned:
                    self._warned = True
                    log.warning(
                        "backprop_lens: cannot reach %s (%s); training goes on, retrying",
                        self._url,
                        exc,
                    )
            if self._closing.is_set():
                return
            self._closing.wait(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, BACKOFF_MAX)

    def _connection(self) -> None:
        """One connection: handshake, then send until closing (raises when it breaks)."""
        try:
            ws = connect(
                self._url,
                additional_headers=self._headers,
                open_timeout=OPEN_TIMEOUT,
                close_timeout=1.0,
                proxy=None,
                compression=None,  # localhost mostly; deflate would cost CPU the training needs
                max_size=MAX_FRAME_BYTES,
            )
        except InvalidStatus as exc:
            if exc.response.status_code in (401, 403):
                raise _GiveUp(f"the server refused the connection ({exc})") from None
            raise
        with ws:  # closes it however the connection ends
            self._ws = ws
            try:
                self._handshake(ws)
                self.connected = True
                self._warned = False
                self._pump(ws)
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd is not None else None
                if code in FINAL_CLOSE_CODES:
                    reason = exc.rcvd.reason if exc.rcvd is not None else ""
                    if code == 4401:  # the server's words fit a browser too; say the script's way
                        reason += "; pass token=... to watch() (the token the server printed)"
                    raise _GiveUp(f"closed with code {code}: {reason}") from None
                raise
            finally:
                self.connected = False
                self._ws = None

    def _handshake(self, ws: ClientConnection) -> None:
        hello = dict(self._topology)
        if self.session_id is not None:
            hello["resume"] = self.session_id
        ws.send(orjson.dumps(hello).decode())
        reply = orjson.loads(ws.recv(timeout=ACK_TIMEOUT))
        if reply.get("type") == "error":
            raise _GiveUp(f"the server refused the run: {reply.get('message')}")
        self.session_id = str(reply["session"]["id"])

    def _pump(self, ws: ClientConnection) -> None:
        """Every FLUSH_INTERVAL, send what gathered (metrics at most SEND_RATE per second) as
        one message, until closing; then the rest and the finish frame."""
        while True:
            closing = self._closing.is_set()
            with self._lock:
                out: list[dict[str, Any]] = list(self._events)
                self._events.clear()
                if self._snapshot is not None:
                    out.append(self._snapshot)
                    self._snapshot = None
                metrics = self._metrics
                take = len(metrics) if closing else min(len(metrics), self._per_flush)
                out += [{**metrics.popleft(), "dropped": self.dropped} for _ in range(take)]
            if closing and not out:
                break
            self.sent += self._send(ws, out)
            self._read_controls(ws)
            if not closing:
                self._closing.wait(FLUSH_INTERVAL)
        ws.send(orjson.dumps({"type": "finish", "step": self.final_step}).decode())
        ws.close()

    def _send(self, ws: ClientConnection, frames: list[dict[str, Any]]) -> int:
        """`frames` as JSON arrays of at most MAX_FRAME_BYTES each; a frame larger than that
        alone (the histograms of a model with thousands of layers) is left out, once said.
        Returns how many metrics frames went."""
        batch: list[bytes] = []
        metrics = 0
        size = 2  # the brackets
        for frame in frames:
            encoded = orjson.dumps(frame)
            if len(encoded) + 2 > MAX_FRAME_BYTES:
                if not self._warned_size:
                    self._warned_size = True
                    log.warning(
                        "backprop_lens: a %s frame of %d bytes passes the server's %d-byte "
                        "limit and is not sent",
                        frame.get("type"),
                        len(encoded),
                        MAX_FRAME_BYTES,
                    )
                continue
            if batch and size + len(encoded) + 1 > MAX_FRAME_BYTES:
                ws.send(b"[" + b",".join(batch) + b"]")
                batch, size = [], 2
            batch.append(encoded)
            size += len(encoded) + 1
            metrics += frame.get("type") == "metrics"
        if batch:
            ws.send(b"[" + b",".join(batch) + b"]")
        return metrics

    def _read_controls(self, ws: ClientConnection) -> None:
        """Take the control frames the server sent, without waiting."""
        while True:
            try:
                raw = ws.recv(timeout=0)
            except TimeoutError:
                return
            try:
                frame = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            if isinstance(frame, dict) and frame.get("type") == "control":
                with self._lock:
                    self.control = apply_control(self.control, frame)

    def release_pause(self) -> Control:
        """Forget the page's pause (the watcher resumed without it); the control state now."""
        with self._lock:
            self.control = replace(self.control, paused=False)
            return self.control


def apply_control(state: Control, frame: dict[str, Any]) -> Control:
    """The control state after one {"type": "control", "action": ...} frame."""
    action = frame.get("action")
    seq = state.seq + 1
    if action == "pause":
        return replace(state, seq=seq, paused=True)
    if action == "resume":
        return replace(state, seq=seq, paused=False)
    if action == "stop":
        return replace(state, seq=seq, stop=True, paused=False)
    if action == "learning_rate":
        rate = frame.get("learning_rate")
        if isinstance(rate, int | float) and not isinstance(rate, bool) and rate > 0:
            return replace(state, seq=seq, learning_rate=float(rate))
    return state
