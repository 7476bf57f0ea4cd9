"""What a session recorded but has not written yet, the rule for when it may be written, and
what to say when writing fails.

While a run trains, its report rows and events wait ("new") until a checkpoint covers their step
("ready"), so the database never holds history ahead of its checkpoint: after a crash the stored
session, its checkpoint and its history agree. Outside a run everything may be written at once.

A write that fails (a full disk) gives back what it did not write (`failed`), so the next attempt
writes it: nothing recorded is dropped while the server runs, and the buffer knows the step the
store holds, for the message that says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from server.store import Store

Checkpoint = tuple[int, bytes]  # (step, Trainer.checkpoint() bytes)


@dataclass
class Batch:
    """One round of writes of a session, written checkpoint first (`write`)."""

    rows: list[dict[str, Any]]  # report rows to append
    events: list[dict[str, Any]]  # events to append
    checkpoint: Checkpoint | None  # the checkpoint to store
    record: dict[str, Any] | None  # the session's fields to store, when they changed
    saved_step: int | None = None  # step of the checkpoint `write` stored, once it did

    def write(self, store: Store, session_id: str) -> None:
        """Write it all. A write that fails raises StoreError, and the batch then holds only
        what is not written yet."""
        if self.checkpoint is not None:
            store.save_checkpoint(session_id, self.checkpoint[0], self.checkpoint[1])
            self.saved_step, self.checkpoint = self.checkpoint[0], None
        if self.rows:
            store.append_metrics(session_id, self.rows)
            self.rows = []
        if self.events:
            store.append_events(session_id, self.events)
            self.events = []
        if self.record is not None:
            store.update_session(session_id, **self.record)
            self.record = None


class WriteBuffer:
    """One session's pending writes. Not locked itself: the session holds its state lock around
    every call, so the buffers change together with the fields they describe."""

    def __init__(self, saved_step: int = 0) -> None:
        """`saved_step`: the step of the checkpoint the store holds (0: none, the seed's)."""
        self._rows_new: list[dict[str, Any]] = []  # recorded after the last checkpoint
        self._events_new: list[dict[str, Any]] = []
        self._rows_ready: list[dict[str, Any]] = []  # covered by a checkpoint: may be written
        self._events_ready: list[dict[str, Any]] = []
        self._checkpoint: Checkpoint | None = None  # the checkpoint to write next
        # step, epoch and metrics at the last checkpoint: what a running session's record says
        self._checkpoint_fields: dict[str, Any] | None = None
        self._dirty = False  # the session's record changed since it was last written
        self.saved_step = saved_step  # step of the checkpoint in the store
        self.failure: str | None = None  # the store's error while writes fail, else None

    def record(self, row: dict[str, Any], events: list[dict[str, Any]]) -> None:
        """A report row and its events, waiting for the next checkpoint."""
        self._rows_new.append(row)
        self._events_new.extend(events)

    def add_event(self, event: dict[str, Any], running: bool) -> None:
        """An event: behind the next checkpoint while a run is `running`, else ready at once."""
        (self._events_new if running else self._events_ready).append(event)

    def checkpointed(self, checkpoint: Checkpoint, fields: dict[str, Any]) -> None:
        """A checkpoint of the run was taken: it and everything recorded so far may be written."""
        self.set_checkpoint(checkpoint, fields)
        self._rows_ready.extend(self._rows_new)
        self._events_ready.extend(self._events_new)
        self._rows_new.clear()
        self._events_new.clear()
        self._dirty = True

    def set_checkpoint(self, checkpoint: Checkpoint, fields: dict[str, Any]) -> None:
        """Write this checkpoint next (after a reset or a weights change); `fields` are the
        step, epoch and metrics it stands for."""
        self._checkpoint = checkpoint
        self._checkpoint_fields = fields

    def clear_history(self) -> None:
        """Forget the rows and events not written yet (the history was reset)."""
        self._rows_new.clear()
        self._rows_ready.clear()
        self._events_new.clear()
        self._events_ready.clear()

    def written(self, batch: Batch) -> None:
        """`batch` was written (or part of it, before `failed`)."""
        if batch.saved_step is not None:
            self.saved_step = batch.saved_step

    def failed(self, batch: Batch, error: str) -> bool:
        """Writing `batch` failed with `error`: what it still holds goes first next time (a
        checkpoint taken since supersedes its one). True the first time writes fail."""
        self.written(batch)
        self._rows_ready[:0] = batch.rows
        self._events_ready[:0] = batch.events
        if self._checkpoint is None:
            self._checkpoint = batch.checkpoint
        self._dirty = True
        first = self.failure is None
        self.failure = error
        return first

    def recovered(self) -> int:
        """Writes work again after failing: forget the failure, write the record again (it
        said so); returns the step of the checkpoint the store holds."""
        self.failure = None
        self._dirty = True
        return self.saved_step

    def failure_message(self, step: int) -> str | None:
        """What a session at `step` whose writes fail says: what failed, where it stands, and
        what the data directory still holds. None while writes work."""
        if self.failure is None:
            return None
        saved = self.saved_step
        kept = f"the checkpoint of step {saved}" if saved > 0 else "only its set-up (step 0)"
        lost = f"; steps {saved + 1}-{step} are in memory only" if step > saved else ""
        return (
            f"{self.failure.rstrip('.')}. Training is paused at step {step}; the data directory "
            f"keeps {kept}{lost}. Free some space: Start then saves again."
        )

    def pending(self) -> bool:
        """Whether anything recorded is not written yet (or writes fail)."""
        return bool(
            self._rows_new
            or self._rows_ready
            or self._events_new
            or self._events_ready
            or self._checkpoint is not None
            or self._dirty
            or self.failure is not None
        )

    def mark_dirty(self) -> None:
        """The session's record changed: write it with the next batch."""
        self._dirty = True

    def take(self, *, flush: bool, busy: bool, fields: dict[str, Any]) -> Batch:
        """What to write now.

        flush: no run trains, so rows and events waiting for a checkpoint may go too.
        busy: something holds the trainer, so the record states the last checkpoint's step,
        epoch and metrics instead of the live ones in `fields` (the session's stored fields).
        """
        if flush:
            self._rows_ready.extend(self._rows_new)
            self._events_ready.extend(self._events_new)
            self._rows_new.clear()
            self._events_new.clear()
        rows, self._rows_ready = self._rows_ready, []
        events, self._events_ready = self._events_ready, []
        checkpoint, self._checkpoint = self._checkpoint, None
        record = None
        if self._dirty or rows or checkpoint:
            self._dirty = False
            record = dict(fields)
            if busy and self._checkpoint_fields is not None:
                record.update(self._checkpoint_fields)
        return Batch(rows, events, checkpoint, record)
