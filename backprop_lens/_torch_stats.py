"""Per-layer statistics of a PyTorch model, computed on its device in a few fused operations.

The definitions are the engine's (engine/stats.py), so the page shows both alike: per layer with
parameters (a module's own parameters, by its dotted name), grad_norm is the L2 norm of dL/dp
over all its parameters, grad_mean_abs and grad_max_abs the mean and largest |dL/dp|,
weight_norm the L2 norm of its parameters after the step, update_ratio the L2 norm of the step's
change divided by weight_norm (0 when that is 0), and 30-bin histograms of gradients and weights
over each layer's finite range (a range of one value is widened by 0.5 each side, as numpy does).

All layers are done at once: the gradients are concatenated into one float64 vector and each
statistic is one segmented reduction over it (index_add, scatter_reduce, bincount), whatever the
number of layers; everything ends in one vector copied to the host once per logged step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

HISTOGRAM_BINS = 30  # as engine/stats.py (TensorBoard's default)
_BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)
MAX_TOPOLOGY_LAYERS = 2000  # the server refuses more


@dataclass
class Layer:
    """A module with parameters of its own: what one stats entry describes."""

    name: str  # dotted module name ("features.0"); the class name for the root module
    kind: str  # "dense", "conv2d", "batchnorm" or "generic"
    params: list[nn.Parameter]

    @property
    def size(self) -> int:
        return sum(p.numel() for p in self.params)


def kind_of(module: nn.Module) -> str:
    """The engine's layer type for a module: dense, conv2d, batchnorm, else generic."""
    if isinstance(module, nn.Linear):
        return "dense"
    if isinstance(module, nn.Conv2d):
        return "conv2d"
    if isinstance(module, _BATCHNORMS):
        return "batchnorm"
    return "generic"


def observed_layers(model: nn.Module) -> list[Layer]:
    """Every module with trainable parameters of its own, in registration order. A parameter
    shared by two modules (tied weights) counts in the first only, so no norm counts it twice."""
    seen: set[int] = set()
    layers = []
    for name, module in model.named_modules():
        params = []
        for param in module.parameters(recurse=False):
            if param.requires_grad and id(param) not in seen:
                seen.add(id(param))
                params.append(param)
        if params:
            layers.append(Layer(name or type(model).__name__, kind_of(module), params))
    return layers


def topology(model: nn.Module) -> list[dict[str, Any]]:
    """The model as the page draws it: each module with parameters of its own, and each leaf
    module without (activations, pooling, dropout) as a generic block, in registration order."""
    out: list[dict[str, Any]] = []
    for name, module in model.named_modules():
        own = sum(p.numel() for p in module.parameters(recurse=False))
        leaf = next(module.children(), None) is None
        if not own and (not leaf or module is model):
            continue
        entry: dict[str, Any] = {
            "name": name or type(model).__name__,
            "type": kind_of(module),
            "module": type(module).__name__,
            "parameters": int(own),
        }
        if isinstance(module, nn.Linear):
            entry.update(units=module.out_features, in_features=module.in_features)
        elif isinstance(module, nn.Conv2d):
            entry.update(
                filters=module.out_channels,
                in_channels=module.in_channels,
                kernel_size=list(module.kernel_size),
                stride=list(module.stride),
            )
        elif isinstance(module, _BATCHNORMS):
            entry.update(features=module.num_features)
        out.append(entry)
        if len(out) >= MAX_TOPOLOGY_LAYERS:
            break
    return out


class LayerStats:
    """The fused statistics of a fixed list of layers: `before_step` in the optimizer's step
    pre-hook (gradients final), `after_step` in its post-hook (the update made)."""

    def __init__(self, layers: list[Layer], bins: int = HISTOGRAM_BINS) -> None:
        self.layers = layers
        self.bins = bins
        self.sizes = np.array([layer.size for layer in layers], dtype=np.float64)
        self._params = [p for layer in layers for p in layer.params]
        self._segments: torch.Tensor | None = None  # layer index of every flat element
        self._grad: torch.Tensor | None = None  # the gradients' summaries, on the device
        self._before: torch.Tensor | None = None  # the weights before the step, flat

    def _flat(self, tensors: list[torch.Tensor], device: torch.device) -> torch.Tensor:
        return torch.cat([t.detach().reshape(-1).to(device) for t in tensors])

    def _segment_ids(self, device: torch.device) -> torch.Tensor:
        seg = self._segments
        if seg is None or seg.device != device:
            counts = torch.tensor([layer.size for layer in self.layers], device=device)
            seg = torch.repeat_interleave(torch.arange(len(self.layers), device=device), counts)
            self._segments = seg
        return seg

    def before_step(self) -> None:
        """Summarise the gradients as they are now and keep a copy of the weights."""
        device = self._params[0].device
        grads = []
        for p in self._params:
            grad = p.grad
            if grad is None:  # not used by this step's loss: dL/dp is zero
                grad = torch.zeros_like(p)
            elif grad.is_sparse:
                grad = grad.to_dense()
            grads.append(grad)
        with torch.no_grad():
            self._grad = self._summaries(self._flat(grads, device).to(torch.float64))
            self._before = self._flat(self._params, device).clone()

    def after_step(self) -> list[dict[str, Any]] | None:
        """Per-layer statistics and histograms of the step just made (one host copy), or None
        when before_step did not run for it."""
        grad, before = self._grad, self._before
        self._grad = self._before = None
        if grad is None or before is None:
            return None
        with torch.no_grad():
            after = self._flat(self._params, before.device)
            seg = self._segment_ids(before.device)
            delta = (after - before).to(torch.float64)
            update_sq = delta.new_zeros(len(self.layers)).index_add_(0, seg, delta * delta)
            weights = self._summaries(after.to(torch.float64))
            packed = torch.cat([grad, update_sq, weights]).cpu().numpy()
        return self._unpack(packed)

    def _summaries(self, flat: torch.Tensor) -> torch.Tensor:
        """(5 * L + L * bins,) float64: per layer sum of squares, sum of |x|, max |x|, finite
        min, finite max, then the histogram counts, layer after layer."""
        n, bins = len(self.layers), self.bins
        seg = self._segment_ids(flat.device)
        magnitude = flat.abs()
        zeros = flat.new_zeros(n)
        sum_sq = zeros.index_add(0, seg, flat * flat)
        sum_abs = zeros.index_add(0, seg, magnitude)
        max_abs = zeros.scatter_reduce(0, seg, magnitude, "amax", include_self=False)
        finite = torch.isfinite(flat)
        inf = math.inf
        low = flat.new_full((n,), inf).scatter_reduce(
            0, seg, torch.where(finite, flat, inf), "amin"
        )
        high = flat.new_full((n,), -inf).scatter_reduce(
            0, seg, torch.where(finite, flat, -inf), "amax"
        )
        same = low == high  # one value: a unit-wide range around it (numpy's rule)
        low_h = torch.where(same, low - 0.5, low)
        high_h = torch.where(same, high + 0.5, high)
        scale = bins / (high_h - low_h)  # as np.histogram: (x - first_edge) * bins / range
        index = ((flat - low_h[seg]) * scale[seg]).floor().clamp_(0, bins - 1).long()
        slot = torch.where(finite, seg * bins + index, n * bins)  # non-finite: a dropped slot
        counts = torch.bincount(slot, minlength=n * bins + 1)[: n * bins]
        return torch.cat([sum_sq, sum_abs, max_abs, low, high, counts.to(torch.float64)])

    def _unpack(self, packed: np.ndarray) -> list[dict[str, Any]]:
        n, bins = len(self.layers), self.bins
        width = 5 * n + n * bins
        grad, update_sq, weight = packed[:width], packed[width : width + n], packed[width + n :]
        g_sq, g_abs, g_max, g_low, g_high, g_counts = _split(grad, n, bins)
        w_sq, _, _, w_low, w_high, w_counts = _split(weight, n, bins)
        out = []
        for i, layer in enumerate(self.layers):
            weight_norm = math.sqrt(w_sq[i])
            update_norm = math.sqrt(update_sq[i])
            out.append(
                {
                    "name": layer.name,
                    "type": layer.kind,
                    "grad_norm": math.sqrt(g_sq[i]),
                    "grad_mean_abs": float(g_abs[i] / self.sizes[i]),
                    "grad_max_abs": float(g_max[i]),
                    "weight_norm": weight_norm,
                    "update_ratio": update_norm / weight_norm if weight_norm else 0.0,
                    "grad_histogram": _histogram(g_low[i], g_high[i], g_counts[i], bins),
                    "weight_histogram": _histogram(w_low[i], w_high[i], w_counts[i], bins),
                }
            )
        return out


def _split(block: np.ndarray, n: int, bins: int) -> tuple[np.ndarray, ...]:
    parts = [block[k * n : (k + 1) * n] for k in range(5)]
    return (*parts, block[5 * n :].reshape(n, bins))


def _histogram(low: float, high: float, counts: np.ndarray, bins: int) -> dict[str, list]:
    """engine.stats.histogram's shape: bins + 1 edges, bins integer counts."""
    if not math.isfinite(low):  # no finite value at all
        return {"edges": [0.0] * (bins + 1), "counts": [0] * bins}
    if low == high:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, bins + 1)
    return {"edges": edges.tolist(), "counts": counts.astype(np.int64).tolist()}
