"""The README's Ray Train example (TorchTrainer, 2 CPU workers, DDP through prepare_model) runs as
written against a live server: one external session, sent by rank 0 only, whose per-layer
gradient norms are those of one process training the same model on the full batch.

Ray's start-up asks the cloud metadata address (169.254.169.254) which cloud it is on, and no
public setting stops it; so the example and its server run inside a network namespace with only
loopback (tests/client/netns_run.py), where that request cannot leave the machine. Where no
namespace can be made (not Linux, no unshare, no privilege) the test skips and says why.
"""

from __future__ import annotations

import json
import os
import runpy
import shutil
import subprocess
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip(
    "ray.train.torch", reason="Ray Train is not installed (pip install 'ray[train]')"
)
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data.distributed import DistributedSampler  # noqa: E402

from tests.client.test_readme_watch import examples  # noqa: E402
from tests.support import ROOT  # noqa: E402

# what the README's train_func does; the test fails if the two drift apart
WORKERS, EPOCHS, BATCH, LR = 2, 5, 32, 1e-3


def full_batch_grad_norms(model: nn.Module, data: torch.utils.data.TensorDataset) -> list[dict]:
    """Per step, per layer with parameters: the gradient norm of one process training `model`
    on each step's full batch, the union of what every worker's DistributedSampler gave it.
    DDP averages the workers' mean gradients: with equal shares that is the full batch's mean."""
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    x, y = data.tensors
    out = []
    for epoch in range(EPOCHS):
        shares = []
        for rank in range(WORKERS):
            sampler = DistributedSampler(data, num_replicas=WORKERS, rank=rank)
            sampler.set_epoch(epoch)
            shares.append(list(sampler))
        for start in range(0, len(shares[0]), BATCH):
            index = [i for share in shares for i in share[start : start + BATCH]]
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x[index]), y[index]).backward()
            out.append(
                {
                    name: float(torch.cat([p.grad.reshape(-1) for p in params]).norm())
                    for name, module in model.named_modules()
                    if (params := list(module.parameters(recurse=False)))
                }
            )
            optimizer.step()
    return out


def can_unshare_network() -> str | None:
    """None when `unshare --net` works here, else why not."""
    if shutil.which("unshare") is None:
        return "no unshare command (util-linux)"
    probe = subprocess.run(["unshare", "--net", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"unshare --net refused: {probe.stderr.strip()}"
    return None


@pytest.mark.slow
@pytest.mark.timeout(330)  # Ray starting on a busy 2-core machine took up to ~60 s; a hang guard
def test_readme_ray_train_example_makes_one_session_equal_to_the_full_batch(
    tmp_path: Path,
) -> None:
    why_not = can_unshare_network()
    if why_not is not None:
        pytest.skip(
            f"Ray would contact 169.254.169.254; no network namespace to run it in: {why_not}"
        )
    script = tmp_path / "ray_watch.py"
    script.write_text(examples()[2])
    out = tmp_path / "recorded.json"
    done = subprocess.run(
        ["unshare", "--net", sys.executable, "-m", "tests.client.netns_run", str(script), str(out)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=320,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    recorded = json.loads(out.read_text(encoding="utf-8"))
    assert recorded["interfaces"] == ["lo"]  # nothing but loopback to send anything on
    assert recorded["returncode"] == 0, recorded["output"]

    listed = recorded["sessions"]
    steps = EPOCHS * (2048 // WORKERS // BATCH)
    assert [(s["name"], s["kind"], s["status"], s["step"]) for s in listed] == [
        ("mlp on Ray Train", "external", "finished", steps)
    ]
    assert listed[0]["config"]["world_size"] == WORKERS
    got = recorded["metrics"][0]
    assert set(got["layers"]) == {"0", "2", "4"}  # no "module." prefix

    # the README's own model and data, from the same file (its __main__ part does not run; the
    # environment it sets for Ray is put back)
    with mock.patch.dict(os.environ):
        example = runpy.run_path(str(script), run_name="ray_watch")
    expected = full_batch_grad_norms(example["make_model"](), example["make_data"]())
    assert len(expected) == steps
    assert got["step"] and all(1 <= s <= steps for s in got["step"])
    for name in ("0", "2", "4"):
        want = [expected[s - 1][name] for s in got["step"]]
        np.testing.assert_allclose(got["layers"][name]["grad_norm"], want, rtol=1e-4, err_msg=name)
