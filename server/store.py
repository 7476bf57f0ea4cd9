"""SQLite persistence of sessions, metric history, events, checkpoints and uploads in --data-dir.

One `Store` per server process: it takes the data directory's lock (server/data_dir.py) so two
servers never share a database, and keeps one sqlite3 connection (WAL, synchronous=NORMAL) guarded
by a lock, so worker threads and the event loop can call it. Every write call is one transaction.
The metric history on disk is thinned with the same rule as `server.history.History` (compacted
every few hundred rows), so a run of a million steps stays a few thousand rows. Values are JSON
(orjson) with non-finite floats stored as null; arrays are .npy bytes read with allow_pickle=False.
Disk problems (read-only directory, disk full, I/O error, not a database) raise `StoreError` with
a message naming the directory; nothing is dropped silently. Opening refuses a damaged database
(SQLite's quick_check) and a zero-length file before writing anything into them.
"""

from __future__ import annotations

import io
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from server.data_dir import DataDirLock, StoreError, make_data_dir, prepare_database_file
from server.data_dir import StoreLockedError as StoreLockedError
from server.history import (
    DEFAULT_POLICY,
    History,
    ThinningPolicy,
    check_event,
    check_row,
    merge_clip_event,
    middle_stride,
)

DB_NAME = "backprop-lens.sqlite3"
SCHEMA_VERSION = 1
COMPACT_EVERY = 256  # thin the on-disk history after this many appended rows (or events)

# Session columns update_session() may change, and the stored column of each.
_SESSION_FIELDS = {
    "name": "name",
    "status": "status",
    "step": "step",
    "epoch": "epoch",
    "metrics": "metrics_json",
    "message": "message",
    "best_step": "best_step",
    "updated_at": "updated_at",
    "config": "config_json",
    "created_at": "created_at",
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    name TEXT,
    config_json TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'idle',
    step INTEGER NOT NULL DEFAULT 0,
    epoch INTEGER NOT NULL DEFAULT 0,
    metrics_json TEXT,
    message TEXT,
    best_step INTEGER,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS metrics (
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    step INTEGER NOT NULL,
    row_json TEXT NOT NULL,
    PRIMARY KEY (session_id, seq)
);
CREATE TABLE IF NOT EXISTS events (
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    step INTEGER NOT NULL,
    event_json TEXT NOT NULL,
    PRIMARY KEY (session_id, seq)
);
CREATE TABLE IF NOT EXISTS checkpoints (
    session_id TEXT PRIMARY KEY REFERENCES sessions(id) ON DELETE CASCADE,
    step INTEGER NOT NULL,
    blob BLOB NOT NULL,
    saved_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS snapshots (
    session_id TEXT PRIMARY KEY REFERENCES sessions(id) ON DELETE CASCADE,
    step INTEGER NOT NULL,
    doc_json TEXT NOT NULL,
    saved_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS uploads (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    x BLOB NOT NULL,
    y BLOB NOT NULL,
    meta_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


def utc_now() -> str:
    """The current time as ISO 8601 UTC, e.g. 2024-05-01T12:00:00.123456+00:00."""
    return datetime.now(UTC).isoformat()


def dumps(value: Any) -> str:
    """JSON text of `value` (orjson); NaN and +-Inf become null, NumPy values are converted."""
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS).decode()


def _npy_bytes(array: np.ndarray, what: str) -> bytes:
    """`array` as .npy bytes without pickle (object arrays are refused)."""
    array = np.asarray(array)
    if array.dtype.hasobject:
        raise ValueError(f"{what}: expected a numeric array, got dtype {array.dtype}")
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _npy_array(blob: bytes) -> np.ndarray:
    """The array stored by _npy_bytes."""
    return np.load(io.BytesIO(blob), allow_pickle=False)


class Store:
    """The server's database in `data_dir` (thread-safe; one per process, see StoreLockedError)."""

    def __init__(self, data_dir: Path | str, policy: ThinningPolicy | None = None) -> None:
        self.data_dir = Path(data_dir).expanduser().absolute()
        self.path = self.data_dir / DB_NAME  # the SQLite file
        self.policy = policy or DEFAULT_POLICY  # thinning of metrics and events on disk
        self._lock = threading.RLock()  # guards the connection and the caches below
        self._conn: sqlite3.Connection | None = None
        self._dir_lock = DataDirLock(self.data_dir)  # held while the store is open
        self._next_seq: dict[str, int] = {}  # session -> next metrics seq (lazily read)
        self._next_event_seq: dict[str, int] = {}  # session -> next events seq
        self._since_compact: dict[str, int] = {}  # session -> rows/events since last compaction
        make_data_dir(self.data_dir)
        self._dir_lock.acquire()
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    # ---- opening and closing ----------------------------------------------------------------

    def _open(self) -> None:
        """Check the file, connect, set the pragmas, create the schema and prove the database is
        writable."""
        prepare_database_file(self.path)
        with self._guard("open the database"):
            conn = sqlite3.connect(
                self.path, check_same_thread=False, isolation_level=None, timeout=5.0
            )
            self._conn = conn
            conn.execute("PRAGMA busy_timeout = 5000")
            self._check_intact(conn)
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(
                    f"cannot use write-ahead logging for {self.path} (journal mode {mode}); "
                    "the data directory may be read-only or on a network file system"
                )
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} was written by a newer Backprop Lens (schema {version}, this "
                    f"version reads {SCHEMA_VERSION}); upgrade or pass a different --data-dir"
                )
            with self._tx():
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                # A real write: a read-only file or directory fails here, not mid-run.
                conn.execute(
                    "INSERT OR REPLACE INTO meta(key, value) VALUES ('opened_at', ?)", (utc_now(),)
                )

    def _check_intact(self, conn: sqlite3.Connection) -> None:
        """Refuse a damaged database before anything is written into it (StoreError quoting
        SQLite's quick_check, the integrity check without the slow index comparison)."""
        rows = conn.execute("PRAGMA quick_check(5)").fetchall()
        problems = [" ".join(str(row[0]).split()) for row in rows]  # one line each
        if problems != ["ok"]:
            raise StoreError(
                f"the database {self.path} is damaged (SQLite quick_check: "
                f"{'; '.join(problems)}); nothing was written into it: move it away (keep it for "
                "recovery, e.g. sqlite3's .recover) or pass a different --data-dir"
            )

    def close(self) -> None:
        """Close the database and release the directory lock (idempotent)."""
        with self._lock:
            if self._conn is not None:
                with suppress(sqlite3.Error):
                    self._conn.close()
                self._conn = None
            self._dir_lock.release()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        """Whether close() was called."""
        return self._conn is None

    # ---- plumbing ---------------------------------------------------------------------------

    @contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        """Hold the lock and turn sqlite3/OS errors into StoreError naming the data directory."""
        with self._lock:
            try:
                yield
            except StoreError:
                raise
            except sqlite3.Error as exc:
                raise self._translate(exc, action) from exc
            except OSError as exc:
                raise StoreError(
                    f"cannot {action} in {self.data_dir}: {exc.strerror or exc}"
                ) from exc

    def _translate(self, exc: sqlite3.Error, action: str) -> StoreError:
        """A StoreError with a message a user can act on."""
        text = str(exc)
        lower = text.lower()
        where = f"the data directory {self.data_dir}"
        if "full" in lower:
            hint = f"the disk holding {where} is full; free some space"
        elif "readonly" in lower or "read-only" in lower or "read only" in lower:
            hint = f"{where} or its database is read-only; pass a writable --data-dir"
        elif "disk i/o error" in lower:
            hint = f"a disk I/O error occurred in {where}; check the disk"
        elif "unable to open" in lower:
            hint = f"cannot open {self.path}; {where} may be missing or read-only"
        elif "not a database" in lower or "malformed" in lower:
            hint = f"{self.path} is not a valid Backprop Lens database; move it away"
        elif "locked" in lower or "busy" in lower:
            hint = f"{self.path} is locked by another program"
        elif isinstance(exc, sqlite3.ProgrammingError) and "closed" in lower:
            hint = "the store is closed"
        else:
            hint = f"database error in {where}"
        return StoreError(f"cannot {action}: {hint} (sqlite: {text})")

    @property
    def _db(self) -> sqlite3.Connection:
        """The open connection (StoreError once closed)."""
        if self._conn is None:
            raise StoreError("the store is closed")
        return self._conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE ... COMMIT, rolled back on error)."""
        conn = self._db
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # also when COMMIT itself failed (e.g. disk full)
                with suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise

    def _exists(self, conn: sqlite3.Connection, session_id: str) -> bool:
        """Whether the session row exists."""
        row = conn.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone()
        return row is not None

    # ---- sessions ---------------------------------------------------------------------------

    def create_session(
        self, id: str, name: str | None, config: dict[str, Any], created_at: str
    ) -> None:
        """Insert a new idle session at step 0 (StoreError if the id exists)."""
        with self._guard("create a session"), self._tx() as conn:
            if self._exists(conn, id):
                raise StoreError(f"a session with id {id!r} already exists")
            conn.execute(
                "INSERT INTO sessions (id, name, config_json, status, step, epoch, metrics_json,"
                " message, best_step, created_at, updated_at)"
                " VALUES (?, ?, ?, 'idle', 0, 0, NULL, NULL, NULL, ?, ?)",
                (id, name, dumps(config), created_at, created_at),
            )
            self._next_seq[id] = 0
            self._next_event_seq[id] = 0
            self._since_compact[id] = 0

    def update_session(self, id: str, **fields: Any) -> bool:
        """Change some of status, step, epoch, metrics, message, best_step, updated_at, config,
        name. Returns False when the session does not exist (e.g. deleted meanwhile)."""
        unknown = set(fields).difference(_SESSION_FIELDS)
        if unknown:
            raise ValueError(
                f"update_session: unknown fields {sorted(unknown)}, expected some of "
                f"{sorted(_SESSION_FIELDS)}"
            )
        if not fields:
            return self.get_session(id) is not None
        assignments: list[str] = []
        values: list[Any] = []
        for key, value in fields.items():
            if key in ("metrics", "config"):
                value = None if value is None else dumps(value)
            elif isinstance(value, np.generic):
                value = value.item()
            assignments.append(f"{_SESSION_FIELDS[key]} = ?")
            values.append(value)
        with self._guard("update a session"), self._tx() as conn:
            cursor = conn.execute(
                f"UPDATE sessions SET {', '.join(assignments)} WHERE id = ?", (*values, id)
            )
            return cursor.rowcount > 0

    def get_session(self, id: str) -> dict[str, Any] | None:
        """The session as SessionPublic fields (config and metrics as dicts), or None."""
        with self._guard("read a session"):
            row = self._db.execute(_SELECT_SESSION + " WHERE id = ?", (id,)).fetchone()
        return None if row is None else _session_dict(row)

    def list_sessions(self) -> list[dict[str, Any]]:
        """Every session, newest first (by created_at)."""
        with self._guard("list sessions"):
            rows = self._db.execute(
                _SELECT_SESSION + " ORDER BY created_at DESC, rowid DESC"
            ).fetchall()
        return [_session_dict(row) for row in rows]

    def session_page(
        self, limit: int, after: tuple[str, int] | None = None
    ) -> list[tuple[tuple[str, int], dict[str, Any]]]:
        """Up to `limit` sessions in list_sessions' order, each with its key (created_at, rowid);
        with `after`, only those that come after that key, so a session created meanwhile (a
        later created_at) never shifts the rest of a listing."""
        where, args = ("", ()) if after is None else (" WHERE (created_at, rowid) < (?, ?)", after)
        with self._guard("list sessions"):
            rows = self._db.execute(
                _SELECT_SESSION.replace("SELECT ", "SELECT rowid, ", 1)
                + where
                + " ORDER BY created_at DESC, rowid DESC LIMIT ?",
                (*args, limit),
            ).fetchall()
        return [((row[10], row[0]), _session_dict(row[1:])) for row in rows]

    def delete_session(self, id: str) -> bool:
        """Delete a session with its history, events, checkpoint and snapshot. False if it did
        not exist."""
        with self._guard("delete a session"), self._tx() as conn:
            # also cascaded by foreign keys
            for table in ("metrics", "events", "checkpoints", "snapshots"):
                conn.execute(f"DELETE FROM {table} WHERE session_id = ?", (id,))
            cursor = conn.execute("DELETE FROM sessions WHERE id = ?", (id,))
            self._forget(id)
            return cursor.rowcount > 0

    def mark_interrupted(self) -> list[str]:
        """Sessions left "running" by a previous server become "interrupted"; returns their ids."""
        with self._guard("mark interrupted sessions"), self._tx() as conn:
            ids = [
                row[0]
                for row in conn.execute(
                    "SELECT id FROM sessions WHERE status = 'running' ORDER BY created_at"
                )
            ]
            if ids:
                conn.execute(
                    "UPDATE sessions SET status = 'interrupted', updated_at = ?"
                    " WHERE status = 'running'",
                    (utc_now(),),
                )
        return ids

    # ---- metric history and events ----------------------------------------------------------

    def _forget(self, id: str) -> None:
        """Drop the cached counters of a session."""
        self._next_seq.pop(id, None)
        self._next_event_seq.pop(id, None)
        self._since_compact.pop(id, None)

    def _seq(self, conn: sqlite3.Connection, table: str, cache: dict[str, int], id: str) -> int:
        """The next sequence number of `table` for the session (cached after one query)."""
        if id not in cache:
            row = conn.execute(
                f"SELECT MAX(seq) FROM {table} WHERE session_id = ?", (id,)
            ).fetchone()
            cache[id] = 0 if row[0] is None else int(row[0]) + 1
        return cache[id]

    def append_metrics(self, id: str, rows: list[dict[str, Any]]) -> bool:
        """Append report rows (Report.to_dict(); "events" inside are ignored) in one transaction.
        Returns False (and writes nothing) when the session does not exist."""
        clean = [check_row(row) for row in rows]
        if not clean:
            return True
        with self._guard("save metrics"):
            try:
                with self._tx() as conn:
                    if not self._exists(conn, id):
                        return False
                    start = self._seq(conn, "metrics", self._next_seq, id)
                    conn.executemany(
                        "INSERT INTO metrics (session_id, seq, step, row_json) VALUES (?, ?, ?, ?)",
                        [
                            (id, start + i, int(row["step"]), dumps(row))
                            for i, row in enumerate(clean)
                        ],
                    )
                    self._next_seq[id] = start + len(clean)
                    self._count_and_compact(conn, id, len(clean))
            except BaseException:
                self._forget(id)  # re-read the counters from disk next time
                raise
        return True

    def append_events(self, id: str, events: list[dict[str, Any]]) -> bool:
        """Append events (dicts with "step"); a clip event may merge into the previous one
        exactly as History.add_event does. False when the session does not exist."""
        clean = [check_event(event) for event in events]
        if not clean:
            return True
        with self._guard("save events"):
            try:
                with self._tx() as conn:
                    if not self._exists(conn, id):
                        return False
                    seq = self._seq(conn, "events", self._next_event_seq, id)
                    last = conn.execute(
                        "SELECT seq, event_json FROM events WHERE session_id = ?"
                        " ORDER BY seq DESC LIMIT 1",
                        (id,),
                    ).fetchone()
                    last_seq, last_event = (
                        (None, None) if last is None else (last[0], orjson.loads(last[1]))
                    )
                    added = 0
                    for event in clean:
                        merged = merge_clip_event(last_event, event, self.policy)
                        if merged is not None and last_seq is not None:
                            conn.execute(
                                "UPDATE events SET event_json = ? WHERE session_id = ? AND seq = ?",
                                (dumps(merged), id, last_seq),
                            )
                            last_event = merged
                            continue
                        conn.execute(
                            "INSERT INTO events (session_id, seq, step, event_json)"
                            " VALUES (?, ?, ?, ?)",
                            (id, seq, int(event["step"]), dumps(event)),
                        )
                        last_seq, last_event = seq, event
                        seq += 1
                        added += 1
                    self._next_event_seq[id] = seq
                    self._count_and_compact(conn, id, added)
            except BaseException:
                self._forget(id)
                raise
        return True

    def _count_and_compact(self, conn: sqlite3.Connection, id: str, added: int) -> None:
        """Compact the session's history every COMPACT_EVERY appended rows or events."""
        count = self._since_compact.get(id, 0) + added
        if count >= COMPACT_EVERY:
            self._compact(conn, id)
            count = 0
        self._since_compact[id] = count

    def _compact(self, conn: sqlite3.Connection, id: str) -> None:
        """Delete the rows and events that thinning no longer keeps (inside a transaction)."""
        policy = self.policy
        total = self._seq(conn, "metrics", self._next_seq, id)
        if total > policy.head + policy.tail:
            stride = middle_stride(total, policy)
            conn.execute(
                "DELETE FROM metrics WHERE session_id = ? AND seq >= ? AND seq < ?"
                " AND (seq - ?) % ? != 0",
                (id, policy.head, total - policy.tail, policy.head, stride),
            )
        events_total = self._seq(conn, "events", self._next_event_seq, id)
        if events_total > policy.max_events:
            conn.execute(
                "DELETE FROM events WHERE session_id = ? AND seq >= ? AND seq < ?",
                (id, policy.events_head, events_total - policy.events_tail),
            )

    def compact(self, id: str) -> None:
        """Thin the session's history on disk now (append_* also does it periodically)."""
        with self._guard("compact the history"), self._tx() as conn:
            self._compact(conn, id)
            self._since_compact[id] = 0

    def load_history(self, id: str) -> History:
        """The session's History, thinned exactly as the in-memory one was (empty if unknown)."""
        history = History(self.policy)
        with self._guard("read the history"):
            conn = self._db
            rows = conn.execute(
                "SELECT seq, row_json FROM metrics WHERE session_id = ? ORDER BY seq", (id,)
            ).fetchall()
            events = conn.execute(
                "SELECT seq, event_json FROM events WHERE session_id = ? ORDER BY seq", (id,)
            ).fetchall()
        total = rows[-1][0] + 1 if rows else 0
        history.restore_rows(total, ((seq, orjson.loads(text)) for seq, text in rows))
        events_total = events[-1][0] + 1 if events else 0
        history.restore_events(events_total, ((seq, orjson.loads(text)) for seq, text in events))
        return history

    def history_size(self, id: str) -> tuple[int, int]:
        """(metric rows, events) stored on disk for the session (for tests and diagnostics)."""
        with self._guard("read the history"):
            conn = self._db
            rows = conn.execute("SELECT COUNT(*) FROM metrics WHERE session_id = ?", (id,))
            n_rows = rows.fetchone()[0]
            events = conn.execute("SELECT COUNT(*) FROM events WHERE session_id = ?", (id,))
            return int(n_rows), int(events.fetchone()[0])

    def clear_history(self, id: str) -> None:
        """Delete the session's metric rows and events (after a reset)."""
        with self._guard("clear the history"), self._tx() as conn:
            conn.execute("DELETE FROM metrics WHERE session_id = ?", (id,))
            conn.execute("DELETE FROM events WHERE session_id = ?", (id,))
            self._next_seq[id] = 0
            self._next_event_seq[id] = 0
            self._since_compact[id] = 0

    # ---- checkpoints ------------------------------------------------------------------------

    def save_checkpoint(self, id: str, step: int, blob: bytes) -> bool:
        """Replace the session's checkpoint (Trainer.checkpoint() bytes). False if no session."""
        with self._guard("save a checkpoint"), self._tx() as conn:
            if not self._exists(conn, id):
                return False
            conn.execute(
                "INSERT OR REPLACE INTO checkpoints (session_id, step, blob, saved_at)"
                " VALUES (?, ?, ?, ?)",
                (id, int(step), sqlite3.Binary(bytes(blob)), utc_now()),
            )
        return True

    def checkpoint_step(self, id: str) -> int | None:
        """The step of the session's checkpoint, without reading it; None when it has none."""
        with self._guard("read a checkpoint"):
            row = self._db.execute(
                "SELECT step FROM checkpoints WHERE session_id = ?", (id,)
            ).fetchone()
        return None if row is None else int(row[0])

    def load_checkpoint(self, id: str) -> tuple[int, bytes] | None:
        """(step, blob) of the session's checkpoint, or None."""
        with self._guard("read a checkpoint"):
            row = self._db.execute(
                "SELECT step, blob FROM checkpoints WHERE session_id = ?", (id,)
            ).fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]))

    # ---- snapshots of external sessions -----------------------------------------------------

    def save_snapshot(self, id: str, step: int, doc: dict[str, Any]) -> bool:
        """Replace the latest histograms frame an external session's script sent (an engine
        session's are recomputed from its checkpoint instead). False if no session."""
        with self._guard("save a snapshot"), self._tx() as conn:
            if not self._exists(conn, id):
                return False
            conn.execute(
                "INSERT OR REPLACE INTO snapshots (session_id, step, doc_json, saved_at)"
                " VALUES (?, ?, ?, ?)",
                (id, int(step), dumps(doc), utc_now()),
            )
        return True

    def load_snapshot(self, id: str) -> dict[str, Any] | None:
        """The session's saved histograms frame, or None."""
        with self._guard("read a snapshot"):
            row = self._db.execute(
                "SELECT doc_json FROM snapshots WHERE session_id = ?", (id,)
            ).fetchone()
        return None if row is None else orjson.loads(row[0])

    # ---- uploads ----------------------------------------------------------------------------

    def save_upload(
        self, id: str, name: str, x: np.ndarray, y: np.ndarray, meta: dict[str, Any]
    ) -> None:
        """Store an uploaded dataset (arrays as .npy bytes, never pickled)."""
        x_bytes = _npy_bytes(x, "x")
        y_bytes = _npy_bytes(y, "y")
        with self._guard("save an upload"), self._tx() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO uploads (id, name, created_at, x, y, meta_json)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (id, name, utc_now(), x_bytes, y_bytes, dumps(meta)),
            )

    def load_upload(self, id: str) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) of an upload; KeyError when there is none with that id."""
        with self._guard("read an upload"):
            row = self._db.execute("SELECT x, y FROM uploads WHERE id = ?", (id,)).fetchone()
        if row is None:
            raise KeyError(f"no uploaded dataset with id {id!r}")
        return _npy_array(row[0]), _npy_array(row[1])

    def get_upload(self, id: str) -> dict[str, Any] | None:
        """{"id", "name", "created_at", "meta"} of an upload, or None."""
        with self._guard("read an upload"):
            row = self._db.execute(
                "SELECT id, name, created_at, meta_json FROM uploads WHERE id = ?", (id,)
            ).fetchone()
        return None if row is None else _upload_dict(row)

    def list_uploads(self) -> list[dict[str, Any]]:
        """[{"id", "name", "created_at", "meta"}] newest first (no arrays)."""
        with self._guard("list uploads"):
            rows = self._db.execute(
                "SELECT id, name, created_at, meta_json FROM uploads"
                " ORDER BY created_at DESC, rowid DESC"
            ).fetchall()
        return [_upload_dict(row) for row in rows]

    def upload_bytes(self) -> dict[str, int]:
        """Bytes each upload's arrays take as stored (.npy, decompressed), by id."""
        with self._guard("list uploads"):
            rows = self._db.execute("SELECT id, length(x) + length(y) FROM uploads").fetchall()
        return {row[0]: int(row[1]) for row in rows}

    def delete_upload(self, id: str) -> bool:
        """Delete an upload. False if it did not exist."""
        with self._guard("delete an upload"), self._tx() as conn:
            return conn.execute("DELETE FROM uploads WHERE id = ?", (id,)).rowcount > 0

    # ---- maintenance ------------------------------------------------------------------------

    def integrity_check(self) -> str:
        """SQLite's integrity check: "ok" when the database is sound."""
        with self._guard("check the database"):
            rows = self._db.execute("PRAGMA integrity_check").fetchall()
        return "\n".join(str(row[0]) for row in rows)


_SELECT_SESSION = (
    "SELECT id, name, config_json, status, step, epoch, metrics_json, message, best_step,"
    " created_at, updated_at FROM sessions"
)


def _session_dict(row: tuple[Any, ...]) -> dict[str, Any]:
    """A sessions row as a SessionPublic-shaped dict."""
    (
        id_,
        name,
        config_json,
        status,
        step,
        epoch,
        metrics_json,
        message,
        best_step,
        created,
        updated,
    ) = row
    return {
        "id": id_,
        "name": name,
        "status": status,
        "step": int(step),
        "epoch": int(epoch),
        "metrics": None if metrics_json is None else orjson.loads(metrics_json),
        "config": orjson.loads(config_json),
        "created_at": created,
        "updated_at": updated,
        "message": message,
        "best_step": None if best_step is None else int(best_step),
    }


def _upload_dict(row: tuple[Any, ...]) -> dict[str, Any]:
    """An uploads row without its arrays."""
    return {"id": row[0], "name": row[1], "created_at": row[2], "meta": orjson.loads(row[3])}
