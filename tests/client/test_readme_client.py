"""The Python examples of README.md's "Call it from a script" section run as written, each in a
fresh interpreter against a live server, and print what their comments say (issue 17 item 7)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT, LiveServer

SECTION = "## Call it from a script"


def readme_examples() -> list[str]:
    """The python code blocks of the section, in order."""
    text = (ROOT / "README.md").read_text()
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def run_example(code: str, server: LiveServer, tmp_path: Path) -> str:
    """Run one example as a script; answer its output (the test fails if it fails)."""
    script = tmp_path / "example.py"
    script.write_text(code)
    # PYTHONPATH: this checkout's backprop_lens, whichever checkout the venv was installed from
    env = dict(os.environ, BACKPROP_LENS_URL=server.url, PYTHONPATH=str(ROOT))
    env.pop("BACKPROP_LENS_TOKEN", None)
    if server.token:
        env["BACKPROP_LENS_TOKEN"] = server.token
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def example(first_line: str) -> str:
    """The example whose docstring starts with these words."""
    found = [code for code in readme_examples() if code.startswith(f'"""{first_line}')]
    assert len(found) == 1, f"README: expected one example starting {first_line!r}"
    return found[0]


def test_the_section_has_the_five_examples() -> None:
    firsts = [code.splitlines()[0] for code in readme_examples()]
    assert len(firsts) == 5, firsts
    assert all("backprop_lens" in code for code in readme_examples())


def test_exact_run_and_mid_run_change(shared_server: LiveServer, tmp_path: Path) -> None:
    out = run_example(example("Train XOR to exact numbers"), shared_server, tmp_path)
    assert re.search(r"^step 500: test accuracy 0\.\d{3}$", out, re.M), out
    changed = re.search(r"changed at step (\d+), stopped at step (\d+)", out)
    assert changed, out
    applied, stopped = int(changed[1]), int(changed[2])
    assert 500 <= applied <= stopped
    rates = [(int(m[1]), float(m[2])) for m in re.finditer(r"step (\d+): learning rate (\S+)", out)]
    assert rates, out
    assert all(rate == (0.03 if step <= applied else 0.1) for step, rate in rates), rates


def test_sweep(shared_server: LiveServer, tmp_path: Path) -> None:
    out = run_example(example("Sweep the learning rate"), shared_server, tmp_path)
    losses = {float(m[1]): float(m[2]) for m in re.finditer(r"lr (\S+)\s+test loss (\S+),", out)}
    assert sorted(losses) == [0.003, 0.01, 0.03, 0.1], out
    best = re.search(r"best learning rate: (\S+) ", out)
    assert best and float(best[1]) == min(losses, key=losses.__getitem__)


def test_vanishing_gradient_ratio(shared_server: LiveServer, tmp_path: Path) -> None:
    out = run_example(example("Watch gradients vanish"), shared_server, tmp_path)
    ratios = [float(m[1]) for m in re.finditer(r"first/last layer gradient norm (\S+)", out)]
    assert len(ratios) == 10, out
    assert all(0 < ratio < 0.1 for ratio in ratios), ratios  # vanished: the point of it


def test_csv_upload_and_numpy_forward_pass(shared_server: LiveServer, tmp_path: Path) -> None:
    out = run_example(example("Upload a CSV"), shared_server, tmp_path)
    assert re.search(r"upload:\w+: 300 rows, 3 input columns", out), out
    assert "largest difference from the server's outputs" in out


@pytest.mark.parametrize("token", [None, "readme-client-token-0123456789"])
def test_bad_requests(tmp_path: Path, token: str | None) -> None:
    """Also against a server that requires a token: the examples pass it on."""
    live = LiveServer(tmp_path / "data", token=token).start()
    try:
        out = run_example(example("Bad requests raise typed exceptions"), live, tmp_path)
    finally:
        live.stop()
    lines = out.splitlines()
    assert lines[0] == "refused layers[0].units: must be an integer >= 1, got 0"
    assert lines[1].startswith("refused learning_rate: ")
    assert lines[2].startswith("409 session_running: ")
    assert lines[3] == "404 not_found"
