"""What a session recorded but has not written yet, and the rule for when it may be written.

While a run trains, its report rows and events wait ("new") until a checkpoint covers their step
("ready"), so the database never holds history ahead of its checkpoint: after a crash the stored
session, its checkpoint and its history agree. Outside a run everything may be written at once.
"""

from __future__ import annotations

from typing import Any

Checkpoint = tuple[int, bytes]  # (step, Trainer.checkpoint() bytes)


class WriteBuffer:
    """One session's pending writes. Not locked itself: the session holds its state lock around
    every call, so the buffers change together with the fields they describe."""

    def __init__(self) -> None:
        self._rows_new: list[dict[str, Any]] = []  # recorded after the last checkpoint
        self._events_new: list[dict[str, Any]] = []
        self._rows_ready: list[dict[str, Any]] = []  # covered by a checkpoint: may be written
        self._events_ready: list[dict[str, Any]] = []
        self._checkpoint: Checkpoint | None = None  # the checkpoint to write next
        # step, epoch and metrics at the last checkpoint: what a running session's record says
        self._checkpoint_fields: dict[str, Any] | None = None
        self._dirty = False  # the session's record changed since it was last written

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

    def mark_dirty(self) -> None:
        """The session's record changed: write it with the next batch."""
        self._dirty = True

    def take(
        self, *, flush: bool, busy: bool, fields: dict[str, Any]
    ) -> tuple[
        list[dict[str, Any]], list[dict[str, Any]], Checkpoint | None, dict[str, Any] | None
    ]:
        """What to write now: (rows, events, checkpoint, record fields or None).

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
        return rows, events, checkpoint, record
