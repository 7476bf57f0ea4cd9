"""Training sessions: one Trainer, its History and a worker thread each, owned by SessionManager.

Threads. A session's trainer is touched by one thread at a time, guarded by `Session._trainer_lock`:
while it trains (start) or steps (step), its worker thread holds the lock for the whole run and
everything else that needs the trainer (PATCH, trace, predict, snapshot, weights...) is queued
with `Session.call` and run by the worker between two steps, inside `on_report`. When no worker
runs, `call` takes the lock and runs the function in the calling thread. Training never runs on
the event loop, and the event loop never waits for a lock the worker holds.

Persistence. While training, the worker takes a checkpoint (`trainer.checkpoint()`) about every
second (every 3 s when checkpoints are costly) and hands it to the persister thread together with
the history rows and events recorded up to that step, so the database never holds history ahead
of its checkpoint; the persister writes them in one go. Every stop, step, reset, weight or
hyperparameter change is written at once. On start-up the store marks sessions left "running"
as "interrupted"; sessions are loaded lazily (Trainer rebuilt from the stored config, checkpoint
restored) the first time a request needs them.

Status: idle (step 0, not training), running, paused (stopped with step > 0), diverged,
stopped_early, interrupted (the server went away while it trained). Each change is written to the
store and sent to WebSocket clients as a "status" frame.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from pydantic import ValidationError

from engine.config import (
    ConfigError,
    HyperparameterUpdate,
    RunConfig,
    config_to_dict,
    errors_from_validation,
    parse_config,
)
from engine.inspect import class_map_count
from server.history import History
from server.hub import Hub, monotonic
from server.limits import MAX_SESSIONS
from server.store import Store, StoreError, utc_now

if TYPE_CHECKING:
    from engine.trainer import Trainer

log = logging.getLogger("backprop_lens.sessions")

T = TypeVar("T")

CALL_TIMEOUT = 120.0  # seconds a queued call may wait for the worker before giving up
STOP_TIMEOUT = 60.0  # seconds /stop waits for the worker to finish its step
REPORT_INTERVAL = 1 / 30  # seconds between the trainer's reports (and metrics frames)
SNAPSHOT_INTERVAL = 0.2  # seconds between snapshots while somebody watches (5/s at most,
# fewer when they are costly to build or, with many clients, to send)
SNAPSHOT_BUDGET = 0.03  # snapshots may take at most this share of the training thread
# snapshot bytes sent per second to all clients together: one client gets 5/s of any Playground
# -sized net; 20 clients of 2-8-8-1 get ~0.5-1/s each, of 2-64-64-64-1 ~0.5/s. The earlier
# bench/stream.py (connect/disconnect rounds) gave 2-8-8-1 (c)/(b) 0.84-0.94 at 10 MB/s and
# 0.86-0.97 at 4 MB/s, a difference within its noise (its A/A runs gave 0.92-0.97)
SNAPSHOT_BYTES_PER_SECOND = 4e6
SNAPSHOT_GRID_VALUES = 32_000  # values in a streamed snapshot's grids (output, inputs, neurons)
SNAPSHOT_GRID_RANGE = (12, 40)  # resolution of a streamed snapshot's grid, coarsest to finest
CHECKPOINT_MIN_INTERVAL = 1.0  # seconds between checkpoints while training, when cheap
CHECKPOINT_MAX_INTERVAL = 3.0  # ... and at most this, however costly
PERSIST_INTERVAL = 1.0  # seconds the persister sleeps between rounds
HISTORY_POINTS = 2000  # points of history in a WebSocket hello frame


# ----------------------------------------------------------------------------- errors


class SessionError(Exception):
    """A request the sessions cannot serve; `status_code` is the HTTP answer."""

    status_code = 400


class NotFoundError(SessionError):
    """No session (or upload) with that id."""

    status_code = 404


class ConflictError(SessionError):
    """The session is not in a state that allows the request (e.g. start while running)."""

    status_code = 409


class TooManyTrainingError(SessionError):
    """Starting would make more sessions train at once than --max-training allows."""

    status_code = 429


class BadRequestError(SessionError):
    """The request does not fit this session (e.g. weights of the wrong shape)."""

    status_code = 400


def _load_trainer_class() -> type[Trainer]:
    """engine.trainer.Trainer, imported on first use."""
    from engine.trainer import Trainer

    return Trainer


# ----------------------------------------------------------------------------- session


class Session:
    """One training run: its Trainer (built lazily), History, worker thread and stop Event."""

    def __init__(self, manager: SessionManager, record: dict[str, Any], history: History) -> None:
        self.manager = manager
        self.id: str = record["id"]
        self.name: str = record.get("name") or record["id"]
        self.created_at: str = record["created_at"]
        self.updated_at: str = record["updated_at"]
        self.status: str = record["status"]
        self.message: str | None = record.get("message")
        self.step: int = int(record.get("step") or 0)
        self.epoch: int = int(record.get("epoch") or 0)
        self.best_step: int | None = record.get("best_step")
        self.metrics: dict[str, Any] | None = record.get("metrics")
        self.config_doc: dict[str, Any] = record["config"]  # the run configuration document
        self.pace: float | None = None  # steps per second of the current run; None: full speed
        self.history = history  # guarded by _hist_lock
        self.grid_resolution = snapshot_grid_resolution(self.config_doc)  # of streamed snapshots
        self.deleted = False

        self._trainer: Trainer | None = None
        self._checkpoint: tuple[int, bytes] | None = None  # to restore when the trainer is built
        self._trainer_lock = threading.Lock()  # held by whoever uses the trainer
        self._state = threading.Lock()  # guards the fields above and the buffers below
        self._hist_lock = threading.Lock()
        self._persist_lock = threading.Lock()  # one writer of this session's rows at a time
        self._busy: str | None = None  # "train"/"step" while a worker runs, "reset"/"weights"
        self._stop = threading.Event()  # set to stop the worker after its current step
        self._thread: threading.Thread | None = None
        self._done: Future[dict[str, Any]] | None = None  # result of the current worker run
        self._pending: list[tuple[Callable[[Trainer], Any], Future[Any]]] = []  # calls queued
        # Persistence buffers: "new" waits for the next checkpoint, "ready" may be written.
        self._rows_new: list[dict[str, Any]] = []
        self._events_new: list[dict[str, Any]] = []
        self._rows_ready: list[dict[str, Any]] = []
        self._events_ready: list[dict[str, Any]] = []
        self._ckpt_ready: tuple[int, bytes] | None = None
        self._ckpt_fields: dict[str, Any] | None = None  # step, epoch, metrics of the last one
        self._record_dirty = False
        # Worker-thread timers.
        self._next_checkpoint = 0.0
        self._next_snapshot = 0.0

    # ---- public view ------------------------------------------------------------------------

    def public(self) -> dict[str, Any]:
        """The SessionPublic document."""
        with self._state:
            return self._public_unlocked()

    def _public_unlocked(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "step": self.step,
            "epoch": self.epoch,
            "metrics": self.metrics,
            "config": self.config_doc,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "message": self.message,
            "best_step": self.best_step,
            "pace": self.pace if self._busy == "train" and self.status == "running" else None,
        }

    @property
    def busy(self) -> str | None:
        """What occupies the trainer: "train", "step", "reset", "weights" or None."""
        return self._busy

    def columns(
        self, since: int | None = None, limit: int | None = None, max_points: int | None = None
    ) -> dict[str, Any]:
        """The recorded history as /metrics columns."""
        with self._hist_lock:
            return self.history.columns(since=since, limit=limit, max_points=max_points)

    def hello(self) -> dict[str, Any]:
        """The first WebSocket frame: the session, its config and its history (thinned)."""
        public = self.public()
        return {
            "type": "hello",
            "session": public,
            "config": public["config"],
            "history": self.columns(max_points=HISTORY_POINTS),
        }

    # ---- using the trainer ------------------------------------------------------------------

    def _ensure_trainer(self) -> Trainer:
        """The trainer, built from the config and the checkpoint on first use (lock held)."""
        if self._trainer is not None:
            return self._trainer
        trainer_class = _load_trainer_class()
        try:
            trainer = trainer_class(self.config_doc, uploads=self.manager.load_upload)
        except ConfigError as exc:
            raise ConflictError(
                f"session {self.id} cannot be rebuilt from its stored config: {exc}"
            ) from exc
        if self._checkpoint is not None:
            step, blob = self._checkpoint
            try:
                trainer.restore(blob)
            except (ValueError, KeyError, OSError) as exc:
                log.error(
                    "session %s: cannot restore checkpoint of step %d: %s", self.id, step, exc
                )
            self._checkpoint = None
        with self._state:
            self.step = int(trainer.step)
            self.epoch = int(trainer.epoch)
        self._trainer = trainer
        return trainer

    def call(self, fn: Callable[[Trainer], T], timeout: float = CALL_TIMEOUT) -> T:
        """Run fn(trainer) in the thread that owns the trainer now; return its result.

        Blocks the calling thread (never call it on the event loop). While a worker trains, fn
        waits for the next report (at most ~1/30 s plus one step)."""
        while True:
            with self._state:
                if self.deleted:
                    raise NotFoundError(f"no session with id {self.id!r}")
                if self._busy is not None:
                    future: Future[T] = Future()
                    self._pending.append((fn, future))
                    break
            if self._trainer_lock.acquire(timeout=0.02):
                try:
                    return fn(self._ensure_trainer())
                finally:
                    self._trainer_lock.release()
        try:
            return future.result(timeout=timeout)
        except FutureTimeout:
            raise ConflictError(
                f"session {self.id} did not reach a step boundary within {timeout:g} s"
            ) from None

    def run_exclusive(self, fn: Callable[[Trainer], T]) -> T:
        """Run fn(trainer) in this thread after the manager marked the session busy; then run
        the calls queued meanwhile and free the session."""
        with self._trainer_lock:
            trainer: Trainer | None = None
            try:
                trainer = self._ensure_trainer()
                return fn(trainer)
            finally:
                while True:
                    self._run_pending_or_release(trainer)
                    if self._busy is None:
                        break

    def _run_pending(self, trainer: Trainer) -> None:
        """Run the queued calls (worker thread, between steps)."""
        with self._state:
            if not self._pending:
                return
            items, self._pending = self._pending, []
        for fn, future in items:
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(trainer))
            except BaseException as exc:  # handed to the caller, who re-raises it
                future.set_exception(exc)

    # ---- worker -----------------------------------------------------------------------------

    def _begin(
        self, kind: str, steps: int | None, status: str | None = None, pace: float | None = None
    ) -> Future[dict[str, Any]]:
        """Mark busy, set `status` and start the worker thread (the caller holds the manager
        lock and built the trainer); `pace` caps the steps per second."""
        self._stop.clear()
        done: Future[dict[str, Any]] = Future()
        now = time.monotonic()
        self._next_checkpoint = now + CHECKPOINT_MIN_INTERVAL
        self._next_snapshot = now
        with self._state:
            self._busy = kind
            self.pace = pace
            self._done = done
        if status is not None:  # after _busy, so the status frame shows the pace
            self._set_status(status, None)
        with self._state:
            thread = threading.Thread(
                target=self._work, args=(steps, done, pace), name=f"train-{self.id}", daemon=True
            )
            self._thread = thread
            thread.start()
        return done

    def worker(self) -> threading.Thread | None:
        """The thread of the current (or last) run."""
        with self._state:
            return self._thread

    def _work(self, steps: int | None, done: Future[dict[str, Any]], pace: float | None) -> None:
        """The worker thread: train, then checkpoint, report the final state and hand over."""
        outcome: str | None = None
        error: BaseException | None = None
        status = self.status
        try:
            with self._trainer_lock:
                trainer = self._trainer
                try:
                    try:
                        if trainer is None:
                            trainer = self._ensure_trainer()
                        outcome = trainer.train(
                            steps=steps,
                            on_report=self._on_report,
                            should_stop=self._stop.is_set,
                            report_interval=REPORT_INTERVAL,
                            pace=pace,
                        )
                    except Exception as exc:  # an engine failure must not kill the server
                        log.exception("session %s: training failed", self.id)
                        error = exc
                    if trainer is not None:
                        self._after_run(trainer)
                    status, message = self._final_status(outcome, error)
                    self._set_status(status, message)
                    self.manager.persist(self)
                finally:
                    while True:  # queued calls run here, then the session is free
                        self._run_pending_or_release(trainer)
                        if self._busy is None:
                            break
        finally:
            if not done.done():
                done.set_result({"outcome": outcome, "status": status})

    def _run_pending_or_release(self, trainer: Trainer | None) -> None:
        with self._state:
            if not self._pending:
                self._busy = None
                return
        if trainer is not None:
            self._run_pending(trainer)
        else:
            with self._state:
                items, self._pending = self._pending, []
            for _, future in items:
                future.set_exception(ConflictError(f"session {self.id} has no trainer"))

    def _after_run(self, trainer: Trainer) -> None:
        """Checkpoint and publish the final state of a run (worker thread, lock held)."""
        try:
            self._take_checkpoint(trainer)
        except Exception:  # keep the session usable; the previous checkpoint stays
            log.exception("session %s: checkpoint failed", self.id)
        with self._state:
            self.step = int(trainer.step)
            self.epoch = int(trainer.epoch)
            self.best_step = trainer.best_step
        hub = self.manager.hub
        if hub is not None and hub.viewers(self.id):
            self._publish_snapshot(trainer)

    def _final_status(
        self, outcome: str | None, error: BaseException | None
    ) -> tuple[str, str | None]:
        """The status after a worker run ended with `outcome`."""
        if error is not None:
            return self._idle_status(), f"training stopped by an error: {error}"
        if outcome == "diverged":
            reason = self._trainer.diverged if self._trainer is not None else None
            return "diverged", reason or "the loss became NaN or infinite"
        if outcome == "early_stopped":
            best = self.best_step
            where = f"; best test loss at step {best}" if best is not None else ""
            return "stopped_early", f"the test loss stopped improving{where}"
        if self.manager.shutting_down and outcome == "stopped":
            return "interrupted", f"the server shut down at step {self.step}; start resumes"
        return self._idle_status(), None

    def _idle_status(self) -> str:
        return "paused" if self.step > 0 else "idle"

    def _on_report(self, report: Any) -> None:
        """Called by trainer.train in the worker thread about 30 times a second."""
        trainer = self._trainer
        if trainer is None:  # cannot happen: train() runs on the built trainer
            return
        row = report.to_dict()
        events = row.pop("events", None) or []
        summary = {key: value for key, value in row.items() if key != "layers"}
        now = time.monotonic()
        with self._state:
            self.step = int(row["step"])
            self.epoch = int(row["epoch"])
            self.best_step = trainer.best_step
            self.metrics = summary
            self._rows_new.append(row)
            self._events_new.extend(events)
        with self._hist_lock:
            self.history.append(row)
            for event in events:
                self.history.add_event(event)
        hub = self.manager.hub
        if hub is not None and hub.viewers(self.id):
            hub.publish(self.id, "metrics", {"type": "metrics", **row, "t": monotonic()})
            for event in events:
                hub.publish(self.id, "event", {"type": "event", "event": event})
            if now >= self._next_snapshot:
                self._publish_snapshot(trainer)
        if now >= self._next_checkpoint:
            try:
                self._take_checkpoint(trainer)
            except Exception:  # keep training; the previous checkpoint stays
                log.exception("session %s: checkpoint failed", self.id)
                self._next_checkpoint = now + CHECKPOINT_MAX_INTERVAL
            self.manager.wake_persister()
        self._run_pending(trainer)

    def _publish_snapshot(self, trainer: Trainer) -> None:
        """Send a snapshot; the next is due after SNAPSHOT_INTERVAL or more if they are costly."""
        hub = self.manager.hub
        if hub is None:
            return
        started = time.perf_counter()
        size = 0
        try:
            # float32 arrays, encoded by orjson here in the training thread
            snapshot = trainer.snapshot(grid_resolution=self.grid_resolution, compact=True)
            size = hub.publish(self.id, "snapshot", {"type": "snapshot", **snapshot})
        except Exception:  # a visualisation problem must not stop training
            log.exception("session %s: snapshot failed", self.id)
        cost = time.perf_counter() - started
        sending = size * hub.viewers(self.id) / SNAPSHOT_BYTES_PER_SECOND
        wait = max(SNAPSHOT_INTERVAL, cost / SNAPSHOT_BUDGET, sending)
        self._next_snapshot = time.monotonic() + wait

    def _take_checkpoint(self, trainer: Trainer) -> None:
        """Checkpoint now and make the rows and events recorded so far ready to write."""
        started = time.perf_counter()
        blob = trainer.checkpoint()
        cost = time.perf_counter() - started
        step = int(trainer.step)
        with self._state:
            self._ckpt_ready = (step, blob)
            self._ckpt_fields = {"step": step, "epoch": self.epoch, "metrics": self.metrics}
            self._rows_ready.extend(self._rows_new)
            self._events_ready.extend(self._events_new)
            self._rows_new.clear()
            self._events_new.clear()
            self._record_dirty = True
        interval = min(max(CHECKPOINT_MIN_INTERVAL, cost * 50), CHECKPOINT_MAX_INTERVAL)
        self._next_checkpoint = time.monotonic() + interval

    # ---- state changes ----------------------------------------------------------------------

    def _set_status(self, status: str, message: str | None = None) -> None:
        """Change the status, write it and tell the clients."""
        hub = self.manager.hub
        with self._state:  # published under the lock, so frames follow the order of changes
            self.status = status
            self.message = message
            self.updated_at = utc_now()
            self._record_dirty = True
            if hub is not None:
                hub.publish(
                    self.id, "status", {"type": "status", "session": self._public_unlocked()}
                )

    def set_name(self, name: str) -> None:
        """Change the display name, mark it for writing and tell the clients."""
        hub = self.manager.hub
        with self._state:
            self.name = name
            self.updated_at = utc_now()
            self._record_dirty = True
            if hub is not None:
                hub.publish(
                    self.id, "status", {"type": "status", "session": self._public_unlocked()}
                )

    def emit_event(self, event: dict[str, Any]) -> None:
        """Record an event (history and store) and send it to the clients."""
        with self._state:
            if self._busy is None:
                self._events_ready.append(event)
            else:
                self._events_new.append(event)
        with self._hist_lock:
            self.history.add_event(event)
        hub = self.manager.hub
        if hub is not None:
            hub.publish(self.id, "event", {"type": "event", "event": event})

    def publish_snapshot_now(self) -> None:
        """Send a snapshot to the clients, if any (after step, reset or a weights change)."""
        hub = self.manager.hub
        if hub is not None and hub.viewers(self.id):
            self.call(self._publish_snapshot)

    # ---- persistence ------------------------------------------------------------------------

    def take_writes(
        self, everything: bool
    ) -> tuple[
        list[dict[str, Any]], list[dict[str, Any]], tuple[int, bytes] | None, dict[str, Any] | None
    ]:
        """What should be written now: (rows, events, checkpoint, session fields)."""
        with self._state:
            if everything and self._busy not in _TRAINING:  # rows of a run wait for its checkpoint
                self._rows_ready.extend(self._rows_new)
                self._events_ready.extend(self._events_new)
                self._rows_new.clear()
                self._events_new.clear()
            rows, self._rows_ready = self._rows_ready, []
            events, self._events_ready = self._events_ready, []
            ckpt, self._ckpt_ready = self._ckpt_ready, None
            record = None
            if self._record_dirty or rows or ckpt:
                self._record_dirty = False
                # While training, the stored step is the checkpoint's, so that after a crash
                # the session, its checkpoint and its history agree.
                fields = self._ckpt_fields if self._busy is not None else None
                if fields is None:
                    fields = {"step": self.step, "epoch": self.epoch, "metrics": self.metrics}
                record = {
                    "name": self.name,
                    "status": self.status,
                    **fields,
                    "message": self.message,
                    "best_step": self.best_step,
                    "updated_at": self.updated_at,
                    "config": self.config_doc,
                }
        return rows, events, ckpt, record


# ----------------------------------------------------------------------------- manager


class SessionManager:
    """Every session of this server: creation, lookup, lifecycle, persistence and shutdown."""

    def __init__(self, store: Store, max_training: int, hub: Hub | None = None) -> None:
        if max_training < 1:
            raise ValueError(f"max_training: expected an integer >= 1, got {max_training}")
        self.store = store
        self.max_training = max_training  # sessions that may train (or step) at once
        self.hub = hub  # set by the app's lifespan once the event loop runs
        self.shutting_down = False
        self._sessions: dict[str, Session] = {}  # loaded sessions
        self._deleted: set[str] = set()  # ids deleted by this process
        self._lock = threading.Lock()  # guards _sessions and the training count
        # Held from counting the stored sessions to storing a new one, so creates that arrive
        # together cannot all see room for one more and pass MAX_SESSIONS.
        self._create_lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = threading.Event()
        self.interrupted = store.mark_interrupted()  # ids left running by a previous server
        self._persister = threading.Thread(target=self._persist_loop, name="persister", daemon=True)
        self._persister.start()

    # ---- lookup -----------------------------------------------------------------------------

    def get(self, session_id: str) -> Session:
        """A session by id, loaded from the store on first use (NotFoundError if unknown)."""
        with self._lock:
            session = self._sessions.get(session_id)
            deleted = session_id in self._deleted
        if session is not None:
            return session
        record = None if deleted else self.store.get_session(session_id)
        if record is None:
            raise NotFoundError(f"no session with id {session_id!r}")
        history = self.store.load_history(session_id)
        session = Session(self, record, history)
        checkpoint = self.store.load_checkpoint(session_id)
        if checkpoint is not None:
            session._checkpoint = checkpoint
            session.step = checkpoint[0]
        with self._lock:
            if session_id in self._deleted:
                raise NotFoundError(f"no session with id {session_id!r}")
            return self._sessions.setdefault(session_id, session)

    def list(self) -> list[dict[str, Any]]:
        """Every session as SessionPublic, newest first."""
        records = self.store.list_sessions()
        with self._lock:
            loaded = dict(self._sessions)
        out = []
        for record in records:
            session = loaded.get(record["id"])
            if record["id"] in self._deleted:
                continue
            out.append(session.public() if session is not None else _record_public(record))
        return out

    def training_count(self) -> int:
        """Sessions training or stepping right now."""
        with self._lock:
            return sum(1 for s in self._sessions.values() if s.busy in _TRAINING)

    # ---- lifecycle --------------------------------------------------------------------------

    def create(self, config: RunConfig | dict[str, Any], name: str | None = None) -> Session:
        """Build a Trainer (ConfigError if the config does not fit) and store a new session."""
        run_config = parse_config(config)
        self._check_room()  # early, so a full store does not build a trainer first
        trainer = _load_trainer_class()(run_config, uploads=self.load_upload)
        session_id = secrets.token_hex(6)
        now = utc_now()
        doc = config_to_dict(trainer.config)
        display = name or _default_name(doc)
        with self._create_lock:  # the count and the insert, as one step
            self._check_room()
            self.store.create_session(session_id, display, doc, now)
        record = {
            "id": session_id,
            "name": display,
            "status": "idle",
            "step": 0,
            "epoch": 0,
            "metrics": None,
            "config": doc,
            "created_at": now,
            "updated_at": now,
            "message": None,
            "best_step": None,
        }
        session = Session(self, record, History(self.store.policy))
        session._trainer = trainer
        with self._lock:
            self._sessions[session_id] = session
        return session

    def _check_room(self) -> None:
        """Refuse one more stored session at MAX_SESSIONS (ConflictError naming the limit)."""
        stored = len(self.store.list_sessions())
        if stored >= MAX_SESSIONS:
            raise ConflictError(
                f"{stored} sessions are stored, the limit is {MAX_SESSIONS}; delete one first"
            )

    def _check_capacity(self, hint: str = "") -> None:
        """Refuse one more training worker when shutting down or at --max-training (hold _lock)."""
        if self.shutting_down:
            raise ConflictError("the server is shutting down")
        busy = sum(1 for s in self._sessions.values() if s.busy in _TRAINING)
        if busy >= self.max_training:
            raise TooManyTrainingError(
                f"{busy} sessions are training already, the most this server allows "
                f"(--max-training {self.max_training}){hint}"
            )

    def start(self, session: Session, pace: float | None = None) -> dict[str, Any]:
        """Start training in the background, at most `pace` steps per second when given
        (ConflictError if busy, TooManyTrainingError)."""
        session.call(lambda trainer: None)  # builds the trainer now, so errors surface here
        with self._lock:
            _check_alive(session)
            if session.busy == "train":
                raise ConflictError(f"session {session.id} is already running")
            if session.busy is not None:
                raise ConflictError(f"session {session.id} is {_DOING[session.busy]}")
            self._check_capacity("; stop one first")
            session._begin("train", None, status="running", pace=pace)
        self.persist(session)
        return session.public()

    def step(self, session: Session, steps: int) -> Future[dict[str, Any]]:
        """Run `steps` training steps in a worker thread; the future resolves when done."""
        session.call(lambda trainer: None)
        with self._lock:
            _check_alive(session)
            if session.busy is not None:
                raise ConflictError(
                    f"session {session.id} is {_DOING[session.busy]}; stop it before stepping"
                )
            self._check_capacity()
            return session._begin("step", steps)

    def stop(self, session: Session, timeout: float = STOP_TIMEOUT) -> dict[str, Any]:
        """Stop after the current step and wait for the worker; idempotent."""
        session._stop.set()
        thread = session.worker()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                raise ConflictError(f"session {session.id} did not stop within {timeout:g} s")
        with session._state:
            return {"step": session.step, "status": session.status}

    def reset(self, session: Session) -> dict[str, Any]:
        """Stop, re-initialise from the seed, clear the history (memory and disk)."""
        self.stop(session)

        def do_reset(trainer: Trainer) -> tuple[int, bytes]:
            trainer.reset()
            return int(trainer.step), trainer.checkpoint()

        step, blob = self._exclusive(session, "reset", do_reset)
        with session._persist_lock:
            with session._state:
                session._rows_new.clear()
                session._rows_ready.clear()
                session._events_new.clear()
                session._events_ready.clear()
                session._ckpt_ready = (step, blob)
                session._ckpt_fields = {"step": step, "epoch": 0, "metrics": None}
                session.step, session.epoch, session.best_step = step, 0, None
                session.metrics = None
            with session._hist_lock:
                session.history.clear()
            self.store.clear_history(session.id)
        session.emit_event({"type": "reset", "step": step, "message": "weights re-initialised"})
        session._set_status("idle", None)
        self.persist(session)
        session.publish_snapshot_now()
        return session.public()

    def update_hyperparameters(
        self, session: Session, update: HyperparameterUpdate
    ) -> dict[str, Any]:
        """Apply a PATCH between steps; emits and stores a "hyperparameters" event."""

        def apply(trainer: Trainer) -> tuple[dict[str, Any], dict[str, Any], int]:
            try:
                changes = trainer.update_hyperparameters(update)
            except ValidationError as exc:  # e.g. nesterov without momentum
                raise ConfigError(errors_from_validation(exc)) from None
            return changes, config_to_dict(trainer.config), int(trainer.step)

        changes, doc, step = session.call(apply)
        with session._state:
            session.config_doc = doc
            session.updated_at = utc_now()
            session._record_dirty = True
        if changes:
            text = ", ".join(
                f"{key} {change.get('old')!r} -> {change.get('new')!r}"
                for key, change in changes.items()
            )
            session.emit_event(
                {"type": "hyperparameters", "step": step, "changes": changes, "message": text}
            )
        if session.busy is None:
            self.persist(session)
        return session.public()

    def rename(self, session: Session, name: str) -> dict[str, Any]:
        """Give a session a new display name (validated by the caller) and store it."""
        _check_alive(session)
        session.set_name(name)
        if session.busy is None:
            self.persist(session)
        else:  # a training run's record is written by the persister, with its checkpoint step
            self.wake_persister()
        return session.public()

    def set_weights(self, session: Session, weights: dict[str, Any]) -> list[str]:
        """Replace weights (409 while training; WeightsError names the array)."""

        def put(trainer: Trainer) -> tuple[int, bytes]:
            trainer.set_weights(weights)
            return int(trainer.step), trainer.checkpoint()

        step, blob = self._exclusive(session, "weights", put)
        with session._state:
            session._ckpt_ready = (step, blob)
            session._ckpt_fields = {
                "step": step,
                "epoch": session.epoch,
                "metrics": session.metrics,
            }
        session.emit_event(
            {
                "type": "weights",
                "step": step,
                "names": sorted(weights),
                "message": f"{len(weights)} arrays replaced",
            }
        )
        self.persist(session)
        session.publish_snapshot_now()
        return sorted(weights)

    def _exclusive(self, session: Session, kind: str, fn: Callable[[Trainer], T]) -> T:
        """Run fn(trainer) while the session is marked busy with `kind`, so no run can start
        meanwhile; 409 if a run is in progress."""
        with self._lock:
            _check_alive(session)
            if session.busy is not None:
                raise ConflictError(
                    f"session {session.id} is {_DOING.get(session.busy, session.busy)}; "
                    f"stop it first"
                )
            with session._state:
                session._busy = kind
        return session.run_exclusive(fn)

    def delete(self, session: Session) -> None:
        """Stop and forget a session with its history and checkpoint."""
        with self._lock:  # from now on nothing can start it or load it again
            with session._state:
                session.deleted = True
            self._sessions.pop(session.id, None)
            self._deleted.add(session.id)
        with contextlib.suppress(ConflictError):
            self.stop(session)
        with session._persist_lock:  # no write of it is in flight
            self.store.delete_session(session.id)

    # ---- uploads ----------------------------------------------------------------------------

    def load_upload(
        self, upload_id: str
    ) -> tuple[np.ndarray, np.ndarray, list[str]] | tuple[np.ndarray, np.ndarray]:
        """The arrays of an uploaded dataset (the Trainer's `uploads` callable; KeyError)."""
        x, y = self.store.load_upload(upload_id)
        info = self.store.get_upload(upload_id)
        names = (info or {}).get("meta", {}).get("input_names")
        if isinstance(names, list):
            return x, y, [str(n) for n in names]
        return x, y

    # ---- persistence and shutdown -----------------------------------------------------------

    def persist(self, session: Session, everything: bool = True) -> None:
        """Write what the session has buffered (rows, events, checkpoint, fields)."""
        with session._persist_lock:
            rows, events, ckpt, record = session.take_writes(everything)
            if session.deleted:
                return
            try:
                if ckpt is not None:
                    self.store.save_checkpoint(session.id, ckpt[0], ckpt[1])
                if rows:
                    self.store.append_metrics(session.id, rows)
                if events:
                    self.store.append_events(session.id, events)
                if record is not None:
                    self.store.update_session(session.id, **record)
            except StoreError as exc:
                log.error("session %s: cannot save: %s", session.id, exc)

    def wake_persister(self) -> None:
        """Ask the persister thread to write soon."""
        self._wake.set()

    def _persist_loop(self) -> None:
        while not self._closed.is_set():
            self._wake.wait(PERSIST_INTERVAL)
            self._wake.clear()
            with self._lock:
                sessions = list(self._sessions.values())
            for session in sessions:
                if session.busy is not None:
                    self.persist(session, everything=False)

    def shutdown(self, timeout: float = 20.0) -> None:
        """Stop every worker after its current step, checkpoint, write everything, close."""
        self.shutting_down = True
        with self._lock:
            sessions = list(self._sessions.values())
        for session in sessions:
            session._stop.set()
        deadline = time.monotonic() + timeout
        for session in sessions:
            thread = session.worker()
            if thread is not None:
                thread.join(max(0.0, deadline - time.monotonic()))
                if thread.is_alive():
                    log.error("session %s did not stop in time; its last step is lost", session.id)
        self._closed.set()
        self._wake.set()
        self._persister.join(5.0)
        for session in sessions:
            self.persist(session)


def _check_alive(session: Session) -> None:
    """NotFoundError for a session deleted meanwhile."""
    if session.deleted:
        raise NotFoundError(f"no session with id {session.id!r}")


_TRAINING = ("train", "step")
_DOING = {
    "train": "running",
    "step": "running steps",
    "reset": "resetting",
    "weights": "loading weights",
}


def snapshot_grid_resolution(doc: dict[str, Any]) -> int:
    """The grid resolution of streamed snapshots: 40 x 40 for Playground-sized networks, coarser
    for wide ones so a snapshot holds about SNAPSHOT_GRID_VALUES grid values (each hidden dense
    unit, each input feature, the output and each class of a multi-class output has its own
    grid). GET /boundary stays exact."""
    layers = doc.get("layers") or []
    hidden = sum(
        int(layer.get("units") or 0) for layer in layers[:-1] if layer.get("type") == "dense"
    )
    outputs = int(layers[-1].get("units") or 1) if layers else 1
    maps = hidden + len(doc.get("features") or ()) + 1 + class_map_count(outputs)
    low, high = SNAPSHOT_GRID_RANGE
    return max(low, min(high, math.isqrt(SNAPSHOT_GRID_VALUES // max(maps, 1))))


def _record_public(record: dict[str, Any]) -> dict[str, Any]:
    """SessionPublic of a stored session that is not loaded."""
    out = dict(record)
    out["name"] = out.get("name") or out["id"]
    return out


def _default_name(doc: dict[str, Any]) -> str:
    """e.g. 'spiral 8-8-1 tanh'."""
    layers = doc.get("layers") or []
    sizes = [
        str(layer.get("units") or layer.get("filters") or layer.get("type")) for layer in layers
    ]
    activation = next((layer.get("activation") for layer in layers if layer.get("activation")), "")
    return f"{doc.get('dataset', {}).get('name', 'run')} {'-'.join(sizes)} {activation}".strip()


def npz_bytes(save: Callable[[io.BytesIO], None]) -> bytes:
    """The bytes written by `save` into an in-memory file."""
    buffer = io.BytesIO()
    save(buffer)
    return buffer.getvalue()
