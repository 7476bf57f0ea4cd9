"""`backprop-lens --help` prints every flag with its help (argparse expands "%" in help text: a
literal percent sign has to be written "%%", and one that is not crashed --help)."""

from __future__ import annotations

import subprocess
import sys

from tests.support import ROOT

FLAGS = (
    "--allowed-host", "--data-dir", "--frame-rate", "--header-timeout", "--host", "--log-level",
    "--max-connections", "--max-training", "--memory-budget", "--open", "--port", "--token",
    "--unload-after", "--upload-quota", "--ws", "--ws-per-message-deflate",
)  # fmt: skip


def test_help_prints_every_flag_and_the_memory_budget_default() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from server.cli import main; main(['--help'])"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    missing = [flag for flag in FLAGS if flag not in done.stdout]
    assert missing == []
    assert "(default 50% of the machine's memory)" in " ".join(done.stdout.split())
