"""One training session: its Trainer (built lazily), History, worker thread, pending writes and
record, and every change of its state (start, stop, step, reset, weights, hyperparameters,
name, delete).

Threads. A session's trainer is touched by one thread at a time, guarded by the trainer lock:
while it trains (start) or steps (step), its worker thread holds the lock for the whole run and
everything else that needs the trainer (PATCH, trace, predict, snapshot, weights...) is queued
with `Session.call` and run by the worker between two steps, inside `on_report`. When no worker
runs, `call` takes the lock and runs the function in the calling thread. Training never runs on
the event loop, and the event loop never waits for a lock the worker holds.

Persistence. While training, the worker takes a checkpoint (`trainer.checkpoint()`) about every
second (every 3 s when checkpoints are costly); the rows and events recorded up to that step then
become writable (server/session_writes.py) and the persister thread writes them in one go. Every
stop, step, reset, weight or hyperparameter change is written at once. The Trainer is built
lazily (server/session_load.py) from the stored config and checkpoint when a request needs it,
within the memory budget, and `unload` drops it and the history of an idle session, all saved.
A failed write (a full disk) pauses the run and says so, and is tried again by start, stop, step.

Status: idle (step 0, not training), running, paused (stopped with step > 0), diverged,
stopped_early, interrupted (the server went away while it trained). Each change is written to the
store and sent to WebSocket clients as a "status" frame.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from engine.config import HyperparameterUpdate, config_to_dict
from engine.recorder import record_interval
from server.capacity import TrainingSlots
from server.errors import ConflictError, InsufficientStorageError, NotFoundError
from server.history import History, utc_stamp
from server.hub import Hub, monotonic
from server.memory import UNLIMITED, MemoryBudget
from server.session_load import apply_update, build_trainer
from server.session_record import SessionRecord, doing
from server.session_writes import Batch, Checkpoint, WriteBuffer
from server.snapshots import snapshot_grid_resolution, snapshot_wait
from server.store import Store, StoreError, utc_now

if TYPE_CHECKING:
    from engine.trainer import Trainer

log = logging.getLogger("backprop_lens.sessions")

T = TypeVar("T")

CALL_TIMEOUT = 120.0  # seconds a queued call may wait for the worker before giving up
STOP_TIMEOUT = 60.0  # seconds /stop waits for the worker to finish its step
REPORT_INTERVAL = 1 / 30  # seconds between the trainer's reports (and metrics frames)
CHECKPOINT_MIN_INTERVAL = 1.0  # seconds between checkpoints while training, when cheap
CHECKPOINT_MAX_INTERVAL = 3.0  # ... and at most this, however costly
HISTORY_POINTS = 2000  # points of history in a WebSocket hello frame

TRAINING = ("train", "step")  # what a session is busy with while it holds a training slot


@dataclass(frozen=True)
class SessionContext:
    """What every session shares with the server around it (built by the SessionManager)."""

    store: Store  # where the record, history and checkpoint are written
    slots: TrainingSlots  # a run holds one while it trains or steps (--max-training)
    hub: Hub | None = None  # the WebSocket clients; None: nobody can watch
    wake_persister: Callable[[], None] = lambda: None  # asks for an early write of a run
    # What loaded trainers may hold (--memory-budget); by default no budget to speak of.
    memory: MemoryBudget = field(default_factory=lambda: MemoryBudget(UNLIMITED))


class Session:
    """One training run: its Trainer, History, worker thread, pending writes and record."""

    def __init__(
        self,
        record: SessionRecord,
        history: History | None,
        context: SessionContext,
        *,
        trainer: Trainer | None = None,
        checkpoint: Checkpoint | None = None,
    ) -> None:
        """`trainer`: already built (a new session); else it is built on first use from the
        config, and `checkpoint` (whose step the session then shows; default: the store's)
        restored into it. `history`: None to read it from the store when first needed."""
        self.id = record.id
        self._record = record  # guarded by _state
        self._context = context
        self._store = context.store
        self._hub = context.hub
        self._history = history  # guarded by _hist_lock; None: in the store only (unloaded)
        self._grid_resolution = snapshot_grid_resolution(record.config)  # of streamed snapshots
        self._pace: float | None = None  # steps per second of the current run; None: full speed
        self._deleted = False

        self._trainer = trainer
        self._checkpoint = checkpoint  # to restore when the trainer is built
        # No trainer and no checkpoint given: build from the checkpoint the store holds.
        self._unloaded = trainer is None and checkpoint is None
        self.last_used = time.monotonic()  # when a request last found it (SessionManager.get)
        if checkpoint is not None:
            record.step = checkpoint[0]
        self._trainer_lock = threading.Lock()  # held by whoever uses the trainer
        self._state = threading.Lock()  # guards the fields above and below
        self._hist_lock = threading.Lock()
        self._persist_lock = threading.Lock()  # one writer of this session's rows at a time
        self._busy: str | None = None  # "train"/"step" while a worker runs, "reset"/"weights"
        self._stop = threading.Event()  # set to stop the worker after its current step
        self._thread: threading.Thread | None = None
        self._pending: list[tuple[Callable[[Trainer], Any], Future[Any]]] = []  # calls queued
        self._writes = WriteBuffer(saved_step=record.step)
        # Worker-thread timers.
        self._next_checkpoint = 0.0
        self._next_snapshot = 0.0

    # ---- what clients see -------------------------------------------------------------------

    def public(self) -> dict[str, Any]:
        """The SessionPublic document."""
        with self._state:
            return self._public_locked()

    def _public_locked(self) -> dict[str, Any]:
        """The SessionPublic document (the caller holds _state)."""
        running = self._busy == "train" and self._record.status == "running"
        return self._record.public(pace=self._pace if running else None)

    @property
    def busy(self) -> str | None:
        """What occupies the trainer: "train", "step", "reset", "weights" or None."""
        return self._busy

    def columns(self, **query: Any) -> dict[str, Any]:
        """The recorded history as /metrics columns (History.columns' since, limit, tail...)."""
        with self._hist_lock:
            return self._hist().columns(**query)

    def hello(self) -> dict[str, Any]:
        """The first WebSocket frame: the session, its config and its history (thinned)."""
        public = self.public()
        history = self.columns(max_points=HISTORY_POINTS)
        return {"type": "hello", "session": public, "config": public["config"], "history": history}

    # ---- using the trainer ------------------------------------------------------------------

    def call(self, fn: Callable[[Trainer], T], timeout: float = CALL_TIMEOUT) -> T:
        """Run fn(trainer) in the thread that owns the trainer now; return its result.

        Blocks the calling thread (never call it on the event loop). While a worker trains, fn
        waits for the next report (at most ~1/30 s plus one step)."""
        while True:
            with self._state:
                if self._deleted:
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

    def _ensure_trainer(self) -> Trainer:
        """The trainer, built from the config and the checkpoint on first use (lock held),
        within the memory budget (server/session_load.py)."""
        if self._trainer is not None:
            return self._trainer
        if self._unloaded:  # what `unload` dropped is in the store
            self._checkpoint = self._store.load_checkpoint(self.id)
        memory = self._context.memory
        trainer = build_trainer(self.id, self._record.config, self._checkpoint, self._store, memory)
        self._checkpoint, self._unloaded = None, False
        with self._state:
            self._record.step = int(trainer.step)
            self._record.epoch = int(trainer.epoch)
        self._trainer = trainer
        return trainer

    def unload(self) -> bool:
        """Drop the trainer and the history of a session nobody uses, once all it recorded is
        written; the next use rebuilds them from the store (checkpoint and rows), the same as
        before. False, keeping everything, while it is busy or cannot be saved."""
        if not self._trainer_lock.acquire(blocking=False):  # in use right now
            return False
        try:
            with self._state:
                if self._busy is not None or self._deleted or self._pending:
                    return False
            if not self.persist():
                return False
            with self._state:
                if self._writes.pending():  # changed meanwhile (a rename): not all written
                    return False
                self._trainer, self._checkpoint, self._unloaded = None, None, True
            with self._hist_lock:
                self._history = None
        finally:
            self._trainer_lock.release()
        self._context.memory.release(self.id)
        return True

    @property
    def loaded(self) -> bool:
        """Whether the session's trainer or history is in memory (`unload` drops both)."""
        return self._trainer is not None or self._history is not None

    def _hist(self) -> History:
        """The history, read from the store if it was unloaded (the caller holds _hist_lock)."""
        if self._history is None:
            self._history = self._store.load_history(self.id)
        return self._history

    def _claim(self, kind: str, refusal: Callable[[str], str], hint: str | None = None) -> None:
        """Mark the session busy with `kind`, or raise SessionRunningError(refusal(busy)); a run
        (`kind` in TRAINING) takes a training slot too (`hint` ends its refusal), atomically."""
        from server.errors import SessionRunningError  # here: this file is at the 700-line guard

        with self._state:
            if self._deleted:
                raise NotFoundError(f"no session with id {self.id!r}")
            if self._busy is not None:
                raise SessionRunningError(refusal(self._busy))
            if kind in TRAINING:
                self._context.slots.take(self.id, hint or "")
            self._busy = kind

    def _exclusive(self, kind: str, fn: Callable[[Trainer], T]) -> T:
        """Run fn(trainer) in this thread while the session is busy with `kind`, so no run can
        start meanwhile (409 if one is in progress); then run the calls queued meanwhile."""
        self._claim(kind, lambda busy: f"session {self.id} is {doing(busy)}; stop it first")
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

    def _run_pending_or_release(self, trainer: Trainer | None) -> None:
        """Run the calls queued so far, or, when there are none, free the session."""
        with self._state:
            if not self._pending:
                if self._busy in TRAINING:
                    self._context.slots.give_back(self.id)
                self._busy = None
                return
        if trainer is not None:
            self._run_pending(trainer)
        else:
            with self._state:
                items, self._pending = self._pending, []
            for _, future in items:
                future.set_exception(ConflictError(f"session {self.id} has no trainer"))

    # ---- runs -------------------------------------------------------------------------------

    def start(self, pace: float | None = None) -> dict[str, Any]:
        """Start training in the background, at most `pace` steps per second when given
        (ConflictError if busy, TooManyTrainingError)."""
        self.call(lambda trainer: None)  # builds the trainer now, so errors surface here
        self.ensure_saved()  # a run that cannot be saved is not started
        self._claim(
            "train",
            lambda busy: (
                f"session {self.id} is already running"
                if busy == "train"
                else f"session {self.id} is {doing(busy)}"
            ),
            hint="; stop one first",
        )
        self._launch(None, status="running", pace=pace)
        if not self.persist():  # the run pauses again after its first step
            self.ensure_saved()
        return self.public()

    def step(self, steps: int) -> Future[dict[str, Any]]:
        """Run `steps` training steps in a worker thread (a row every record_interval(steps)
        steps); the future resolves when done, with the session as they left it ("session")."""
        self.call(lambda trainer: None)
        self.ensure_saved()
        self._claim(
            "step", lambda busy: f"session {self.id} is {doing(busy)}; stop it before stepping"
        )
        return self._launch(steps)

    def stop(self, timeout: float = STOP_TIMEOUT) -> dict[str, Any]:
        """Stop after the current step and wait for the worker; idempotent."""
        self.request_stop()
        thread = self.worker()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                raise ConflictError(f"session {self.id} did not stop within {timeout:g} s")
        with self._state:
            return {"step": self._record.step, "status": self._record.status}

    def request_stop(self) -> None:
        """Ask the worker to stop after its current step, without waiting (shutdown)."""
        self._stop.set()

    def worker(self) -> threading.Thread | None:
        """The thread of the current (or last) run."""
        with self._state:
            return self._thread

    def _launch(
        self, steps: int | None, status: str | None = None, pace: float | None = None
    ) -> Future[dict[str, Any]]:
        """Set `status` and start the worker thread of a claimed run; `pace` caps the steps
        per second."""
        self._stop.clear()
        done: Future[dict[str, Any]] = Future()
        now = time.monotonic()
        self._next_checkpoint = now + CHECKPOINT_MIN_INTERVAL
        self._next_snapshot = now
        with self._state:
            self._pace = pace
        if status is not None:  # after the claim, so the status frame shows the pace
            self._set_status(status, None)
        with self._state:
            thread = threading.Thread(
                target=self._work, args=(steps, done, pace), name=f"train-{self.id}", daemon=True
            )
            self._thread = thread
            thread.start()
        return done

    def _work(self, steps: int | None, done: Future[dict[str, Any]], pace: float | None) -> None:
        """The worker thread: train, then checkpoint, report the final state and hand over."""
        outcome: str | None = None
        error: BaseException | None = None
        status = self._record.status
        final: dict[str, Any] | None = None
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
                            record_every=None if steps is None else record_interval(steps),
                        )
                    except Exception as exc:  # an engine failure must not kill the server
                        log.exception("session %s: training failed", self.id)
                        error = exc
                    if trainer is not None:
                        self._after_run(trainer)
                    status, message = self._final_status(outcome, error)
                    self._set_status(status, message)
                    self.persist()
                    final = self.public()  # before a queued call or another run changes it
                finally:
                    while True:  # queued calls run here, then the session is free
                        self._run_pending_or_release(trainer)
                        if self._busy is None:
                            break
        finally:
            if not done.done():
                done.set_result({"outcome": outcome, "status": status, "session": final})

    def _after_run(self, trainer: Trainer) -> None:
        """Checkpoint and publish the final state of a run (worker thread, lock held)."""
        try:
            self._take_checkpoint(trainer)
        except Exception:  # keep the session usable; the previous checkpoint stays
            log.exception("session %s: checkpoint failed", self.id)
        with self._state:
            self._record.step = int(trainer.step)
            self._record.epoch = int(trainer.epoch)
            self._record.best_step = trainer.best_step
        if self._hub is not None and self._hub.viewers(self.id):
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
            best = self._record.best_step
            where = f"; best test loss at step {best}" if best is not None else ""
            return "stopped_early", f"the test loss stopped improving{where}"
        if self._context.slots.closing and outcome == "stopped":
            step = self._record.step
            return "interrupted", f"the server shut down at step {step}; start resumes"
        return self._idle_status(), None

    def _idle_status(self) -> str:
        return "paused" if self._record.step > 0 else "idle"

    def _on_report(self, report: Any) -> None:
        """Called by trainer.train in the worker thread about 30 times a second."""
        trainer = self._trainer
        if trainer is None:  # cannot happen: train() runs on the built trainer
            return
        row = report.to_dict()
        row["time"] = utc_stamp()  # wall clock, for scripts; frames keep the monotonic "t"
        events = row.pop("events", None) or []
        summary = {key: value for key, value in row.items() if key != "layers"}
        now = time.monotonic()
        with self._state:
            self._record.step = int(row["step"])
            self._record.epoch = int(row["epoch"])
            self._record.best_step = trainer.best_step
            self._record.metrics = summary
            self._writes.record(row, events)
        with self._hist_lock:
            history = self._hist()
            history.append(row)
            for event in events:
                history.add_event(event)
        hub = self._hub
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
            self._context.wake_persister()
        self._run_pending(trainer)

    def _publish_snapshot(self, trainer: Trainer) -> None:
        """Send a snapshot; the next is due after SNAPSHOT_INTERVAL, or later when they are costly
        (server/snapshots.py)."""
        hub = self._hub
        if hub is None:
            return
        started = time.perf_counter()
        size = 0
        try:
            # float32 arrays, encoded by orjson here in the training thread
            snapshot = trainer.snapshot(grid_resolution=self._grid_resolution, compact=True)
            size = hub.publish(self.id, "snapshot", {"type": "snapshot", **snapshot})
        except Exception:  # a visualisation problem must not stop training
            log.exception("session %s: snapshot failed", self.id)
        cost = time.perf_counter() - started
        self._next_snapshot = time.monotonic() + snapshot_wait(cost, size, hub.viewers(self.id))

    def _publish_snapshot_now(self) -> None:
        """Send a snapshot to the clients, if any (after reset or a weights change)."""
        if self._hub is not None and self._hub.viewers(self.id):
            self.call(self._publish_snapshot)

    def _take_checkpoint(self, trainer: Trainer) -> None:
        """Checkpoint now and make the rows and events recorded so far ready to write."""
        started = time.perf_counter()
        blob = trainer.checkpoint()
        cost = time.perf_counter() - started
        step = int(trainer.step)
        with self._state:
            fields = {"step": step, "epoch": self._record.epoch, "metrics": self._record.metrics}
            self._writes.checkpointed((step, blob), fields)
        interval = min(max(CHECKPOINT_MIN_INTERVAL, cost * 50), CHECKPOINT_MAX_INTERVAL)
        self._next_checkpoint = time.monotonic() + interval

    # ---- changes between runs ---------------------------------------------------------------

    def reset(self) -> dict[str, Any]:
        """Stop, re-initialise from the seed, clear the history (memory and disk)."""
        self.stop()

        def do_reset(trainer: Trainer) -> tuple[int, bytes]:
            trainer.reset()
            return int(trainer.step), trainer.checkpoint()

        step, blob = self._exclusive("reset", do_reset)
        with self._persist_lock:
            with self._state:
                self._writes.clear_history()
                self._writes.set_checkpoint(
                    (step, blob), {"step": step, "epoch": 0, "metrics": None}
                )
                record = self._record
                record.step, record.epoch, record.best_step = step, 0, None
                record.metrics = None
            with self._hist_lock:
                self._hist().clear()
            self._store.clear_history(self.id)
        self._emit_event({"type": "reset", "step": step, "message": "weights re-initialised"})
        self._set_status("idle", None)
        self.persist()
        self._publish_snapshot_now()
        return self.public()

    def set_weights(self, weights: dict[str, Any]) -> list[str]:
        """Replace weights (409 while training; WeightsError names the array)."""

        def put(trainer: Trainer) -> tuple[int, bytes]:
            trainer.set_weights(weights)
            return int(trainer.step), trainer.checkpoint()

        step, blob = self._exclusive("weights", put)
        with self._state:
            fields = {"step": step, "epoch": self._record.epoch, "metrics": self._record.metrics}
            self._writes.set_checkpoint((step, blob), fields)
        self._emit_event(
            {
                "type": "weights",
                "step": step,
                "names": sorted(weights),
                "message": f"{len(weights)} arrays replaced",
            }
        )
        self.persist()
        self._publish_snapshot_now()
        return sorted(weights)

    def update_hyperparameters(self, update: HyperparameterUpdate) -> dict[str, Any]:
        """Apply a PATCH between steps; emits and stores a "hyperparameters" event."""

        def apply(trainer: Trainer) -> tuple[dict[str, Any], dict[str, Any], int]:
            changes = apply_update(self.id, trainer, update, self._context.memory)
            return changes, config_to_dict(trainer.config), int(trainer.step)

        changes, doc, step = self.call(apply)
        with self._state:
            self._record.config = doc
            self._record.updated_at = utc_now()
            self._writes.mark_dirty()
        if changes:
            text = ", ".join(
                f"{key} {change.get('old')!r} -> {change.get('new')!r}"
                for key, change in changes.items()
            )
            self._emit_event(
                {"type": "hyperparameters", "step": step, "changes": changes, "message": text}
            )
        if self._busy is None:
            self.persist()
        return {**self.public(), "applied_at_step": step}  # the trainer's, as the event's

    def rename(self, name: str) -> dict[str, Any]:
        """Give the session a new display name (validated by the caller) and store it."""
        if self._deleted:
            raise NotFoundError(f"no session with id {self.id!r}")
        with self._state:
            self._record.name = name
            self._record.updated_at = utc_now()
            self._writes.mark_dirty()
            self._publish_status_locked()
        if self._busy is None:
            self.persist()
        else:  # a training run's record is written by the persister, with its checkpoint step
            self._context.wake_persister()
        return self.public()

    def delete(self) -> None:
        """Stop and erase the session with its history and checkpoint (the manager has
        forgotten it already, so nothing loads it again)."""
        with self._state:  # from now on nothing can start it or call its trainer
            self._deleted = True
        with contextlib.suppress(ConflictError):
            self.stop()
        with self._persist_lock:  # no write of it is in flight
            self._store.delete_session(self.id)
        self._context.memory.release(self.id)

    def _set_status(self, status: str, message: str | None = None) -> None:
        """Change the status, mark it for writing and tell the clients."""
        with self._state:  # published under the lock, so frames follow the order of changes
            if self._writes.failure is not None:  # restated at the step the run stopped
                self._record.save_error = self._writes.failure_message(self._record.step)
            self._record.status = status
            self._record.message = message or self._record.save_error
            self._record.updated_at = utc_now()
            self._writes.mark_dirty()
            self._publish_status_locked()

    def _publish_status_locked(self) -> None:
        """Send a "status" frame with the session document (the caller holds _state)."""
        if self._hub is not None:
            self._hub.publish(
                self.id, "status", {"type": "status", "session": self._public_locked()}
            )

    def _emit_event(self, event: dict[str, Any]) -> None:
        """Record an event (history and store) and send it to the clients."""
        with self._state:
            self._writes.add_event(event, running=self._busy is not None)
        with self._hist_lock:
            self._hist().add_event(event)
        if self._hub is not None:
            self._hub.publish(self.id, "event", {"type": "event", "event": event})

    # ---- persistence ------------------------------------------------------------------------

    def persist(self, everything: bool = True) -> bool:
        """Write what the session has buffered (rows, events, checkpoint, record); while a run
        trains, `everything=False` writes only what its last checkpoint covers. False when a
        write failed: the run pauses and says so (message, `save_error`, a "save_failed" event)
        and what failed is kept for the next attempt (`ensure_saved`)."""
        with self._persist_lock:
            saved = self._write_pending(everything)
            if saved and self._writes.failure is not None:
                self._save_recovered()
                saved = self._write_pending(everything)  # the record and event saying so
            return saved

    def _write_pending(self, everything: bool) -> bool:
        """One attempt to write the buffered writes (the caller holds _persist_lock)."""
        with self._state:
            batch = self._writes.take(
                flush=everything and self._busy not in TRAINING,
                busy=self._busy is not None,
                fields=self._record.stored_fields(),
            )
        if self._deleted:
            return True
        try:
            batch.write(self._store, self.id)
        except StoreError as exc:
            self._save_failed(batch, str(exc))
            return False
        with self._state:
            self._writes.written(batch)
        return True

    def _save_failed(self, batch: Batch, error: str) -> None:
        """A write failed: keep what it did not write, stop the run after its step and say so
        (message, status frame, and a "save_failed" event the first time)."""
        log.error("session %s: cannot save: %s", self.id, error)
        with self._state:
            first = self._writes.failed(batch, error)
            record = self._record
            record.save_error = record.message = self._writes.failure_message(record.step)
            if self._busy in TRAINING:
                self._stop.set()
            self._publish_status_locked()
            event = {"type": "save_failed", "step": record.step, "message": record.save_error}
        if first:
            self._emit_event(event)

    def _save_recovered(self) -> None:
        """Writes work again after failing: clear the error and tell the clients."""
        with self._state:
            record, step = self._record, self._writes.recovered()
            if record.message == record.save_error:
                record.message = None
            record.save_error = None
            self._publish_status_locked()
        self._emit_event({"type": "saved", "step": step, "message": f"saved again at step {step}"})

    def ensure_saved(self) -> None:
        """507 (InsufficientStorageError) unless everything recorded is written: after a failed
        write, the pending writes are tried again first."""
        if self._writes.failure is not None:
            self.persist()
        with self._state:
            message = self._record.save_error
        if message is not None:
            raise InsufficientStorageError(message)
