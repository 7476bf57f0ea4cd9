"""Guards on the page's ES modules (static/js): small files with one job, imports that resolve,
no cycles, none left unused. Read from the files, no browser: a broken import would otherwise
surface only as a blank page in whichever browser test loads it first."""

from __future__ import annotations

import re
from pathlib import Path

JS = Path(__file__).resolve().parents[2] / "static" / "js"
MAX_LINES = 700  # a guard, not the goal: modules are cut by responsibility
ENTRY = "main.js"

IMPORT = re.compile(r'^import\s+(?:\{([^}]*)\}|(\w+))\s+from\s+"([^"]+)";', re.M)
EXPORT_DECL = re.compile(
    r"^export\s+(?:async\s+)?(?:function\*?|class|const|let|var)\s+(\w+)", re.M
)
EXPORT_LIST = re.compile(r"^export\s+\{([^}]*)\};", re.M)


def modules() -> dict[str, str]:
    """First-party module name -> its text (static/vendor holds the third-party ones)."""
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(JS.glob("*.js"))}


def imports(text: str) -> list[tuple[str, list[str]]]:
    """(module it imports from, names imported) for each first-party import of a module."""
    out = []
    for names, default, source in IMPORT.findall(text):
        if not source.startswith("./"):
            continue  # ../vendor/...: not ours
        listed = [n.split(" as ")[0].strip() for n in names.split(",") if n.strip()]
        out.append((source[2:], listed + ([f"default:{default}"] if default else [])))
    return out


def exports(text: str) -> set[str]:
    names = set(EXPORT_DECL.findall(text))
    for listed in EXPORT_LIST.findall(text):
        names |= {n.split(" as ")[-1].strip() for n in listed.split(",") if n.strip()}
    return names


def test_no_module_is_over_the_line_limit() -> None:
    sizes = {name: text.count("\n") + 1 for name, text in modules().items()}
    assert sizes, f"expected modules in {JS}, got none"
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}


def test_every_import_names_a_module_and_an_export_it_has() -> None:
    mods = modules()
    problems = []
    for name, text in mods.items():
        for source, names in imports(text):
            if source not in mods:
                problems.append(f"{name}: no module {source}")
                continue
            missing = sorted(set(names) - exports(mods[source]))
            if missing:
                problems.append(f"{name}: {source} does not export {', '.join(missing)}")
    assert problems == []


def test_modules_import_no_cycle() -> None:
    graph = {name: [source for source, _ in imports(text)] for name, text in modules().items()}
    cycles = []
    state: dict[str, str] = {}  # "open" while on the path, "done" after

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in graph.get(node, []):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join([*path[path.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = "done"

    for node in graph:
        if node not in state:
            visit(node, [node])
    assert cycles == []


def test_every_module_is_loaded_by_the_page() -> None:
    mods = modules()
    seen = {ENTRY}
    todo = [ENTRY]
    while todo:
        for source, _ in imports(mods[todo.pop()]):
            if source in mods and source not in seen:
                seen.add(source)
                todo.append(source)
    assert sorted(set(mods) - seen) == []
