"""The README's Ray Train example (TorchTrainer, 2 CPU workers, DDP through prepare_model) runs as
written against a live server: one external session, sent by rank 0 only, whose per-layer
gradient norms are those of one process training the same model on the full batch."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path
from unittest import mock

import httpx
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
from tests.support import ROOT, LiveServer  # noqa: E402

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


@pytest.mark.slow
@pytest.mark.timeout(300)  # Ray starting on a busy 2-core machine took up to ~60 s; a hang guard
def test_readme_ray_train_example_makes_one_session_equal_to_the_full_batch(
    server: LiveServer, tmp_path: Path
) -> None:
    script = tmp_path / "ray_watch.py"
    script.write_text(examples()[2])
    env = {**os.environ, "BACKPROP_LENS_URL": server.url, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(script)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr

    listed = httpx.get(server.url + "/api/sessions").json()["sessions"]
    steps = EPOCHS * (2048 // WORKERS // BATCH)
    assert [(s["name"], s["kind"], s["status"], s["step"]) for s in listed] == [
        ("mlp on Ray Train", "external", "finished", steps)
    ]
    assert listed[0]["config"]["world_size"] == WORKERS
    got = httpx.get(server.url + f"/api/sessions/{listed[0]['id']}/metrics").json()
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
