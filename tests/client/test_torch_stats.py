"""backprop_lens._torch_stats on its own: the per-layer numbers of a logged step equal a float64
computation done plainly with torch, whatever the model's shapes and dtype, for parameters a loss
did not use, with the buffers kept or made afresh, over several steps of Adam (whose update is not
a multiple of the gradient); the histograms are engine.stats.histogram's, also on values that sit
on bin edges, infinities and NaN."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import backprop_lens._torch_stats as torch_stats  # noqa: E402
from backprop_lens._torch_stats import LayerStats, observed_layers  # noqa: E402
from engine.stats import histogram  # noqa: E402


class Net(nn.Module):
    """A conv layer (4-d weights), batch norm, a dense layer and a parameter the loss never uses
    (its gradient stays None)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3)
        self.norm = nn.BatchNorm2d(3)
        self.head = nn.Linear(3 * 4 * 4, 5)
        self.unused = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.norm(self.conv(x))).flatten(1))


def make(dtype: torch.dtype) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(3)
    model = Net().to(dtype)
    generator = torch.Generator().manual_seed(4)
    x = torch.randn(8, 2, 6, 6, generator=generator).to(dtype)
    y = torch.randint(0, 5, (8,), generator=generator)
    return model, x, y


def plain_stats(model: nn.Module, before: dict[str, torch.Tensor]) -> dict[str, dict]:
    """Per layer, the engine's definitions computed in float64 over the layer's parameters."""
    out = {}
    for name, module in model.named_modules():
        params = list(module.parameters(recurse=False))
        if not params:
            continue
        grads = torch.cat(
            [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params]
        ).double()
        after = torch.cat([p.detach().reshape(-1) for p in params]).double()
        out[name] = {
            "grad_norm": float(grads.norm()),
            "grad_mean_abs": float(grads.abs().mean()),
            "grad_max_abs": float(grads.abs().max()),
            "weight_norm": float(after.norm()),
            "update_ratio": float((after - before[name]).norm() / after.norm()),
        }
    return out


def weights_now(model: nn.Module) -> dict[str, torch.Tensor]:
    return {
        name: torch.cat([p.detach().reshape(-1) for p in module.parameters(False)]).double()
        for name, module in model.named_modules()
        if list(module.parameters(False))
    }


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("keep", [True, False], ids=["buffers kept", "buffers afresh"])
def test_norms_equal_a_float64_computation_step_after_step(
    dtype: torch.dtype, keep: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not keep:
        monkeypatch.setattr(torch_stats, "KEEP_BUFFERS_BYTES", 0)
    model, x, y = make(dtype)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    stats = LayerStats(observed_layers(model))
    assert stats._keep is keep
    rtol = 1e-5 if dtype == torch.float32 else 1e-12
    for step in range(4):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        before = weights_now(model)
        stats.before_step(histograms=step == 2)
        optimizer.step()
        got = {entry["name"]: entry for entry in stats.after_step() or []}
        want = plain_stats(model, before)
        assert list(got) == ["conv", "norm", "head", "unused"]
        for name, numbers in want.items():
            for key, value in numbers.items():
                assert got[name][key] == pytest.approx(value, rel=rtol, abs=1e-30), (
                    step,
                    name,
                    key,
                )
        # the unused layer: zero gradient, weights that Adam left alone
        assert got["unused"]["grad_norm"] == 0.0
        assert got["unused"]["update_ratio"] == 0.0
        assert got["head"]["update_ratio"] > 0.0
        assert ("grad_histogram" in got["conv"]) is (step == 2)
    assert stats.after_step() is None  # no before_step for this one


def test_a_nan_gradient_shows_in_its_layer_even_in_the_second_parameter() -> None:
    model, x, y = make(torch.float32)
    nn.functional.cross_entropy(model(x), y).backward()
    model.head.bias.grad[2] = math.nan  # the layer's second parameter, after a finite weight
    model.conv.weight.grad[0, 0, 0, 0] = -math.inf
    stats = LayerStats(observed_layers(model))
    stats.before_step(histograms=False)
    got = {entry["name"]: entry for entry in stats.after_step() or []}
    assert math.isnan(got["head"]["grad_max_abs"])  # Python's max() alone would say finite
    assert math.isnan(got["head"]["grad_norm"])
    assert got["conv"]["grad_max_abs"] == math.inf
    assert got["norm"]["grad_max_abs"] == pytest.approx(
        float(torch.cat([p.grad.abs().reshape(-1) for p in model.norm.parameters()]).max())
    )


def test_histograms_equal_the_engines_on_edges_infinities_and_nan() -> None:
    model, x, y = make(torch.float32)
    nn.functional.cross_entropy(model(x), y).backward()
    with torch.no_grad():
        # k/30 in float32 over [0, 1]: each value sits on a bin edge, some just below the edge
        # numpy computes in float64 (counting in float32 would put those a bin too high)
        grad = model.head.weight.grad
        edges = (torch.arange(31, dtype=torch.float64) / 30).to(grad.dtype)
        grad.copy_(edges[torch.arange(grad.numel()) % 31].reshape(grad.shape))
        model.head.bias.grad.fill_(1.0)
        # integers 0..30 over 30 bins: every value but the last on a bin's left edge
        weight = model.head.weight
        weight.copy_(torch.arange(weight.numel(), dtype=weight.dtype).reshape(weight.shape) % 31)
        model.head.bias.fill_(30.0)
        conv = model.conv.weight.grad
        conv[0, 0, 0, 0], conv[0, 0, 0, 1], conv[1, 0, 0, 0] = math.inf, -math.inf, math.nan
        model.norm.weight.grad.fill_(math.nan)  # no finite gradient at all in this layer
        model.norm.bias.grad.fill_(math.inf)
        model.unused.weight.fill_(0.25)  # one weight value (its bias differs)
        model.unused.bias.fill_(0.25)
    layers = observed_layers(model)
    stats = LayerStats(layers)
    stats.before_step(histograms=True)
    out = stats.after_step()
    assert out is not None
    for layer, entry in zip(layers, out, strict=True):
        grads = np.concatenate(
            [
                (p.grad if p.grad is not None else torch.zeros_like(p)).numpy().ravel()
                for p in layer.params
            ]
        ).astype(np.float64)
        weights = np.concatenate([p.detach().numpy().ravel() for p in layer.params])
        for values, got in ((grads, entry["grad_histogram"]), (weights, entry["weight_histogram"])):
            want = histogram(values.astype(np.float64))
            assert got["counts"] == want["counts"], layer.name
            np.testing.assert_allclose(got["edges"], want["edges"], rtol=1e-12)
    by_name = {entry["name"]: entry for entry in out}
    assert by_name["norm"]["grad_histogram"]["counts"] == [0] * 30
    conv_values = sum(p.numel() for p in model.conv.parameters())
    assert sum(by_name["conv"]["grad_histogram"]["counts"]) == conv_values - 3  # inf, -inf, nan
    assert by_name["unused"]["weight_histogram"]["edges"][0] == pytest.approx(0.25 - 0.5)
