"""The data directory at start-up: created private (0700, its files 0600), a database that lost its
contents (zero bytes) or is damaged (SQLite's quick_check) refused with one clear line, before
anything is written into it."""

from __future__ import annotations

import contextlib
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from server.store import DB_NAME, Store, StoreError
from tests.support import ROOT, free_port

PAGE = 4096  # SQLite's default page size, which the store keeps


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def fill(store: Store) -> None:
    """Enough rows for several pages of tables and indexes."""
    for i in range(20):
        store.create_session(f"s{i}", f"run {i}", {"note": "x" * 500}, "2024-01-01T00:00:00")
    store.append_metrics("s1", [{"step": i, "epoch": 0, "loss": 0.5} for i in range(300)])


def damage(database: Path) -> None:
    """Overwrite the b-tree header of every page but the schema's and the `meta` table's (and
    its key's index), the ones opening reads and writes: SQLite then opens the file and writes
    into it happily, and only a check finds the damage."""
    with contextlib.closing(sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True)) as conn:
        rows = conn.execute("SELECT rootpage FROM sqlite_master WHERE tbl_name = 'meta'")
        kept = {1, *(int(row[0]) for row in rows)}
    data = bytearray(database.read_bytes())
    assert len(data) >= 4 * PAGE, "expected a database of several pages"
    for number in range(1, len(data) // PAGE + 1):
        if number not in kept:
            start = (number - 1) * PAGE
            data[start : start + 12] = b"\x5a" * 12
    database.write_bytes(bytes(data))


def run_cli(data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server", "--port", str(free_port()), "--data-dir", str(data_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_new_data_dir_is_0700_and_its_files_0600(tmp_path: Path) -> None:
    data_dir = tmp_path / "new" / "data"
    with Store(data_dir) as store:
        fill(store)  # the -wal and -shm files exist while the store is open
        files = {path.name: mode(path) for path in data_dir.iterdir()}
    assert mode(data_dir) == 0o700
    assert {f"{DB_NAME}-wal", f"{DB_NAME}-shm", DB_NAME, "server.lock"} <= set(files)
    assert files == dict.fromkeys(files, 0o600)


def test_an_existing_database_loses_group_and_other_access_but_keeps_its_owners(
    tmp_path: Path,
) -> None:
    Store(tmp_path).close()
    database = tmp_path / DB_NAME
    database.chmod(0o644)
    Store(tmp_path).close()
    assert mode(database) == 0o600
    database.chmod(0o444)  # read-only stays read-only (a user other than root is refused)
    with contextlib.suppress(StoreError):
        Store(tmp_path).close()
    assert mode(database) == 0o400


def test_a_zero_length_database_is_an_error_not_a_new_store(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        fill(store)
    database = tmp_path / DB_NAME
    for sidecar in (f"{DB_NAME}-wal", f"{DB_NAME}-shm"):
        (tmp_path / sidecar).unlink(missing_ok=True)
    database.write_bytes(b"")  # what a crash of the file system can leave
    with pytest.raises(StoreError, match="is an empty file"):
        Store(tmp_path)
    done = run_cli(tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("backprop-lens: error:") and str(database) in lines[0]
    assert database.stat().st_size == 0  # nothing was written into it


def test_a_damaged_database_is_refused_before_anything_is_written_into_it(
    tmp_path: Path,
) -> None:
    with Store(tmp_path) as store:
        fill(store)
    database = tmp_path / DB_NAME
    damage(database)
    before = database.read_bytes()
    with pytest.raises(StoreError, match="is damaged") as refused:
        Store(tmp_path)
    assert "quick_check" in str(refused.value) and "btreeInitPage" in str(refused.value)
    done = run_cli(tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "is damaged" in lines[0] and str(database) in lines[0]
    assert database.read_bytes() == before
