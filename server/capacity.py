"""Training capacity: how many sessions may train (or step) at once, shared by all of them.

The SessionManager owns one `TrainingSlots`; a session takes a slot when a run begins and gives
it back when its worker ends. Taking one checks and counts in one step under the slots' lock, so
starts that arrive together cannot all see room for one more.
"""

from __future__ import annotations

import threading

from server.errors import ShuttingDownError, TooManyTrainingError


class TrainingSlots:
    """At most `limit` runs at once (--max-training); none once the server is closing."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"max_training: expected an integer >= 1, got {limit}")
        self.limit = limit  # sessions that may train (or step) at once
        self.closing = False  # set at shutdown: no new runs, and stopped runs end "interrupted"
        self._holders: set[str] = set()  # ids of the sessions holding a slot
        self._lock = threading.Lock()  # guards _holders

    def take(self, session_id: str, hint: str = "") -> None:
        """Give `session_id` a slot (ShuttingDownError while closing, TooManyTrainingError when
        every slot is taken; `hint` ends its message, e.g. '; stop one first')."""
        with self._lock:
            if self.closing:
                raise ShuttingDownError("the server is shutting down")
            busy = len(self._holders)
            if busy >= self.limit:
                raise TooManyTrainingError(
                    f"{busy} sessions are training already, the most this server allows "
                    f"(--max-training {self.limit}){hint}"
                )
            self._holders.add(session_id)

    def give_back(self, session_id: str) -> None:
        """Free the slot of `session_id` (idempotent)."""
        with self._lock:
            self._holders.discard(session_id)

    def count(self) -> int:
        """Slots taken right now."""
        with self._lock:
            return len(self._holders)

    def close(self) -> None:
        """Refuse every new run from now on (server shutdown)."""
        self.closing = True
