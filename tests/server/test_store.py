"""SQLite persistence: round trips, restart, thinning on disk, the directory lock, disk errors,
and durability when the process is killed with SIGKILL.

Read-only data directories: root ignores file permissions, so when the tests run as root they drop
CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH for a child process with util-linux `setpriv` (skipped when it
is missing); a non-root user gets the chmod check directly. A full disk is simulated with SQLite's
`PRAGMA max_page_count` (the same SQLITE_FULL error a full disk gives) and a read-only database
with `PRAGMA query_only`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from server.history import History, ThinningPolicy, thin_keep_mask
from server.store import COMPACT_EVERY, DB_NAME, Store, StoreError, StoreLockedError

ROOT = Path(__file__).resolve().parents[2]
SMALL = ThinningPolicy(head=5, tail=7, middle=9, events_head=3, events_tail=4, clip_merge_span=5)
CREATED = "2024-05-01T12:00:00+00:00"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def store(data_dir: Path):  # type: ignore[no-untyped-def]
    opened = Store(data_dir)
    try:
        yield opened
    finally:
        opened.close()


def report(step: int, loss: float = 0.5) -> dict[str, object]:
    """A report row shaped like Report.to_dict()."""
    return {
        "step": step,
        "epoch": step // 100,
        "loss": loss,
        "test_loss": loss * 1.1,
        "accuracy": 0.9,
        "test_accuracy": None,
        "batch_loss": loss,
        "learning_rate": 0.03,
        "max_grad_norm": 1.0,
        "clip_count": 0,
        "layers": [
            {"name": "0", "type": "dense", "grad_norm": 0.1, "weight_norm": 2.0, "clipped": False},
            {"name": "1", "type": "dense", "grad_norm": 0.2, "weight_norm": 1.0, "clipped": False},
        ],
        "events": [],
    }


def run_python(code: str, *, prefix: list[str] | None = None, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    """Run `code` in a fresh interpreter with the repository importable."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [*(prefix or []), sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# ---- sessions -------------------------------------------------------------------------------


def test_session_round_trip(store: Store) -> None:
    config = {"layers": [{"type": "dense", "units": 4}], "seed": 1}
    store.create_session("a", "first", config, CREATED)
    store.create_session("b", None, {"seed": 2}, "2024-05-02T12:00:00+00:00")
    session = store.get_session("a")
    assert session == {
        "id": "a",
        "name": "first",
        "status": "idle",
        "step": 0,
        "epoch": 0,
        "metrics": None,
        "config": config,
        "created_at": CREATED,
        "updated_at": CREATED,
        "message": None,
        "best_step": None,
    }
    assert [s["id"] for s in store.list_sessions()] == ["b", "a"]  # newest first
    metrics = {"step": 10, "loss": float("nan"), "accuracy": np.float32(0.75)}
    assert store.update_session(
        "a",
        status="diverged",
        step=np.int64(10),
        epoch=1,
        metrics=metrics,
        message="loss became NaN",
        best_step=7,
        updated_at="2024-05-01T13:00:00+00:00",
        config={"seed": 3},
    )
    session = store.get_session("a")
    assert session["status"] == "diverged" and session["step"] == 10 and session["epoch"] == 1
    assert session["metrics"] == {"step": 10, "loss": None, "accuracy": 0.75}
    assert session["message"] == "loss became NaN" and session["best_step"] == 7
    assert session["config"] == {"seed": 3}
    assert store.update_session("a", metrics=None)
    assert store.get_session("a")["metrics"] is None
    assert store.update_session("missing", status="running") is False
    assert store.get_session("missing") is None
    with pytest.raises(ValueError, match="unknown fields \\['colour'\\]"):
        store.update_session("a", colour="red")
    with pytest.raises(StoreError, match="already exists"):
        store.create_session("a", "again", {}, CREATED)


def test_delete_cascades(store: Store) -> None:
    store.create_session("a", None, {}, CREATED)
    store.create_session("b", None, {}, CREATED)
    for sid in ("a", "b"):
        store.append_metrics(sid, [report(0), report(1)])
        store.append_events(sid, [{"type": "best", "step": 1}])
        store.save_checkpoint(sid, 1, b"blob")
    assert store.delete_session("a") is True
    assert store.delete_session("a") is False
    assert store.get_session("a") is None
    assert store.history_size("a") == (0, 0)
    assert store.load_checkpoint("a") is None
    assert len(store.load_history("a")) == 0
    assert store.history_size("b") == (2, 1)  # the other session is untouched
    # Writes for a deleted session (a training thread finishing late) are ignored, not errors.
    assert store.append_metrics("a", [report(2)]) is False
    assert store.append_events("a", [{"type": "best", "step": 2}]) is False
    assert store.save_checkpoint("a", 2, b"x") is False
    assert store.history_size("a") == (0, 0)


def test_mark_interrupted(store: Store) -> None:
    for sid, status in (("a", "running"), ("b", "paused"), ("c", "running"), ("d", "idle")):
        store.create_session(sid, None, {}, CREATED)
        store.update_session(sid, status=status)
    assert sorted(store.mark_interrupted()) == ["a", "c"]
    assert {s["id"]: s["status"] for s in store.list_sessions()} == {
        "a": "interrupted",
        "b": "paused",
        "c": "interrupted",
        "d": "idle",
    }
    assert store.get_session("a")["updated_at"] != CREATED
    assert store.mark_interrupted() == []


# ---- history --------------------------------------------------------------------------------


def test_history_round_trip_matches_memory(store: Store) -> None:
    store.create_session("a", None, {}, CREATED)
    memory = History()
    rows = [report(step, loss=1.0 / (step + 1)) for step in range(50)]
    rows[10]["loss"] = float("nan")
    for start in range(0, 50, 7):
        batch = rows[start : start + 7]
        assert store.append_metrics("a", batch)
        for item in batch:
            memory.append(item)
    events = [
        {"type": "clip", "step": 3, "message": "clipped"},
        {"type": "clip", "step": 4},
        {"type": "best", "step": 5, "loss": float("inf")},
    ]
    store.append_events("a", events)
    for event in events:
        memory.add_event(event)
    loaded = store.load_history("a")
    assert loaded.columns() == memory.columns()
    assert loaded.last() == memory.last()
    assert loaded.columns()["loss"][10] is None
    assert loaded.events()[0]["count"] == 2
    store.clear_history("a")
    assert len(store.load_history("a")) == 0
    store.append_metrics("a", [report(0)])
    assert store.load_history("a").seqs() == [0]  # numbering restarts after a reset


def test_disk_history_is_thinned_like_memory(data_dir: Path) -> None:
    with Store(data_dir, policy=SMALL) as store:
        store.create_session("a", None, {}, CREATED)
        memory = History(SMALL)
        step = 0
        for batch_size in [1, 3, 50, 2, 100, 7] * 60:
            batch = [{"step": step + i, "loss": 0.1} for i in range(batch_size)]
            step += batch_size
            store.append_metrics("a", batch)
            for item in batch:
                memory.append(item)
            stored_rows, _ = store.history_size("a")
            assert stored_rows <= SMALL.max_rows + COMPACT_EVERY + 100
        loaded = store.load_history("a")
        assert loaded.seqs() == memory.seqs()
        assert loaded.columns() == memory.columns()
        expected = np.flatnonzero(thin_keep_mask(np.arange(step), step, SMALL)).tolist()
        assert loaded.columns()["step"] == expected
        store.compact("a")
        assert store.history_size("a")[0] == len(memory)  # exactly the kept rows on disk


def test_disk_events_are_bounded_and_merged_like_memory(data_dir: Path) -> None:
    with Store(data_dir, policy=SMALL) as store:
        store.create_session("a", None, {}, CREATED)
        memory = History(SMALL)
        kinds = ["clip", "clip", "best", "clip", "hyperparameters", "clip", "clip", "clip"]
        events = [{"type": kinds[i % len(kinds)], "step": i * 2} for i in range(700)]
        for start in range(0, len(events), 9):
            batch = events[start : start + 9]
            store.append_events("a", batch)
            for event in batch:
                memory.add_event(event)
        loaded = store.load_history("a")
        assert loaded.events() == memory.events()
        assert len(loaded.events()) <= SMALL.max_events
        assert store.history_size("a")[1] <= SMALL.max_events + COMPACT_EVERY


def test_no_nan_or_infinity_reaches_the_database(store: Store) -> None:
    store.create_session("a", None, {"lr": float("nan")}, CREATED)
    bad = report(0, loss=float("nan"))
    bad["layers"][0]["grad_norm"] = float("inf")
    bad["max_grad_norm"] = np.float32("-inf")
    store.append_metrics("a", [bad])
    store.append_events("a", [{"type": "diverged", "step": 0, "loss": float("nan")}])
    store.update_session("a", metrics={"loss": np.float64("nan")})
    conn = store._conn
    texts = [r[0] for r in conn.execute("SELECT row_json FROM metrics")]
    texts += [r[0] for r in conn.execute("SELECT event_json FROM events")]
    texts += [r[0] for r in conn.execute("SELECT metrics_json FROM sessions")]
    texts += [r[0] for r in conn.execute("SELECT config_json FROM sessions")]

    def refuse(constant: str) -> None:
        raise AssertionError(f"non-finite constant {constant} stored")

    for text in texts:
        json.loads(text, parse_constant=refuse)
    assert json.loads(texts[0])["loss"] is None
    assert json.loads(texts[0])["layers"][0]["grad_norm"] is None


# ---- checkpoints, uploads, restart ----------------------------------------------------------


def test_checkpoint_and_upload_round_trip(store: Store) -> None:
    store.create_session("a", None, {}, CREATED)
    assert store.load_checkpoint("a") is None
    store.save_checkpoint("a", 5, b"\x00first")
    store.save_checkpoint("a", 9, bytearray(b"\x00second"))
    assert store.load_checkpoint("a") == (9, b"\x00second")

    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    y = np.array([0, 1, 1, 0], dtype=np.int64)
    store.save_upload("u1", "upload:u1", x, y, {"columns": ["a", "b", "c"], "task": "binary"})
    store.save_upload("u2", "upload:u2", x[:2], y[:2], {"rows": 2})
    x2, y2 = store.load_upload("u1")
    assert x2.dtype == np.float32 and np.array_equal(x2, x)
    assert y2.dtype == np.int64 and np.array_equal(y2, y)
    assert [u["id"] for u in store.list_uploads()] == ["u2", "u1"]
    assert store.get_upload("u1")["meta"]["task"] == "binary"
    assert store.get_upload("nope") is None
    with pytest.raises(KeyError, match="no uploaded dataset"):
        store.load_upload("nope")
    with pytest.raises(ValueError, match="numeric array"):
        store.save_upload("u3", "bad", np.array([object()]), y, {})
    assert store.delete_upload("u2") and not store.delete_upload("u2")


def test_an_external_sessions_latest_snapshot_is_kept_replaced_and_deleted(
    data_dir: Path,
) -> None:
    histogram = {"edges": [0.0, 0.5, 1.0], "counts": [3, 4]}
    with Store(data_dir) as first:
        assert not first.save_snapshot("nobody", 1, {"step": 1})  # no such session
        first.create_session("a", None, {"kind": "external"}, CREATED)
        first.create_session("b", None, {"kind": "external"}, CREATED)
        assert first.load_snapshot("a") is None
        first.save_snapshot("a", 3, {"step": 3, "histograms": {}})
        first.save_snapshot("a", 7, {"step": 7, "histograms": {"fc": {"grad": histogram}}})
        first.save_snapshot("b", 2, {"step": 2, "histograms": {}})
    with Store(data_dir) as second:  # a restart reads what was written
        assert second.load_snapshot("a") == {"step": 7, "histograms": {"fc": {"grad": histogram}}}
        assert second.delete_session("a")
        assert second.load_snapshot("a") is None
        assert second.load_snapshot("b") == {"step": 2, "histograms": {}}  # only a's went


def test_restart_keeps_everything(data_dir: Path) -> None:
    with Store(data_dir) as first:
        first.create_session("a", "kept", {"seed": 4}, CREATED)
        first.update_session("a", status="running", step=30)
        first.append_metrics("a", [report(step) for step in range(30)])
        first.append_events("a", [{"type": "best", "step": 20}])
        first.save_checkpoint("a", 30, b"weights")
        first.save_upload("u", "upload:u", np.ones((2, 2)), np.zeros(2), {"rows": 2})
        before = first.load_history("a").columns()
    with Store(data_dir) as second:
        assert second.integrity_check() == "ok"
        assert second.get_session("a")["name"] == "kept"
        assert second.mark_interrupted() == ["a"]
        assert second.load_history("a").columns() == before
        assert second.load_checkpoint("a") == (30, b"weights")
        assert np.array_equal(second.load_upload("u")[0], np.ones((2, 2)))
        second.append_metrics("a", [report(30)])  # numbering continues after a restart
        assert second.load_history("a").seqs() == list(range(31))


def test_threads_share_one_store(store: Store) -> None:
    for sid in ("a", "b"):
        store.create_session(sid, None, {}, CREATED)
    errors: list[BaseException] = []

    def writer(sid: str, offset: int) -> None:
        try:
            for i in range(100):
                store.append_metrics(sid, [{"step": offset + i}])
                store.update_session(sid, step=offset + i)
                store.get_session(sid)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=writer, args=(sid, k * 1000)) for k in range(3) for sid in "ab"
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for sid in ("a", "b"):
        history = store.load_history(sid)
        assert history.seqs() == list(range(300))
        assert sorted(history.columns()["step"]) == sorted(
            k * 1000 + i for k in range(3) for i in range(100)
        )


def test_closed_store_raises(data_dir: Path) -> None:
    store = Store(data_dir)
    store.close()
    store.close()  # idempotent
    assert store.closed
    with pytest.raises(StoreError, match="closed"):
        store.list_sessions()


# ---- the directory lock ---------------------------------------------------------------------


def test_second_store_in_same_process_is_refused(store: Store, data_dir: Path) -> None:
    with pytest.raises(StoreLockedError) as info:
        Store(data_dir)
    message = str(info.value)
    assert f"another Backprop Lens server (pid {os.getpid()}) is using {data_dir}" in message
    assert "stop it or pass a different --data-dir" in message
    store.close()
    with Store(data_dir) as again:  # the lock is released on close
        assert again.integrity_check() == "ok"


def test_store_in_another_process_is_refused(store: Store, data_dir: Path) -> None:
    result = run_python(
        f"""
        from server.store import Store, StoreLockedError
        try:
            Store({str(data_dir)!r})
        except StoreLockedError as exc:
            print("LOCKED", exc)
        else:
            print("OPENED")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("LOCKED")
    assert f"(pid {os.getpid()})" in result.stdout


def test_lock_held_by_another_process_names_its_pid(data_dir: Path) -> None:
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys\nfrom server.store import Store\n"
            f"s = Store({str(data_dir)!r})\nprint('ready', flush=True)\nsys.stdin.read()\n",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        with pytest.raises(StoreLockedError, match=f"pid {child.pid}"):
            Store(data_dir)
    finally:
        child.kill()
        child.wait(timeout=10)
    with Store(data_dir) as store:  # a dead holder's lock is gone (flock dies with the process)
        assert store.integrity_check() == "ok"


# ---- unusable directories and disk errors ---------------------------------------------------


def test_data_dir_that_is_a_file(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("not a directory")
    with pytest.raises(StoreError, match="exists and is not a directory"):
        Store(a_file)
    with pytest.raises(StoreError, match="cannot create the data directory"):
        Store(a_file / "data")


def _unprivileged_prefix() -> list[str]:
    """A command prefix under which file permissions apply (empty when not root)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot make a directory read-only")
    caps = "-dac_override,-dac_read_search"
    return [setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}"]


def test_read_only_data_dir_gives_a_clear_error(tmp_path: Path) -> None:
    prefix = _unprivileged_prefix()
    empty = tmp_path / "empty"  # read-only and empty: the lock file cannot be created
    empty.mkdir()
    existing = tmp_path / "existing"  # read-only directory holding a database
    Store(existing).close()
    read_only_db = tmp_path / "rodb"  # writable directory, read-only database file
    Store(read_only_db).close()
    (read_only_db / DB_NAME).chmod(0o444)
    for directory in (empty, existing):
        directory.chmod(0o555)
    try:
        result = run_python(
            f"""
            from server.store import Store, StoreError
            for path in {[str(empty), str(existing), str(read_only_db)]!r}:
                try:
                    Store(path).close()
                except StoreError as exc:
                    print("ERROR", exc)
                else:
                    print("OPENED", path)
            """,
            prefix=prefix,
        )
    finally:
        for directory in (empty, existing):
            directory.chmod(0o755)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3, result.stdout
    assert all(line.startswith("ERROR") for line in lines), result.stdout
    assert f"cannot write to the data directory {empty}" in lines[0]
    assert "read-only" in lines[0] and "--data-dir" in lines[0]
    assert str(existing) in lines[1] and "read-only" in lines[1]
    assert str(read_only_db) in lines[2] and "read-only" in lines[2]


def test_full_disk_raises_and_loses_no_committed_rows(store: Store) -> None:
    store.create_session("a", None, {}, CREATED)
    store.append_metrics("a", [report(0)])
    conn = store._conn
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages + 2}")  # SQLITE_FULL, as on a full disk
    big = [dict(report(step), padding="x" * 4000) for step in range(1, 200)]
    with pytest.raises(StoreError, match="is full; free some space"):
        store.append_metrics("a", big)
    assert store.history_size("a") == (1, 0)  # the failed batch is rolled back as a whole
    conn.execute("PRAGMA max_page_count = 1073741823")
    store.append_metrics("a", [report(1)])  # the store is usable again afterwards
    assert store.load_history("a").columns()["step"] == [0, 1]
    assert store.integrity_check() == "ok"


def test_read_only_database_raises(store: Store) -> None:
    store.create_session("a", None, {}, CREATED)
    store._conn.execute("PRAGMA query_only = ON")
    with pytest.raises(StoreError, match="read-only; pass a writable --data-dir"):
        store.update_session("a", status="running")
    store._conn.execute("PRAGMA query_only = OFF")
    assert store.update_session("a", status="running")


# ---- SIGKILL durability ---------------------------------------------------------------------


def test_kill_9_keeps_a_sound_contiguous_history(data_dir: Path) -> None:
    code = f"""
        import sys
        from server.store import Store
        store = Store({str(data_dir)!r})
        store.create_session("a", None, {{}}, "{CREATED}")
        store.update_session("a", status="running")
        step = 0
        while True:
            row = {{"step": step, "loss": 1.0 / (step + 1), "layers": [{{"name": "0", "grad_norm": 0.5}}]}}
            store.append_metrics("a", [row])
            store.update_session("a", step=step)
            if step % 50 == 0:
                store.save_checkpoint("a", step, bytes([step % 256]) * 1000)
            print(step, flush=True)
            step += 1
    """
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    last = -1
    try:
        assert child.stdout is not None
        while last < 400:
            line = child.stdout.readline()
            assert line, "the writer died early"
            last = int(line)
        os.kill(child.pid, signal.SIGKILL)  # mid-loop, possibly mid-transaction
    finally:
        child.kill()
        child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL
    with Store(data_dir) as store:
        assert store.integrity_check() == "ok"
        steps = store.load_history("a").columns()["step"]
        assert steps == list(range(len(steps)))  # contiguous, no holes
        assert len(steps) - 1 >= last  # every committed row survived
        session = store.get_session("a")
        assert session["step"] >= last
        assert store.mark_interrupted() == ["a"]
        checkpoint = store.load_checkpoint("a")
        assert checkpoint is not None and checkpoint[0] % 50 == 0 and checkpoint[0] <= len(steps)
