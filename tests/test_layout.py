"""Guards that keep the Python code carryable (issue 15 item 6): no import cycle among the
first-party modules of engine/, server/, backprop_lens/ and bench/, no file of those or of tests/
over MAX_LINES lines (the page's JavaScript has the same guard in tests/browser/test_modules.py), and no first-party module named after a standard-library module (a reader, or an
import, takes engine/inspect.py for Python's inspect) but the routes of server/routes, which are
named after their URL paths.

The line count is a guard, not the goal: a module that grows past it is cut by responsibility (as
engine/data.py became data, generators, split, features and uploads, and
tests/engine/test_trainer.py became test_trainer, test_observing and test_train_loop), not by
line count. Imports are read with ast, every one of them: at the top, inside functions and under
TYPE_CHECKING, since a cycle through any of them is still two modules that cannot be read, or
changed, one at a time. Each guard is also run on a small planted tree, so a guard that stopped
seeing would fail too.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("engine", "server", "backprop_lens", "bench")  # whose imports may not form a cycle
LONG_GUARDED = ("engine", "server", "backprop_lens", "bench", "tests")  # kept under MAX_LINES
NAMED = ("engine", "server", "backprop_lens", "bench", "tests")  # not named as the stdlib's
NAMED_AFTER_URLS = "server/routes"  # route modules named after their paths (/inspect, ...)
MAX_LINES = 700


def modules(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file under the packages (a package is its
    __init__.py)."""
    found = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def imported(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The first-party modules a module imports, anywhere in it."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x, from ..y import z
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            targets.add(base)
            targets.update(f"{base}.{alias.name}" for alias in node.names)
    out = set()
    for target in targets:
        while target and target not in known:  # engine.config.RunConfig -> engine.config
            target = target.rpartition(".")[0]
        if target and target != name:
            out.add(target)
    return out


def cycles(root: Path, packages: tuple[str, ...]) -> list[list[str]]:
    """The import cycles among the packages' modules: each strongly connected group of two or
    more modules (Tarjan's algorithm), sorted."""
    known = modules(root, packages)
    graph = {name: sorted(imported(name, path, known)) for name, path in known.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in graph:
        if node not in index:
            visit(node)
    return sorted(found)


def long_files(root: Path, directories: tuple[str, ...]) -> dict[str, int]:
    """Path -> lines of every .py file under the directories longer than MAX_LINES."""
    out = {}
    for directory in directories:
        for path in sorted((root / directory).rglob("*.py")):
            with path.open(encoding="utf-8") as text:
                count = sum(1 for _ in text)
            if count > MAX_LINES:
                out[path.relative_to(root).as_posix()] = count
    return out


def stdlib_named(root: Path, directories: tuple[str, ...]) -> list[str]:
    """Modules and packages under the directories named after a standard-library module."""
    out = []
    for directory in directories:
        for path in sorted((root / directory).rglob("*.py")):
            relative = path.relative_to(root)
            if relative.as_posix().startswith(NAMED_AFTER_URLS + "/"):
                continue
            for part in (*relative.parts[:-1], relative.stem):
                if part in sys.stdlib_module_names:
                    out.append(relative.as_posix())
                    break
    return out


# ----------------------------------------------------------------------------- the tree


def test_no_import_cycle_among_engine_and_server_modules() -> None:
    known = modules(ROOT, PACKAGES)
    # the guard sees the tree: the modules, and imports of every kind
    assert {"engine.trainer", "engine.recorder", "server.session", "server.routes.inspect"} <= set(
        known
    )
    assert "engine.recorder" in imported("engine.trainer", known["engine.trainer"], known)
    lazy = imported("server.session", known["server.session"], known)  # inside a function
    assert "engine.trainer" in lazy
    assert cycles(ROOT, PACKAGES) == []


def test_no_engine_server_or_test_file_is_longer_than_700_lines() -> None:
    too_long = long_files(ROOT, LONG_GUARDED)
    assert too_long == {}, f"longer than {MAX_LINES} lines, cut by responsibility: {too_long}"


def test_no_module_is_named_after_a_standard_library_module() -> None:
    assert "inspect" in sys.stdlib_module_names  # the name engine/inspect.py had
    assert (ROOT / NAMED_AFTER_URLS / "inspect.py").exists()  # allowed: a route's path
    assert stdlib_named(ROOT, NAMED) == []


# ----------------------------------------------------------------------------- planted


def plant(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_the_cycle_guard_finds_a_planted_cycle_of_any_import(tmp_path: Path) -> None:
    root = plant(
        tmp_path,
        {
            "engine/__init__.py": "",
            "engine/a.py": "from engine.b import thing\n",
            "engine/b.py": (
                "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from engine import c\n"
            ),
            "engine/c.py": "def late():\n    from . import a\n",
            "engine/d.py": "import engine.a\nimport json\n",
            "server/__init__.py": "",
            "server/x.py": "from engine.d import y\n",
        },
    )
    assert cycles(root, PACKAGES) == [["engine.a", "engine.b", "engine.c"]]
    (root / "engine/c.py").write_text("import json\n", encoding="utf-8")
    assert cycles(root, PACKAGES) == []


def test_the_length_guard_finds_a_planted_long_file(tmp_path: Path) -> None:
    root = plant(
        tmp_path,
        {"engine/ok.py": "x = 1\n" * MAX_LINES, "server/long.py": "x = 1\n" * (MAX_LINES + 1)},
    )
    assert long_files(root, ("engine", "server")) == {"server/long.py": MAX_LINES + 1}


def test_the_name_guard_finds_a_planted_stdlib_name(tmp_path: Path) -> None:
    root = plant(
        tmp_path,
        {
            "engine/inspect.py": "",
            "engine/introspect.py": "",
            "server/routes/inspect.py": "",
            "tests/json/test_x.py": "",
        },
    )
    assert stdlib_named(root, NAMED) == ["engine/inspect.py", "tests/json/test_x.py"]
