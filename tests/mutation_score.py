"""The mutation score of the last `make mutate` campaign, per mutated module.

Reads mutmut's own verdicts (`mutmut results --all true`, `mutmut show NAME`) from mutants/ and
the reviewed survivors in tests/mutation_equivalents.txt. A survivor listed there counts as
equivalent (no test can kill it, so it leaves the score's denominator) while it still changes the
same line of the same function the same way, unless its reason starts with "not worth killing":
such a mutant does change behaviour, so it stays in the denominator as a survivor, and is only
listed with its reason instead of being reported as open. An entry that no survivor matches any
more is reported, to be reviewed again.

    python tests/mutation_score.py              # the table; exit 1 if a module is below --min %
    python tests/mutation_score.py --markdown   # the same as Markdown, for docs/testing.md
"""

from __future__ import annotations

import argparse
import ast
import math
import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENTS = Path(__file__).resolve().parent / "mutation_equivalents.txt"
MUTMUT = Path(sys.executable).parent / "mutmut"
DETECTED = ("killed", "timeout", "segfault")  # a mutant that hangs or crashes the tests is caught
COLUMNS = ("killed", "timeout", "segfault", "survived", "equivalent", "no tests", "other")


@dataclass
class Survivor:
    """One surviving mutant: where it is and what it changed."""

    name: str
    path: str  # e.g. engine/losses.py
    line: int  # line of the source file the mutation changed
    before: str  # the original line, stripped
    after: str  # the mutated line, stripped


def verdicts() -> dict[str, str]:
    """Every mutant of the last campaign -> mutmut's status ("killed", "survived", ...)."""
    out = subprocess.run(
        [str(MUTMUT), "results", "--all", "true"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    found = re.findall(r"^\s+(\S+): (.+)$", out, re.M)
    return {name: status.strip() for name, status in found}


def module_path(name: str) -> str:
    """engine.losses.x__class_labels__mutmut_9 -> engine/losses.py"""
    return name.rsplit(".", 1)[0].replace(".", "/") + ".py"


def function_lines(path: str) -> dict[str, int]:
    """mutmut's mangled function names (x_f, xǁClassǁmethod) -> first line of their source."""
    tree = ast.parse((ROOT / path).read_text())
    lines: dict[str, int] = {}

    def first_line(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
        return min([node.lineno] + [d.lineno for d in node.decorator_list])

    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            lines[f"x_{node.name}"] = first_line(node)
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    lines[f"xǁ{node.name}ǁ{item.name}"] = first_line(item)
    return lines


def describe(name: str) -> Survivor:
    """Where a mutant is and what it changed, from `mutmut show` (its diff of the function)."""
    diff = subprocess.run(
        [str(MUTMUT), "show", name], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    path = module_path(name)
    function = name.rsplit(".", 1)[1].rsplit("__mutmut_", 1)[0]
    start = function_lines(path).get(function, 1)
    line, before, after, offset = 0, "", "", 0
    for text in diff.splitlines():
        hunk = re.match(r"@@ -(\d+)", text)
        if hunk:
            offset = int(hunk.group(1)) - 1
            continue
        if text.startswith(("---", "+++", "#")):
            continue
        if text.startswith("-") and not before:
            before, line = text[1:].strip(), start + offset
        elif text.startswith("+") and not after:
            after = text[1:].strip()
        if not text.startswith("+"):
            offset += 1
    return Survivor(name, path, line, before, after)


def function_of(name: str) -> str:
    """engine.losses.x__class_labels__mutmut_9 -> engine.losses.x__class_labels"""
    return name.rsplit("__mutmut_", 1)[0]


NOT_WORTH_KILLING = "not worth killing"  # a reason starting so: reviewed, but not equivalent


def equivalents() -> dict[tuple[str, str], tuple[str, str]]:
    """Reviewed survivors by (function, mutated line) -> (name as reviewed, why).

    Keyed by the mutated line rather than the mutant's number: editing a function renumbers
    its mutants, but a mutant that still changes the same line the same way is the same one.
    The mutated line may itself hold " | " (`Parameter | None`): the name ends at the first
    separator and the reason starts after the last, which no reason contains.
    """
    table: dict[tuple[str, str], tuple[str, str]] = {}
    for raw in EQUIVALENTS.read_text().splitlines():
        if not raw.strip() or raw.startswith("#"):
            continue
        name, rest = raw.split(" | ", 1)
        after, reason = rest.rsplit(" | ", 1)
        table[(function_of(name.strip()), after.strip())] = (name.strip(), reason.strip())
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")
    parser.add_argument("--min", type=float, default=90.0, help="lowest acceptable score (%%)")
    args = parser.parse_args()

    status = verdicts()
    if not status:
        print("no mutants: run `make mutate` first", file=sys.stderr)
        return 2
    reviewed = equivalents()
    counts: dict[str, Counter[str]] = {}
    listed: list[tuple[Survivor, str]] = []  # reviewed survivors and why
    open_survivors: list[Survivor] = []
    matched: set[tuple[str, str]] = set()
    for name, verdict in sorted(status.items()):
        count = counts.setdefault(module_path(name), Counter())
        column = verdict if verdict in (*DETECTED, "survived", "no tests") else "other"
        if verdict == "survived":
            survivor = describe(name)
            key = (function_of(name), survivor.after)
            if key in reviewed:
                reason = reviewed[key][1]
                if not reason.startswith(NOT_WORTH_KILLING):
                    column = "equivalent"
                listed.append((survivor, reason))
                matched.add(key)
            else:
                open_survivors.append(survivor)
        count[column] += 1
    stale = [f"{name}: {key[1]}" for key, (name, _) in reviewed.items() if key not in matched]

    total = Counter[str]()
    rows = []
    for path, count in sorted(counts.items()):
        total.update(count)
        rows.append((path, count))
    rows.append(("all", total))

    def score(count: Counter[str]) -> float:
        judged = sum(count.values()) - count["equivalent"]
        return 100.0 * sum(count[c] for c in DETECTED) / judged if judged else 100.0

    def shown(count: Counter[str]) -> str:
        """The score rounded down to 0.1 %: 2716 of 2717 shows 99.9 %, not 100.0 %."""
        return f"{math.floor(score(count) * 10) / 10:.1f}"

    if args.markdown:
        print("| module | " + " | ".join(COLUMNS) + " | score |")
        print("|---" * (len(COLUMNS) + 2) + "|")
        for path, count in rows:
            cells = " | ".join(str(count[c]) for c in COLUMNS)
            print(f"| {path} | {cells} | {shown(count)} % |")
        print("\n| mutant | file:line | mutation | why it survives |\n|---|---|---|---|")
        for survivor, reason in sorted(listed, key=lambda e: (e[0].path, e[0].line)):
            short = survivor.name.rsplit(".", 1)[1]
            before, after = (text.replace("|", "\\|") for text in (survivor.before, survivor.after))
            print(
                f"| {short} | {survivor.path}:{survivor.line} | `{before}` -> `{after}` | {reason} |"
            )
    else:
        print(f"{'module':24}" + "".join(f"{c:>12}" for c in COLUMNS) + f"{'score':>9}")
        for path, count in rows:
            cells = "".join(f"{count[c]:>12}" for c in COLUMNS)
            print(f"{path:24}{cells}{shown(count):>8}%")
    for survivor in open_survivors:
        print(
            f"survived: {survivor.name} {survivor.path}:{survivor.line}: "
            f"{survivor.before}  ->  {survivor.after}",
            file=sys.stderr,
        )
    for line in stale:
        print(f"listed as reviewed, but no survivor matches: {line}", file=sys.stderr)
    killed = sum(total[c] for c in DETECTED)
    judged = sum(total.values()) - total["equivalent"]
    print(
        f"score: {shown(total)} %, {killed} of {judged} non-equivalent mutants killed "
        f"({total['equivalent']} equivalent; target {args.min:.0f} % per module)"
    )
    below = [path for path, count in rows if score(count) < args.min]
    for path in below:
        print(f"below the target: {path}", file=sys.stderr)
    return 1 if below else 0


if __name__ == "__main__":
    sys.exit(main())
