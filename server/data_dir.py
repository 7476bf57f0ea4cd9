"""The data directory (--data-dir): creating it (0700: only its owner reads the runs and uploads),
the database file (0600, never an empty file taken for a new database), the lock that keeps one
server per directory, and the error every storage problem raises.

Two servers writing one SQLite database would interleave their histories, so the store takes an
exclusive advisory lock on <data-dir>/server.lock (flock on POSIX, msvcrt.locking on Windows)
and writes its pid into it for the error message of a second server. The lock dies with its
process, so a killed server leaves nothing to clean up.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]
    import msvcrt

LOCK_NAME = "server.lock"


class StoreError(RuntimeError):
    """The data directory or database cannot be used (read-only, full, I/O error...)."""


class StoreLockedError(StoreError):
    """Another Backprop Lens server holds the data directory's lock."""


PRIVATE_DIR = 0o700  # mode of a data directory the server creates
PRIVATE_FILE = 0o600  # mode of the database, its -wal and -shm files, and the lock file


def make_data_dir(data_dir: Path) -> None:
    """Create the data directory (0700; an existing one keeps its mode), or explain why it
    cannot be used (StoreError)."""
    try:
        data_dir.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    except FileExistsError as exc:
        raise StoreError(
            f"cannot use {data_dir} as the data directory: it exists and is not a "
            "directory; pass a different --data-dir"
        ) from exc
    except OSError as exc:
        raise StoreError(
            f"cannot create the data directory {data_dir}: {exc.strerror or exc}; "
            "pass a writable --data-dir"
        ) from exc
    if not data_dir.is_dir():
        raise StoreError(f"cannot use {data_dir} as the data directory: not a directory")


def prepare_database_file(path: Path) -> None:
    """Create the database file 0600 when there is none (SQLite would create it 0644), take the
    group's and others' permissions from an existing one and its -wal and -shm files (the
    owner's stay: a read-only database stays read-only), and refuse a zero-length one: a file
    that lost its contents is not a new, empty database to write into (StoreError)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        pass
    except OSError as exc:
        raise StoreError(
            f"cannot create the database {path}: {exc.strerror or exc}; pass a writable --data-dir"
        ) from exc
    else:
        os.close(fd)
        return
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise StoreError(f"cannot read the database {path}: {exc.strerror or exc}") from exc
    if size == 0:
        raise StoreError(
            f"the database {path} is an empty file (0 bytes), not a Backprop Lens database; "
            "it may have lost its contents: move it away (a new one is created) or pass a "
            "different --data-dir"
        )
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            mode = file.stat().st_mode & 0o777
            if mode & 0o077:
                file.chmod(mode & 0o700)
        except OSError:
            pass  # missing, or not ours to change: opening the database reports what matters


class DataDirLock:
    """The exclusive advisory lock on <data_dir>/server.lock, held from acquire() to release()."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / LOCK_NAME
        self._fd: int | None = None  # the open lock file while the lock is held

    def acquire(self) -> None:
        """Take the lock and write our pid into the file (StoreLockedError naming the holder's
        pid when another process has it, StoreError when the directory is not writable)."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
        except OSError as exc:
            raise StoreError(
                f"cannot write to the data directory {self.data_dir} ({exc.strerror or exc}); "
                "it may be read-only: pass a writable --data-dir"
            ) from exc
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            else:  # pragma: no cover - Windows
                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError as exc:
            other = _read_pid(fd)
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise StoreLockedError(
                    f"another Backprop Lens server (pid {other or 'unknown'}) is using "
                    f"{self.data_dir}; stop it or pass a different --data-dir"
                ) from exc
            raise StoreError(f"cannot lock {self.path}: {exc.strerror or exc}") from exc
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:
            pass  # the pid is only for the error message of a second server
        self._fd = fd

    def release(self) -> None:
        """Release the lock and close the file (idempotent)."""
        if self._fd is None:
            return
        try:
            if fcntl is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = None


def _read_pid(fd: int) -> int | None:
    """The pid written into the lock file by its holder, if readable."""
    try:
        text = os.pread(fd, 32, 0).decode().strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None
