"""Per-layer statistics as plain floats: what the visualizer reads after a step.

Everything here copies numbers out of the engine (floats, lists), so the result can cross threads
and be JSON-encoded while the engine keeps training. Numbers are what they are, NaN and infinity
included: they become None once, where a report leaves the engine (engine.recorder.Report).

A layer's gradient norm has one definition, `norm(gradient_vector(layer))`: the L2 norm of dL/dp
over all its parameters p, loss and penalty, as backward left it, before any clipping. What
clipping then made of it is named apart ("grad_norm_after_clip"), from the same vector's clipped
values.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from engine.layers import BatchNorm, Layer

SATURATION = 0.99  # |tanh| above this, or sigmoid outside (0.01, 0.99), counts as saturated
HISTOGRAM_BINS = 30  # as TensorBoard's default bucket count
LAYER_STAT_KEYS = (  # what every observed layer of a report carries (batchnorm adds its batch stats)
    "name",
    "type",
    "grad_norm",
    "grad_mean_abs",
    "grad_max_abs",
    "weight_norm",
    "update_ratio",
    "activation_mean",
    "activation_std",
    "dead_fraction",
    "saturated_fraction",
    "clipped",
    "max_grad_norm",
    "grad_norm_after_clip",
)


def observed(layer: Layer) -> bool:
    """Layers that the page charts: those with parameters (dense, conv2d, batchnorm)."""
    return bool(layer.params)


def _flat64(arrays: list[np.ndarray]) -> np.ndarray:
    """All values of `arrays` in one float64 vector."""
    return np.concatenate([a.ravel() for a in arrays]).astype(np.float64, copy=False)


def gradient_vector(layer: Layer) -> np.ndarray:
    """(layer parameters,) float64: dL/dp of every parameter of the layer, in parameter order."""
    return _flat64([p.grad for p in layer.params.values()])


def norm(vector: np.ndarray) -> float:
    """The L2 norm of a float64 vector."""
    return math.sqrt(float(np.dot(vector, vector)))


def activation_statistics(layer: Layer) -> dict[str, float]:
    """Mean, std, dead and saturated fractions of the layer's last output batch."""
    out = layer.output
    if out is None or out.size == 0:
        return {
            "activation_mean": 0.0,
            "activation_std": 0.0,
            "dead_fraction": 0.0,
            "saturated_fraction": 0.0,
        }
    name = layer.activation.name
    flat = out.ravel().astype(np.float64)  # (batch * units,)
    n = flat.size
    mean = float(flat.sum()) / n
    var = max(float(np.dot(flat, flat)) / n - mean * mean, 0.0)
    dead = 0.0
    saturated = 0.0
    if name == "relu":
        # a unit (or a conv channel) is dead when it is zero for every sample of the batch
        per_unit = out if out.ndim == 2 else np.swapaxes(out, 0, 1).reshape(out.shape[1], -1).T
        dead = 1.0 - float(np.count_nonzero(per_unit.any(axis=0))) / per_unit.shape[1]
    elif name == "tanh":
        saturated = float(np.count_nonzero(np.abs(flat) > SATURATION)) / n
    elif name == "sigmoid":
        saturated = float(np.count_nonzero(np.abs(flat - 0.5) > SATURATION - 0.5)) / n
    return {
        "activation_mean": mean,
        "activation_std": math.sqrt(var),
        "dead_fraction": dead,
        "saturated_fraction": saturated,
    }


def layer_statistics(
    layer: Layer, update_norm: float | None = None, clipped: bool = False
) -> dict[str, Any]:
    """Gradient, weight, update and activation statistics of one layer after a step."""
    grad = gradient_vector(layer)  # (layer parameters,)
    weight = _flat64([p.data for p in layer.params.values()])  # (layer parameters,)
    grad_abs = np.abs(grad)
    weight_norm = norm(weight)
    ratio = None
    if update_norm is not None:
        ratio = update_norm / weight_norm if weight_norm else 0.0
    stats: dict[str, Any] = {
        "name": layer.name,
        "type": layer.kind,
        "grad_norm": norm(grad),
        "grad_mean_abs": float(grad_abs.sum()) / grad.size,
        "grad_max_abs": float(grad_abs.max()),
        "weight_norm": weight_norm,
        "update_ratio": ratio,
        "clipped": bool(clipped),
    }
    stats.update(activation_statistics(layer))
    if isinstance(layer, BatchNorm) and layer.batch_mean is not None:
        stats["batch_mean"] = [float(v) for v in layer.batch_mean]
        stats["batch_var"] = [float(v) for v in layer.batch_var]
    return stats


def histogram(values: np.ndarray, bins: int = HISTOGRAM_BINS) -> dict[str, list[float]]:
    """Counts of `values` in `bins` equal-width bins over their finite range."""
    flat = values.ravel()
    flat = flat[np.isfinite(flat)]
    if flat.size == 0:
        return {"edges": [0.0] * (bins + 1), "counts": [0] * bins}
    low, high = float(flat.min()), float(flat.max())
    if low == high:
        low, high = low - 0.5, high + 0.5
    counts, edges = np.histogram(flat, bins=bins, range=(low, high))
    return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}


def layer_histograms(layer: Layer, bins: int = HISTOGRAM_BINS) -> dict[str, dict[str, list]]:
    """Histograms of the layer's gradients and of its weights (all its parameters)."""
    grads = np.concatenate([p.grad.ravel() for p in layer.params.values()])
    weights = np.concatenate([p.data.ravel() for p in layer.params.values()])
    return {"grad": histogram(grads, bins), "weight": histogram(weights, bins)}
