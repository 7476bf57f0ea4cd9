"""Gradient clipping (engine/optim.py's clip_gradients): by value and by global norm, by hand,
then against torch.nn.utils when torch is importable."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from engine.optim import ClipReport, clip_gradients


def clip(kind: str, threshold: float) -> SimpleNamespace:
    """A ClipConfig stand-in."""
    return SimpleNamespace(kind=kind, threshold=threshold)


def test_no_clip_reports_norms() -> None:
    grads = [np.array([3.0, 0.0]), np.array([[0.0], [4.0]]), np.array([12.0])]
    report = clip_gradients(grads, None)
    assert report == ClipReport(False, 13.0, 13.0, 0.0, [3.0, 4.0, 12.0])
    np.testing.assert_array_equal(grads[0], [3.0, 0.0])


def test_clip_by_value() -> None:
    grads = [np.array([0.5, -3.0, 2.0]), np.array([[1.0, -0.2]])]
    report = clip_gradients(grads, clip("value", 1.0))
    np.testing.assert_array_equal(grads[0], [0.5, -1.0, 1.0])
    np.testing.assert_array_equal(grads[1], [[1.0, -0.2]])
    assert report.clipped is True
    assert report.norm_before == pytest.approx(math.sqrt(14.29), rel=1e-15)
    assert report.norm_after == pytest.approx(math.sqrt(3.29), rel=1e-15)
    assert report.fraction == pytest.approx(2 / 5)
    assert report.norms == pytest.approx([math.sqrt(13.25), math.sqrt(1.04)], rel=1e-15)


def test_clip_by_value_below_threshold_changes_nothing() -> None:
    grads = [np.array([0.5, -3.0, 2.0], dtype=np.float32)]
    report = clip_gradients(grads, clip("value", 3.0))
    assert (report.clipped, report.fraction) == (False, 0.0)
    assert report.norm_after == report.norm_before
    np.testing.assert_array_equal(grads[0], np.array([0.5, -3.0, 2.0], dtype=np.float32))
    # a norm above the threshold with no single value above it: nothing to clip either
    report = clip_gradients([np.array([0.75, -0.75])], clip("value", 1.0))
    norm = math.sqrt(1.125)  # > 1
    assert report == ClipReport(False, norm, norm, 0.0, [norm])


def test_clip_by_value_counts_the_values_clipped_in_every_array() -> None:
    grads = [np.array([2.0, 0.5]), np.array([[-3.0, 4.0], [0.1, 0.2]])]
    report = clip_gradients(grads, clip("value", 1.0))
    assert report.fraction == pytest.approx(3 / 6, rel=1e-15)  # 1 of 2, then 2 of 4
    np.testing.assert_array_equal(grads[1], [[-1.0, 1.0], [0.1, 0.2]])


def test_clip_by_norm() -> None:
    grads = [np.array([3.0, 4.0]), np.array([0.0])]
    report = clip_gradients(grads, clip("norm", 1.0))
    scale = 1.0 / (5.0 + 1e-6)
    np.testing.assert_allclose(grads[0], [3.0 * scale, 4.0 * scale], rtol=1e-15)
    assert report.clipped is True
    assert report.norm_before == 5.0
    assert report.norm_after == pytest.approx(5.0 * scale, rel=1e-15)
    assert report.fraction == pytest.approx(1.0 - scale, rel=1e-15)
    assert report.norms == [5.0, 0.0]


def test_clip_by_norm_below_threshold_changes_nothing() -> None:
    grads = [np.array([3.0, 4.0], dtype=np.float32)]
    report = clip_gradients(grads, clip("norm", 5.0))  # scale 5 / (5 + 1e-6) < 1: torch clips
    assert report.clipped is True and report.fraction < 1e-6
    grads = [np.array([3.0, 4.0], dtype=np.float32)]
    report = clip_gradients(grads, clip("norm", 10.0))
    assert report == ClipReport(False, 5.0, 5.0, 0.0, [5.0])
    report = clip_gradients([np.array([3.0, 4.0])], clip("norm", 5.0 + 1e-6))  # scale exactly 1
    assert report == ClipReport(False, 5.0, 5.0, 0.0, [5.0])
    assert grads[0].dtype == np.float32
    np.testing.assert_array_equal(grads[0], [3.0, 4.0])


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("kind", [None, "value", "norm"])
def test_non_finite_gradients_are_reported_not_clipped(bad: float, kind: str | None) -> None:
    grads = [np.array([100.0, -100.0], dtype=np.float32), np.array([bad, 1.0], dtype=np.float32)]
    report = clip_gradients(grads, None if kind is None else clip(kind, 1.0))
    assert not math.isfinite(report.norm_before)
    assert (math.isnan(report.norm_before), report.clipped) == (math.isnan(bad), False)
    assert report.norms[0] == pytest.approx(100.0 * math.sqrt(2.0))
    np.testing.assert_array_equal(grads[0], [100.0, -100.0])


def test_bad_clip_config() -> None:
    with pytest.raises(ValueError, match="expected one of"):
        clip_gradients([np.ones(2)], clip("percentile", 1.0))


# ---------------------------------------------------------------------------------------------
# Against torch (skipped when torch is not installed)
# ---------------------------------------------------------------------------------------------


def test_clipping_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    for max_norm in (0.5, 2.0, 100.0):
        grads = [rng.standard_normal(s) for s in [(3, 4), (4,), (4, 1), (1,)]]
        tensors = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
        for g, t in zip(grads, tensors, strict=True):
            t.grad = torch.tensor(g)
        total = torch.nn.utils.clip_grad_norm_(tensors, max_norm)
        report = clip_gradients(grads, clip("norm", max_norm))
        assert report.norm_before == pytest.approx(float(total), rel=1e-12)
        for g, t in zip(grads, tensors, strict=True):
            np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-12, atol=1e-15)
        for g, t in zip(grads, tensors, strict=True):
            t.grad = torch.tensor(g)
        torch.nn.utils.clip_grad_value_(tensors, 0.3)
        clip_gradients(grads, clip("value", 0.3))
        for g, t in zip(grads, tensors, strict=True):
            np.testing.assert_array_equal(g, t.grad.numpy())
