"""The SessionManager: this server's registry of sessions, the capacity they share, the persister
thread and shutdown.

A `Session` (server/session.py) owns its trainer, history, worker, pending writes and record, and
every change of its state. The manager finds sessions (loading a stored one on first use),
creates and deletes them, caps the stored ones at MAX_SESSIONS and the training ones at
--max-training (`TrainingSlots`), holds the loaded ones within the memory budget
(--memory-budget, server/memory.py), wakes about once a second to write what running sessions
have checkpointed and to unload the ones idle for --unload-after seconds, and at shutdown stops
every worker after its current step and writes everything. It also keeps the uploads
(server/uploads.py): one cannot be deleted while a session trains on it.
"""

from __future__ import annotations

import functools
import logging
import secrets
import threading
import time
from typing import Any

from engine import cost
from engine.config import ConfigError, RunConfig, config_to_dict, parse_config
from server.capacity import TrainingSlots
from server.errors import NotFoundError, TooManySessionsError
from server.external import ExternalSession, Link
from server.history import History
from server.hub import Hub
from server.ingest_schema import TopologyFrame
from server.limits import MAX_SESSIONS, UPLOAD_QUOTA_BYTES
from server.memory import MemoryBudget, default_memory_budget, estimate_cost
from server.session import Session, SessionContext
from server.session_record import SessionRecord, default_name
from server.store import Store, utc_now
from server.uploads import UploadInUseError, Uploads, load_upload, upload_id_of

log = logging.getLogger("backprop_lens.sessions")

PERSIST_INTERVAL = 1.0  # seconds the persister sleeps between rounds
UNLOAD_AFTER = 600.0  # seconds a session not training stays loaded after its last use
AnySession = Session | ExternalSession


class SessionManager:
    """Every session of this server: lookup, creation, deletion, capacity, persister, shutdown."""

    def __init__(
        self,
        store: Store,
        max_training: int,
        hub: Hub | None = None,
        *,
        memory_budget: int | None = None,
        unload_after: float | None = UNLOAD_AFTER,
        upload_quota: int = UPLOAD_QUOTA_BYTES,
    ) -> None:
        """`memory_budget`: bytes the loaded sessions may hold (default: half the machine's
        memory); `unload_after`: seconds of idleness before a session is unloaded (None:
        never); `upload_quota`: bytes the stored uploads may take, decompressed."""
        self.store = store
        self.slots = TrainingSlots(max_training)  # sessions that may train (or step) at once
        self.memory = MemoryBudget(memory_budget or default_memory_budget())
        self.memory.make_room = self._make_room
        self.unload_after = unload_after
        self.uploads = Uploads(store, upload_quota)
        self._hub = hub
        self._context = SessionContext(store, self.slots, hub, self.wake_persister, self.memory)
        # found or created (in memory or unloaded); external sessions are fed by their scripts
        self._sessions: dict[str, AnySession] = {}
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
            session.last_used = time.monotonic()
            return session
        stored = None if deleted else self.store.get_session(session_id)
        if stored is None:
            raise NotFoundError(f"no session with id {session_id!r}")
        record = SessionRecord.from_stored(stored)
        session: AnySession
        if record.kind == "external":
            history = self.store.load_history(session_id)
            snapshot = self.store.load_snapshot(session_id)
            session = ExternalSession(record, history, self.store, self._context.hub, snapshot)
        else:
            step = self.store.checkpoint_step(session_id)  # what the session resumes from
            if step is not None:
                record.step = step
            # The checkpoint and the history are read when first needed (a session only looked
            # at holds neither).
            session = Session(record, None, self._context)
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
        uploads = functools.partial(load_upload, self.store)
        estimate = cost.check(estimate_cost(run_config, uploads))  # CostError: over a limit
        session_id = secrets.token_hex(6)
        # Reserved before the trainer exists (MemoryBudgetError), then set to its exact cost.
        self.memory.reserve(session_id, estimate.memory_bytes, "creating this session")
        try:
            trainer = Trainer(run_config, uploads=uploads)
            self.memory.reserve(session_id, trainer.cost.memory_bytes, "creating this session")
            doc = config_to_dict(trainer.config)
            record = SessionRecord.new(session_id, name or default_name(doc), doc, utc_now())
            with self._create_lock:  # the count and the insert, as one step
                self._check_room()
                self._check_upload(run_config)
                self.store.create_session(record.id, record.name, doc, record.created_at)
        except BaseException:
            self.memory.release(session_id)
            raise
        session = Session(record, History(self.store.policy), self._context, trainer=trainer)
        with self._lock:
            self._sessions[record.id] = session
        return session

    def _check_upload(self, config: RunConfig) -> None:
        """The upload a new session trains on is still stored (it may have been deleted since
        the trainer read it; the caller holds the create lock, as delete_upload does)."""
        upload_id = upload_id_of(config.model_dump())
        if upload_id is not None and self.store.get_upload(upload_id) is None:
            raise ConfigError.single(
                "dataset.name", f"expected the id of an uploaded dataset, got {upload_id!r}"
            )

    def open_external(self, topology: TopologyFrame, link: Link) -> ExternalSession:
        """The session a watched script feeds through `link`: the one it names in "resume"
        when that still exists as an external session, else a new one (ConflictError at the
        session cap (TooManySessionsError), or when the named one is live on another connection)."""
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
        """Refuse one more stored session at MAX_SESSIONS (TooManySessionsError naming the limit)."""
        stored = len(self.store.list_sessions())
        if stored >= MAX_SESSIONS:
            raise TooManySessionsError(
                f"{stored} sessions are stored, the limit is {MAX_SESSIONS}; delete one first"
            )

    def delete(self, session: AnySession) -> None:
        """Forget a session, then stop it and erase it with its history and checkpoint."""
        with self._lock:  # from now on nothing can load it again
            self._sessions.pop(session.id, None)
            self._deleted.add(session.id)
        session.delete()

    # ---- memory ------------------------------------------------------------------------------

    def _make_room(self, nbytes: int, keep: str) -> None:
        """Unload idle sessions other than `keep`, least recently used first, until `keep`
        could hold `nbytes` within the memory budget (MemoryBudget.make_room)."""
        with self._lock:
            sessions = [s for s in self._sessions.values() if s.id != keep and s.loaded]
        for session in sorted(sessions, key=lambda s: s.last_used):
            if self.memory.fits(keep, nbytes):
                return
            if session.busy is None and session.unload():
                log.info("session %s unloaded to make room in the memory budget", session.id)

    def unload_idle(self, now: float | None = None) -> list[str]:
        """Unload the sessions nobody used for --unload-after seconds (not training, not
        watched); the ids unloaded. A run counts as use until it ends."""
        if self.unload_after is None:
            return []
        now = time.monotonic() if now is None else now
        with self._lock:
            sessions = [s for s in self._sessions.values() if s.loaded]
        unloaded = []
        for session in sessions:
            if session.busy is not None:
                session.last_used = now
                continue
            watched = self._hub is not None and self._hub.viewers(session.id) > 0
            if now - session.last_used >= self.unload_after and not watched and session.unload():
                unloaded.append(session.id)
        return unloaded

    def memory_report(self) -> dict[str, Any]:
        """GET /api/memory: the budget, what the loaded sessions hold, and each stored session
        loaded (in memory) or only stored."""
        now = time.monotonic()
        with self._lock:
            loaded = {k: s for k, s in self._sessions.items() if s.loaded}
            deleted = set(self._deleted)
        rows = []
        for row in self.store.list_sessions():
            if row["id"] in deleted:
                continue
            session = loaded.get(row["id"])
            rows.append(
                {
                    "id": row["id"],
                    "loaded": session is not None,
                    "training": session is not None and session.busy is not None,
                    "memory_bytes": self.memory.held(row["id"]),
                    "idle_seconds": None if session is None else round(now - session.last_used, 3),
                }
            )
        return {
            "budget_bytes": self.memory.budget,
            "reserved_bytes": self.memory.reserved(),
            "unload_after": self.unload_after,
            "stored": len(rows),
            "loaded": sum(1 for r in rows if r["loaded"]),
            "sessions": rows,
        }

    # ---- uploads -----------------------------------------------------------------------------

    def upload_users(self) -> dict[str, list[str]]:
        """Upload id -> ids of the stored sessions training on it."""
        users: dict[str, list[str]] = {}
        with self._lock:
            deleted = set(self._deleted)
        for row in self.store.list_sessions():
            upload_id = upload_id_of(row["config"])
            if upload_id is not None and row["id"] not in deleted:
                users.setdefault(upload_id, []).append(row["id"])
        return users

    def upload_catalogue(self) -> dict[str, Any]:
        """GET /api/datasets/uploads: every upload with the sessions using it, and the quota."""
        entries = self.uploads.entries(self.upload_users())
        return {
            "uploads": entries,
            "quota_bytes": self.uploads.quota,
            "used_bytes": sum(e["bytes"] for e in entries),
        }

    def delete_upload(self, upload_id: str) -> None:
        """Delete an upload (NotFoundError if unknown, UploadInUseError naming the sessions
        that train on it: delete them first)."""
        with self._create_lock:  # no session starts using it meanwhile
            if self.store.get_upload(upload_id) is None:
                raise NotFoundError(f"no uploaded dataset with id {upload_id!r}")
            users = sorted(self.upload_users().get(upload_id, []))
            if users:
                raise UploadInUseError(
                    f"upload {upload_id} is used by {len(users)} session(s): "
                    f"{', '.join(users)}; delete them first",
                    users,
                )
            self.store.delete_upload(upload_id)

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
            try:
                self.unload_idle()
            except Exception:  # the persister must go on writing the running sessions
                log.exception("unloading idle sessions failed")

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
