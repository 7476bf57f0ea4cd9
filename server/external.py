"""An external session: a training run in someone's own PyTorch script, watched through the
ingest WebSocket (server/routes/ingest.py) instead of trained here.

It answers what an engine session (server/session.py) answers where that makes sense, so the
routes need not tell them apart: its document (with "kind": "external"), /metrics and the
WebSocket stream from its History (thinned, and written to the store by the persister thread
about once a second, as an engine session's, with the latest histograms the script sent), rename
and delete. What needs a trainer here (start, step, reset, weights, traces, predictions,
hyperparameters) answers 409 saying so; the page's controls of the script go through `control`
instead.

Status: "live" while the script is connected, "finished" after it closed its watcher,
"disconnected" when the connection broke (or the server stopped) without that. A script that
reconnects with its session id (the watcher does) continues the same session.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from server.errors import ConflictError, InsufficientStorageError, NotFoundError
from server.history import History
from server.hub import Hub, monotonic
from server.ingest_schema import MetricsFrame, ScriptEvent, SnapshotFrame
from server.session_record import SessionRecord
from server.store import Store, StoreError, utc_now

log = logging.getLogger("backprop_lens.sessions")

HISTORY_POINTS = 2000  # points of history in a WebSocket hello frame (as server/session.py)
CONTROL_ACTIONS = ("pause", "resume", "stop", "learning_rate")


class EngineOnlyError(ConflictError):
    """The request needs a trainer in this server; an external session's script trains it."""

    code = "engine_only"


class ScriptNotConnectedError(ConflictError):
    """A control for a script that is not connected (finished or disconnected)."""

    code = "script_not_connected"


class Link:
    """The event loop's end of one ingest connection: frames for the script, and its closing,
    handed over from any thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=100)

    def send(self, frame: dict[str, Any]) -> None:
        """Queue a frame for the script (dropped when 100 wait already: it does not read)."""
        self.loop.call_soon_threadsafe(self._put, frame)

    def close(self, code: int, reason: str) -> None:
        """Close the connection with `code`."""
        self.loop.call_soon_threadsafe(
            self._put, {"type": "_close", "code": code, "reason": reason}
        )

    def _put(self, frame: dict[str, Any]) -> None:
        if not self.outbox.full() or frame["type"] == "_close":
            if self.outbox.full():
                self.outbox.get_nowait()
            self.outbox.put_nowait(frame)


class ExternalSession:
    """One watched run: its record, History, latest histograms and the live connection."""

    kind = "external"

    def __init__(
        self,
        record: SessionRecord,
        history: History,
        store: Store,
        hub: Hub | None,
        snapshot: dict[str, Any] | None = None,
    ) -> None:
        self.id = record.id
        self._record = record  # guarded by _state
        self._history = history
        self._store = store
        self._hub = hub
        self._state = threading.Lock()
        self._persist_lock = threading.Lock()
        self._rows: list[dict[str, Any]] = []  # recorded, not yet written
        self._events: list[dict[str, Any]] = []
        self._dirty = False  # the record changed since it was written
        self._link: Link | None = None  # the script's connection while it is live
        self._snapshot = snapshot  # the latest histograms frame (saved, when loaded from the store)
        self._snapshot_dirty = False  # _snapshot changed since it was written
        self._deleted = False
        self.last_used = time.monotonic()  # when a request last found it (idle unloading)

    # ---- what clients see ---------------------------------------------------------------------

    def public(self) -> dict[str, Any]:
        """The SessionPublic document."""
        with self._state:
            return self._record.public()

    @property
    def busy(self) -> str | None:
        """ "live" while the script is connected (the persister then writes it), else None."""
        return "live" if self._link is not None else None

    def columns(self, **query: Any) -> dict[str, Any]:
        """The recorded history as /metrics columns (History.columns' since, limit, tail...)."""
        return self._history.columns(**query)

    def hello(self) -> dict[str, Any]:
        """The first WebSocket frame: the session, its topology and its history (thinned)."""
        public = self.public()
        return {
            "type": "hello",
            "session": public,
            "config": public["config"],
            "history": self.columns(max_points=HISTORY_POINTS),
        }

    def latest_snapshot(self) -> dict[str, Any] | None:
        """The latest histograms the script sent (None before any)."""
        return self._snapshot

    # ---- what only engine sessions do ---------------------------------------------------------

    def _refuse(self, what: str) -> ConflictError:
        return EngineOnlyError(
            f"session {self.id} is an external run (its own PyTorch script trains it): {what} "
            "only for sessions trained by this server"
        )

    def call(self, fn: Any, timeout: float = 0.0) -> Any:
        """Engine sessions run fn(trainer); an external one has no trainer here (409)."""
        raise self._refuse("traces, predictions, decision maps, weights and snapshots exist")

    def start(self, pace: float | None = None) -> dict[str, Any]:
        raise self._refuse("start exists")

    def step(self, steps: int) -> Any:
        raise self._refuse("step exists")

    def reset(self) -> dict[str, Any]:
        raise self._refuse("reset exists")

    def set_weights(self, weights: dict[str, Any]) -> list[str]:
        raise self._refuse("new weights exist")

    def update_hyperparameters(self, update: Any) -> dict[str, Any]:
        raise self._refuse(
            "hyperparameter changes exist; POST /control with "
            '{"action": "learning_rate", "learning_rate": x} asks the script for a new rate'
        )

    def stop(self, timeout: float = 0.0) -> dict[str, Any]:
        raise self._refuse(
            'stop exists; POST /control with {"action": "pause"} or {"action": "stop"} asks '
            "the script"
        )

    def request_stop(self) -> None:
        """Server shutdown: the connection goes with it, so the run is disconnected."""
        self.detach(finished=False)

    def worker(self) -> None:
        """No thread of this server trains it."""
        return None

    @property
    def loaded(self) -> bool:
        """Always in memory: what it holds is its thinned history (a few thousand rows)."""
        return True

    def unload(self) -> bool:
        """Nothing to unload (no trainer, no checkpoint): False, as for a session in use."""
        return False

    # ---- the script's connection --------------------------------------------------------------

    def attach(self, link: Link) -> dict[str, Any]:
        """The script connected (or reconnected): the session is live. ConflictError when
        another connection feeds it already."""
        with self._state:
            if self._deleted:
                raise NotFoundError(f"no session with id {self.id!r}")
            if self._link is not None:
                raise ConflictError(f"session {self.id} is live on another connection already")
            self._link = link
            self._set_status_locked("live", None)
            return self._record.public()

    def detach(self, finished: bool) -> None:
        """The connection ended: finished when the script said so, else disconnected."""
        with self._state:
            if self._link is None:
                return
            self._link = None
            if finished:
                self._set_status_locked("finished", None)
            else:
                self._set_status_locked(
                    "disconnected",
                    f"the script's connection ended at step {self._record.step} without "
                    "finishing; it continues this session when it reconnects",
                )

    def ingest_metrics(self, frame: MetricsFrame) -> None:
        """Record one logged step and send it to the page."""
        row = frame.row()
        summary = {key: value for key, value in row.items() if key != "layers"}
        with self._state:
            self._record.step = row["step"]
            self._record.epoch = row["epoch"]
            self._record.metrics = summary
            self._rows.append(row)
            self._dirty = True
        self._history.append(row)
        if self._hub is not None:
            self._hub.publish(self.id, "metrics", {"type": "metrics", **row, "t": monotonic()})

    def finish(self, step: int | None) -> None:
        """The script closed its watcher after `step` completed steps (when it said)."""
        if step is not None:
            with self._state:
                self._record.step = max(self._record.step, step)
                self._dirty = True

    def ingest_snapshot(self, frame: SnapshotFrame) -> None:
        """Keep the latest histograms and send them to the page (latest wins there too)."""
        snapshot = {"type": "snapshot", **frame.model_dump(exclude={"type"})}
        with self._state:
            self._snapshot = snapshot
            self._snapshot_dirty = True
        if self._hub is not None:
            self._hub.publish(self.id, "snapshot", snapshot)

    def ingest_event(self, event: ScriptEvent) -> None:
        """Record an event the script reported (a control it applied)."""
        self._emit(event.model_dump(exclude_none=True))

    def control(self, action: str, learning_rate: float | None = None) -> dict[str, Any]:
        """Send a control to the script (409 when it is not connected); the script applies it
        at its next logged step and reports that as an event."""
        if action not in CONTROL_ACTIONS:
            raise ValueError(
                f"action: expected one of {', '.join(CONTROL_ACTIONS)}, got {action!r}"
            )
        with self._state:
            link = self._link
            status = self._record.status
        if link is None:
            raise ScriptNotConnectedError(
                f"session {self.id} is {status}: its script is not connected to take controls"
            )
        frame: dict[str, Any] = {"type": "control", "action": action}
        if action == "learning_rate":
            frame["learning_rate"] = learning_rate
        link.send(frame)
        return {"sent": frame, "session": self.public()}

    # ---- changes ------------------------------------------------------------------------------

    def rename(self, name: str) -> dict[str, Any]:
        """Give the session a new display name."""
        with self._state:
            if self._deleted:
                raise NotFoundError(f"no session with id {self.id!r}")
            self._record.name = name
            self._record.updated_at = utc_now()
            self._dirty = True
            self._publish_status_locked()
        self.persist()
        return self.public()

    def delete(self) -> None:
        """Erase the session; a connected script is told (close 4404) and stops sending."""
        with self._state:
            self._deleted = True
            link, self._link = self._link, None
        if link is not None:
            link.close(4404, "session deleted")
        with self._persist_lock:
            self._store.delete_session(self.id)

    def _set_status_locked(self, status: str, message: str | None) -> None:
        self._record.status = status
        self._record.message = message
        self._record.updated_at = utc_now()
        self._dirty = True
        self._publish_status_locked()

    def _publish_status_locked(self) -> None:
        if self._hub is not None:
            self._hub.publish(
                self.id, "status", {"type": "status", "session": self._record.public()}
            )

    def _emit(self, event: dict[str, Any]) -> None:
        with self._state:
            self._events.append(event)
        self._history.add_event(event)
        if self._hub is not None:
            self._hub.publish(self.id, "event", {"type": "event", "event": event})

    # ---- persistence --------------------------------------------------------------------------

    def persist(self, everything: bool = True) -> bool:
        """Write the rows, events and record changes recorded since the last write. False when
        the write failed: what was not written is kept for the next attempt."""
        with self._persist_lock:
            with self._state:
                rows, self._rows = self._rows, []
                events, self._events = self._events, []
                dirty, self._dirty = self._dirty, False
                fields = self._record.stored_fields()
                # only the latest histograms are kept: written at most once a persister round
                snapshot = self._snapshot if self._snapshot_dirty else None
                self._snapshot_dirty = False
            if self._deleted:
                return True
            try:
                if rows:
                    self._store.append_metrics(self.id, rows)
                    rows = []
                if events:
                    self._store.append_events(self.id, events)
                    events = []
                if dirty:
                    self._store.update_session(self.id, **fields)
                    dirty = False
                if snapshot is not None:
                    self._store.save_snapshot(self.id, snapshot["step"], snapshot)
                    snapshot = None
            except StoreError as exc:
                log.error("session %s: cannot save: %s", self.id, exc)
                with self._state:
                    self._rows[:0] = rows
                    self._events[:0] = events
                    self._dirty = self._dirty or dirty
                    self._snapshot_dirty = self._snapshot_dirty or snapshot is not None
                    self._record.save_error = f"cannot save the run's history: {exc}"
                return False
            with self._state:
                self._record.save_error = None
            return True

    def ensure_saved(self) -> None:
        """507 unless everything recorded is written (it is tried again first)."""
        if not self.persist():
            with self._state:
                raise InsufficientStorageError(self._record.save_error or "cannot save")


def rate_limiter(rate: float, burst: float) -> Callable[[], bool]:
    """A token bucket: the returned function answers whether one more frame fits now."""
    tokens = burst
    last = time.monotonic()

    def take() -> bool:
        nonlocal tokens, last
        now = time.monotonic()
        tokens = min(burst, tokens + (now - last) * rate)
        last = now
        if tokens >= 1.0:
            tokens -= 1.0
            return True
        return False

    return take
