"""The README's "Watch your PyTorch run" examples run as written against a live server: the
single-process script, and the DDP one under torchrun with two processes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support import ROOT, LiveServer, free_port

pytest.importorskip("torch")


def examples() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Watch your PyTorch run", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def run(cmd: list[str], live: LiveServer) -> None:
    env = {**os.environ, "BACKPROP_LENS_URL": live.url, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_readme_watch_examples_run(server: LiveServer, tmp_path: Path) -> None:
    single, ddp, _ray = examples()  # the Ray Train one runs in test_ray_train.py
    (tmp_path / "watch_mlp.py").write_text(single)
    (tmp_path / "ddp_watch.py").write_text(ddp)
    run([sys.executable, str(tmp_path / "watch_mlp.py")], server)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    port = ["--master-addr", "127.0.0.1", "--master-port", str(free_port())]
    run([*torchrun, *port, str(tmp_path / "ddp_watch.py")], server)
    listed = httpx.get(server.url + "/api/sessions").json()["sessions"]
    # 2048 samples in batches of 64, 10 epochs; on 2 ranks batches of 32 of 1024 each, 5 epochs
    assert sorted((s["name"], s["kind"], s["status"], s["step"]) for s in listed) == [
        ("mlp from a script", "external", "finished", 320),
        ("mlp on 2 ranks", "external", "finished", 160),
    ]
    for session in listed:
        got = httpx.get(server.url + f"/api/sessions/{session['id']}/metrics").json()
        assert set(got["layers"]) == {"0", "2", "4"}
        assert got["step"][-1] <= session["step"] and all(v is not None for v in got["loss"])
        assert all(v > 0 for v in got["layers"]["0"]["grad_norm"])
