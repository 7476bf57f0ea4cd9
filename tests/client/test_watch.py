"""backprop_lens.torch.watch against a live server: the numbers equal a hand computation with torch,
a server that is down changes nothing in training, and a real 2-process DDP job (gloo on
127.0.0.1) makes one session whose per-layer gradient norms are those of one process on the
full batch."""

from __future__ import annotations

import copy
import math
import os
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from backprop_lens._torch_stats import LayerStats, observed_layers  # noqa: E402
from backprop_lens.torch import watch  # noqa: E402
from engine.stats import histogram  # noqa: E402
from tests.support import LiveServer, free_port  # noqa: E402

STEPS = 6
LR = 0.1


def make_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3)
    )


def make_batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return torch.randn(16, 6, generator=generator), torch.randint(0, 3, (16,), generator=generator)


def hand_stats(model: nn.Module, steps: int) -> list[dict[str, dict[str, float]]]:
    """Per step, per layer: grad_norm, grad_max_abs, weight_norm and update_ratio computed
    plainly with torch (float64), for SGD on the full batch."""
    x, y = make_batch()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    out = []
    for _ in range(steps):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        layers = {}
        before = {}
        for name, module in model.named_modules():
            params = list(module.parameters(recurse=False))
            if not params:
                continue
            grads = torch.cat([p.grad.reshape(-1) for p in params]).double()
            before[name] = torch.cat([p.detach().reshape(-1) for p in params]).double().clone()
            layers[name] = {
                "grad_norm": float(grads.norm()),
                "grad_max_abs": float(grads.abs().max()),
            }
        optimizer.step()
        for name, module in model.named_modules():
            if name in layers:
                after = torch.cat([p.detach().reshape(-1) for p in module.parameters(False)])
                after = after.double()
                layers[name]["weight_norm"] = float(after.norm())
                layers[name]["update_ratio"] = float((after - before[name]).norm() / after.norm())
        out.append(layers)
    return out


def sessions(live: LiveServer) -> list[dict]:
    return httpx.get(live.url + "/api/sessions", headers=live.headers()).json()["sessions"]


def metrics(live: LiveServer, session_id: str) -> dict:
    answer = httpx.get(live.url + f"/api/sessions/{session_id}/metrics", headers=live.headers())
    answer.raise_for_status()
    return answer.json()


def test_one_session_whose_numbers_equal_a_hand_computation(server: LiveServer) -> None:
    model = make_model()
    expected = hand_stats(copy.deepcopy(model), STEPS)
    x, y = make_batch()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    losses = []
    with watch(model, optimizer, url=server.url, name="hand check", every=1) as watcher:
        for _ in range(STEPS):
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            watcher.log(loss=loss, accuracy=0.25, seen=7)
            losses.append(loss.item())
    listed = sessions(server)
    assert [(s["kind"], s["status"], s["name"], s["step"]) for s in listed] == [
        ("external", "finished", "hand check", STEPS)
    ]
    assert [layer["name"] for layer in listed[0]["config"]["layers"]] == ["0", "1", "2", "3", "4"]
    assert listed[0]["config"]["layers"][2]["units"] == 16
    got = metrics(server, watcher.session_id)
    assert got["step"] == list(range(1, STEPS + 1))
    np.testing.assert_allclose(got["loss"], losses, rtol=1e-6)
    assert got["accuracy"] == [0.25] * STEPS
    assert set(got["layers"]) == {"0", "2", "4"}  # the modules with parameters, by dotted name
    for key in ("grad_norm", "grad_max_abs", "weight_norm", "update_ratio"):
        for name in ("0", "2", "4"):
            want = [step[name][key] for step in expected]
            np.testing.assert_allclose(got["layers"][name][key], want, rtol=1e-6, err_msg=key)


def test_histograms_are_the_engines() -> None:
    """The fused on-device histograms count as engine.stats.histogram (numpy) does."""
    model = make_model()
    x, y = make_batch()
    nn.functional.cross_entropy(model(x), y).backward()
    model[2].weight.grad[0, :4] = 0.5  # repeated values
    model[4].weight.grad.fill_(0.25)  # one value only: numpy widens the range by 0.5 each side
    model[4].bias.grad.fill_(0.25)
    layers = observed_layers(model)
    stats = LayerStats(layers)
    stats.before_step()
    out = stats.after_step()
    assert out is not None
    for layer, entry in zip(layers, out, strict=True):
        grads = np.concatenate([p.grad.numpy().ravel() for p in layer.params]).astype(np.float64)
        weights = np.concatenate([p.detach().numpy().ravel() for p in layer.params])
        for values, got in ((grads, entry["grad_histogram"]), (weights, entry["weight_histogram"])):
            want = histogram(values.astype(np.float64))
            assert got["counts"] == want["counts"], layer.name
            np.testing.assert_allclose(got["edges"], want["edges"], rtol=1e-12)
        assert entry["update_ratio"] == 0.0  # no step was taken between the two hooks
    assert out[2]["grad_histogram"]["edges"][0] == 0.25 - 0.5


def test_every_n_logs_exactly_those_steps(server: LiveServer) -> None:
    model = make_model()
    x, y = make_batch()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    with watch(model, optimizer, url=server.url, every=3) as watcher:
        for _ in range(10):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
            watcher.log(loss=0.0)
    assert metrics(server, watcher.session_id)["step"] == [3, 6, 9]


def test_log_called_before_the_step_belongs_to_that_step(server: LiveServer) -> None:
    model = make_model()
    x, y = make_batch()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    losses = {}
    with watch(model, optimizer, url=server.url, every=2) as watcher:
        for step in range(1, 7):
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            watcher.log(loss=loss, epoch=step // 3)  # before optimizer.step(): step `step`'s
            optimizer.step()
            losses[step] = loss.item()
    got = metrics(server, watcher.session_id)
    assert got["step"] == [2, 4, 6]
    assert got["loss"] == [pytest.approx(losses[s], rel=1e-6) for s in (2, 4, 6)]
    assert got["epoch"] == [0, 1, 2]


def test_server_down_leaves_training_unchanged(tmp_path: Path) -> None:
    """Nobody listens at the URL: the run trains exactly as without the watcher, nothing is
    raised, and close() returns (the bound is generous: it is about not hanging)."""
    plain = make_model()
    watched = copy.deepcopy(plain)
    x, y = make_batch()
    results = []
    for model, watching in ((plain, False), (watched, True)):
        optimizer = torch.optim.SGD(model.parameters(), lr=LR)
        watcher = watch(model, optimizer, url=f"http://127.0.0.1:{free_port()}", every=1)
        if not watching:
            watcher.close()
        losses = []
        for _ in range(30):
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            watcher.log(loss=loss)
            losses.append(loss.item())
        started = time.monotonic()
        watcher.close()
        results.append((losses, time.monotonic() - started, watcher.session_id))
    assert results[1][0] == results[0][0]
    for a, b in zip(plain.parameters(), watched.parameters(), strict=True):
        assert torch.equal(a, b)
    assert results[1][2] is None  # it never connected
    assert results[1][1] < 30.0


# ---- a real 2-process DDP job ----------------------------------------------------------------


def _ddp_worker(rank: int, world: int, port: int, url: str, steps: int) -> None:
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    try:
        torch.set_num_threads(1)
        model = nn.parallel.DistributedDataParallel(make_model())
        optimizer = torch.optim.SGD(model.parameters(), lr=LR)
        x, y = make_batch()
        share = len(x) // world
        xs, ys = x[rank * share : (rank + 1) * share], y[rank * share : (rank + 1) * share]
        with watch(model, optimizer, url=url, name="ddp", every=1) as watcher:
            for step in range(steps + 1):
                optimizer.zero_grad()
                if step < steps:
                    nn.functional.cross_entropy(model(xs), ys).backward()
                    optimizer.step()
                else:  # a step on this rank's own gradients: not logged
                    with model.no_sync():
                        nn.functional.cross_entropy(model(xs), ys).backward()
                        optimizer.step()
                watcher.log(loss=0.0)
        # every rank done before the group goes: a rank that tears gloo down while its peer is
        # still closing aborted the process ("terminate called without an active exception")
        torch.distributed.barrier()
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_ddp_two_processes_make_one_session_equal_to_the_full_batch(server: LiveServer) -> None:
    steps = 4
    expected = hand_stats(make_model(), steps)
    torch.multiprocessing.spawn(
        _ddp_worker, args=(2, free_port(), server.url, steps), nprocs=2, join=True
    )
    listed = sessions(server)
    assert [(s["kind"], s["status"], s["name"]) for s in listed] == [
        ("external", "finished", "ddp")
    ]
    assert listed[0]["config"]["world_size"] == 2
    got = metrics(server, listed[0]["id"])
    assert got["step"] == list(range(1, steps + 1))  # the no_sync step (5) is not there
    assert set(got["layers"]) == {"0", "2", "4"}  # no "module." prefix
    for name in ("0", "2", "4"):
        for key in ("grad_norm", "weight_norm", "update_ratio"):
            want = [step[name][key] for step in expected]
            np.testing.assert_allclose(got["layers"][name][key], want, rtol=1e-5, err_msg=key)
    assert all(math.isfinite(v) for v in got["max_grad_norm"])
