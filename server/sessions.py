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
from server.external import ExternalSession, Link
from server.history import History
from server.hub import Hub
from server.ingest_schema import TopologyFrame
from server.limits import MAX_SESSIONS
from server.session import Session, SessionContext, load_upload
from server.session_record import SessionRecord, default_name
from server.store import Store, utc_now

log = logging.getLogger("backprop_lens.sessions")

PERSIST_INTERVAL = 1.0  # seconds the persister sleeps between rounds
AnySession = Session | ExternalSession


class SessionManager:
    """Every session of this server: lookup, creation, deletion, capacity, persister, shutdown."""

    def __init__(self, store: Store, max_training: int, hub: Hub | None = None) -> None:
        self.store = store
        self.slots = TrainingSlots(max_training)  # sessions that may train (or step) at once
        self._context = SessionContext(store, self.slots, hub, self.wake_persister)
        self._sessions: dict[str, AnySession] = {}  # loaded sessions
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

    def get(self, session_id: str) -> AnySession:
        """A session by id, loaded from the store on first use (NotFoundError if unknown)."""
        with self._lock:
            session = self._sessions.get(session_id)
            deleted = session_id in self._deleted
        if session is not None:
            return session
        stored = None if deleted else self.store.get_session(session_id)
        if stored is None:
            raise NotFoundError(f"no session with id {session_id!r}")
        record = SessionRecord.from_stored(stored)
        session: AnySession
        if record.kind == "external":
            history = self.store.load_history(session_id)
            session = ExternalSession(record, history, self.store, self._context.hub)
        else:
            session = Session(
                record,
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
        stored = self.store.list_sessions()
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

    def open_external(self, topology: TopologyFrame, link: Link) -> ExternalSession:
        """The session a watched script feeds through `link`: the one it names in "resume"
        when that still exists as an external session, else a new one (ConflictError at the
        session cap, or when the named one is live on another connection)."""
        if topology.resume is not None:
            try:
                found = self.get(topology.resume)
            except NotFoundError:
                found = None
            if isinstance(found, ExternalSession):
                found.attach(link)
                return found
        doc = topology.model_dump(exclude={"type", "resume", "name"}, exclude_none=True)
        doc = {"kind": "external", **doc}
        name = topology.name or f"{topology.model} ({topology.framework})"
        record = SessionRecord.new(secrets.token_hex(6), name, doc, utc_now())
        with self._create_lock:
            self._check_room()
            self.store.create_session(record.id, record.name, doc, record.created_at)
        session = ExternalSession(record, History(self.store.policy), self.store, self._context.hub)
        session.attach(link)
        with self._lock:
            self._sessions[record.id] = session
        session.persist()
        return session

    def _check_room(self) -> None:
        """Refuse one more stored session at MAX_SESSIONS (ConflictError naming the limit)."""
        stored = len(self.store.list_sessions())
        if stored >= MAX_SESSIONS:
            raise ConflictError(
                f"{stored} sessions are stored, the limit is {MAX_SESSIONS}; delete one first"
            )

    def delete(self, session: AnySession) -> None:
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
