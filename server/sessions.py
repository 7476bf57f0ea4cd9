"""The SessionManager: this server's registry of sessions, the capacity they share, the persister
thread and shutdown.

A `Session` (server/session.py) owns its trainer, history, worker, pending writes and record, and
every change of its state. The manager finds sessions (loading a stored one on first use),
creates and deletes them, caps the stored ones at MAX_SESSIONS and the training ones at
--max-training (`TrainingSlots`), wakes about once a second to write what running sessions
have checkpointed, and at shutdown stops every worker after its current step and writes
everything.
"""

from __future__ import annotations

import functools
import logging
import secrets
import threading
import time
from typing import Any

from engine.config import RunConfig, config_to_dict, parse_config
from server.capacity import TrainingSlots
from server.errors import ConflictError, NotFoundError
from server.history import History
from server.hub import Hub
from server.limits import MAX_SESSIONS
from server.session import Session, SessionContext, load_upload
from server.session_record import SessionRecord, default_name
from server.store import Store, utc_now

log = logging.getLogger("backprop_lens.sessions")

PERSIST_INTERVAL = 1.0  # seconds the persister sleeps between rounds


class SessionManager:
    """Every session of this server: lookup, creation, deletion, capacity, persister, shutdown."""

    def __init__(self, store: Store, max_training: int, hub: Hub | None = None) -> None:
        self.store = store
        self.slots = TrainingSlots(max_training)  # sessions that may train (or step) at once
        self._context = SessionContext(store, self.slots, hub, self.wake_persister)
        self._sessions: dict[str, Session] = {}  # loaded sessions
        self._deleted: set[str] = set()  # ids deleted by this process
        self._lock = threading.Lock()  # guards _sessions and _deleted
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
        stored = None if deleted else self.store.get_session(session_id)
        if stored is None:
            raise NotFoundError(f"no session with id {session_id!r}")
        session = Session(
            SessionRecord.from_stored(stored),
            self.store.load_history(session_id),
            self._context,
            checkpoint=self.store.load_checkpoint(session_id),
        )
        with self._lock:
            if session_id in self._deleted:
                raise NotFoundError(f"no session with id {session_id!r}")
            return self._sessions.setdefault(session_id, session)

    def list(self) -> list[dict[str, Any]]:
        """Every session as SessionPublic, newest first (a loaded one shows its live state)."""
        return self._publics(self.store.list_sessions())

    def page(
        self, limit: int, after: tuple[str, int] | None = None, configs: bool = True
    ) -> tuple[list[dict[str, Any]], tuple[str, int] | None]:
        """Up to `limit` sessions as `list` gives them, from after the key `after`, and the key
        to continue from (None at the end); `configs=False` leaves each one's config out."""
        rows = self.store.session_page(limit + 1, after)  # one more: is there a next page?
        more = len(rows) > limit
        rows = rows[:limit]
        out = self._publics([row for _key, row in rows])
        if not configs:
            for public in out:
                del public["config"]
        return out, (rows[-1][0] if more else None)

    def _publics(self, stored: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Stored rows as SessionPublic, a loaded session's live state instead of its row,
        the ones this process deleted left out."""
        with self._lock:
            loaded = dict(self._sessions)
            deleted = set(self._deleted)
        out = []
        for row in stored:
            if row["id"] in deleted:
                continue
            session = loaded.get(row["id"])
            out.append(
                session.public() if session is not None else SessionRecord.from_stored(row).public()
            )
        return out

    def training_count(self) -> int:
        """Sessions training or stepping right now."""
        return self.slots.count()

    # ---- creation and deletion --------------------------------------------------------------

    def create(self, config: RunConfig | dict[str, Any], name: str | None = None) -> Session:
        """Build a Trainer (ConfigError if the config does not fit) and store a new session."""
        from engine.trainer import Trainer  # imported on first use: the server starts faster

        run_config = parse_config(config)
        self._check_room()  # early, so a full store does not build a trainer first
        trainer = Trainer(run_config, uploads=functools.partial(load_upload, self.store))
        doc = config_to_dict(trainer.config)
        record = SessionRecord.new(secrets.token_hex(6), name or default_name(doc), doc, utc_now())
        with self._create_lock:  # the count and the insert, as one step
            self._check_room()
            self.store.create_session(record.id, record.name, doc, record.created_at)
        session = Session(record, History(self.store.policy), self._context, trainer=trainer)
        with self._lock:
            self._sessions[record.id] = session
        return session

    def _check_room(self) -> None:
        """Refuse one more stored session at MAX_SESSIONS (ConflictError naming the limit)."""
        stored = len(self.store.list_sessions())
        if stored >= MAX_SESSIONS:
            raise ConflictError(
                f"{stored} sessions are stored, the limit is {MAX_SESSIONS}; delete one first"
            )

    def delete(self, session: Session) -> None:
        """Forget a session, then stop it and erase it with its history and checkpoint."""
        with self._lock:  # from now on nothing can load it again
            self._sessions.pop(session.id, None)
            self._deleted.add(session.id)
        session.delete()

    # ---- persistence and shutdown -----------------------------------------------------------

    def wake_persister(self) -> None:
        """Ask the persister thread to write soon."""
        self._wake.set()

    def _persist_loop(self) -> None:
        """Write what running sessions have checkpointed, about once a second."""
        while not self._closed.is_set():
            self._wake.wait(PERSIST_INTERVAL)
            self._wake.clear()
            with self._lock:
                sessions = list(self._sessions.values())
            for session in sessions:
                if session.busy is not None:
                    session.persist(everything=False)

    def shutdown(self, timeout: float = 20.0) -> None:
        """Stop every worker after its current step, checkpoint, write everything, close."""
        self.slots.close()
        with self._lock:
            sessions = list(self._sessions.values())
        for session in sessions:
            session.request_stop()
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
            session.persist()
