"""A guard that keeps the server readable: no Python file of server/ or tests/server/ is longer
than MAX_LINES. It is a guard, not a goal: a module that grows past it is cut by responsibility
(as sessions.py became session.py, sessions.py, session_record.py and session_writes.py), not by
line count.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 700
GUARDED = ("server", "tests/server")


def line_counts() -> dict[str, int]:
    """Lines of every Python file under the guarded directories, by path from the root."""
    counts = {}
    for directory in GUARDED:
        for path in sorted((ROOT / directory).rglob("*.py")):
            with path.open(encoding="utf-8") as text:
                counts[path.relative_to(ROOT).as_posix()] = sum(1 for _ in text)
    return counts


def test_the_guard_sees_the_server() -> None:
    counts = line_counts()
    assert "server/session.py" in counts and "tests/server/test_layout.py" in counts
    assert all(count > 0 for path, count in counts.items() if not path.endswith("__init__.py"))


def test_no_server_file_is_longer_than_700_lines() -> None:
    too_long = {path: count for path, count in line_counts().items() if count > MAX_LINES}
    assert too_long == {}, f"longer than {MAX_LINES} lines, cut by responsibility: {too_long}"
