"""Per-layer statistics of a PyTorch model, computed on its device in a few fused operations.

The definitions are the engine's (engine/stats.py), so the page shows both alike: per layer with
parameters (a module's own parameters, by its dotted name), grad_norm is the L2 norm of dL/dp
over all its parameters, grad_mean_abs and grad_max_abs the mean and largest |dL/dp|,
weight_norm the L2 norm of its parameters after the step, update_ratio the L2 norm of the step's
change divided by weight_norm (0 when that is 0), and 30-bin histograms of gradients and weights
over each layer's finite range (a range of one value is widened by 0.5 each side, as numpy does).

The gradients (and the weights) are concatenated into one vector on the device; the norms are
reductions over its per-layer slices (float32 at least), the histograms segmented operations over
the whole vector at once (scatter_reduce, bincount), whatever the number of layers; everything
ends in one vector copied to the host once per logged step. The histograms cost several times
the norms, so the watcher asks for them about once a second (the page redraws them about as
often), the norms at every logged step.
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
    """The statistics of a fixed list of layers: `before_step` in the optimizer's step pre-hook
    (gradients final), `after_step` in its post-hook (the update made)."""

    def __init__(self, layers: list[Layer], bins: int = HISTOGRAM_BINS) -> None:
        self.layers = layers
        self.bins = bins
        self.sizes = [layer.size for layer in layers]
        self._params = [p for layer in layers for p in layer.params]
        self._segments: torch.Tensor | None = None  # layer index of every flat element
        self._grad: torch.Tensor | None = None  # (L, 3): the gradients' norms, on the device
        self._grad_hist: torch.Tensor | None = None  # their histograms, when asked for
        self._before: torch.Tensor | None = None  # the weights before the step, flat

    def _flat(self, tensors: list[torch.Tensor], device: torch.device) -> torch.Tensor:
        return torch.cat([t.detach().reshape(-1).to(device) for t in tensors])

    def _segment_ids(self, device: torch.device) -> torch.Tensor:
        seg = self._segments
        if seg is None or seg.device != device:
            counts = torch.tensor(self.sizes, device=device)
            seg = torch.repeat_interleave(torch.arange(len(self.layers), device=device), counts)
            self._segments = seg
        return seg

    def before_step(self, histograms: bool = True) -> None:
        """Summarise the gradients as they are now and keep a copy of the weights; with
        `histograms`, count them too (the costly part: the watcher asks for it about once a
        second)."""
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
            flat = self._flat(grads, device)
            self._grad = _norms(flat, self.sizes, (2, 1, math.inf))
            self._grad_hist = self._histograms(flat) if histograms else None
            self._before = self._flat(self._params, device)  # cat copies: the weights before

    def after_step(self) -> list[dict[str, Any]] | None:
        """Per-layer statistics (and histograms, when before_step counted them) of the step just
        made, copied to the host at once; None when before_step did not run for it."""
        grad, before, grad_hist = self._grad, self._before, self._grad_hist
        self._grad = self._before = self._grad_hist = None
        if grad is None or before is None:
            return None
        with torch.no_grad():
            after = self._flat(self._params, before.device)
            weight = _norms(after, self.sizes, (2,))
            update = _norms(after - before, self.sizes, (2,))
            parts = [grad.reshape(-1), weight.reshape(-1), update.reshape(-1)]
            if grad_hist is not None:
                parts += [grad_hist, self._histograms(after)]
            packed = torch.cat([part.to(torch.float64) for part in parts]).cpu().numpy()
        return self._unpack(packed, grad_hist is not None)

    def _histograms(self, values: torch.Tensor) -> torch.Tensor:
        """(2 * L + L * bins,) float64: per layer the finite min and max, then the histogram
        counts layer after layer, in segmented operations over all layers at once."""
        n, bins = len(self.layers), self.bins
        flat = values.to(torch.float64)
        seg = self._segment_ids(flat.device)
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
        return torch.cat([low, high, counts.to(torch.float64)])

    def _unpack(self, packed: np.ndarray, histograms: bool) -> list[dict[str, Any]]:
        n, bins = len(self.layers), self.bins
        grad = packed[: 3 * n].reshape(n, 3)
        weight_norms = packed[3 * n : 4 * n]
        update_norms = packed[4 * n : 5 * n]
        out = []
        for i, layer in enumerate(self.layers):
            weight_norm = float(weight_norms[i])
            entry = {
                "name": layer.name,
                "type": layer.kind,
                "grad_norm": float(grad[i, 0]),
                "grad_mean_abs": float(grad[i, 1] / self.sizes[i]),
                "grad_max_abs": float(grad[i, 2]),
                "weight_norm": weight_norm,
                "update_ratio": float(update_norms[i]) / weight_norm if weight_norm else 0.0,
            }
            out.append(entry)
        if histograms:
            width = 2 * n + n * bins
            for key, block in (
                ("grad_histogram", packed[5 * n : 5 * n + width]),
                ("weight_histogram", packed[5 * n + width :]),
            ):
                low, high = block[:n], block[n : 2 * n]
                counts = block[2 * n :].reshape(n, bins)
                for i, entry in enumerate(out):
                    entry[key] = _histogram(low[i], high[i], counts[i], bins)
        return out


def _norms(flat: torch.Tensor, sizes: list[int], orders: tuple[float, ...]) -> torch.Tensor:
    """(L, len(orders)): per layer (a slice of `flat`) the vector norms of those orders (2: L2,
    1: sum of |x|, inf: max |x|), in float32 at least; torch's reductions sum pairwise, so a
    float32 sum of 10^6 values stays within ~1e-6 of the float64 one. (|x| is taken once for
    all layers: vector_norm's ord=inf is several times slower than abs() then amax().)"""
    dtype = torch.promote_types(flat.dtype, torch.float32)
    magnitude = flat.abs() if 1 in orders or math.inf in orders else flat
    rows = []
    for part, size in zip(flat.split(sizes), magnitude.split(sizes), strict=True):
        row = []
        for order in orders:
            if order == 2:
                row.append(torch.linalg.vector_norm(part, dtype=dtype))
            elif order == 1:
                row.append(size.sum(dtype=dtype))
            else:
                row.append(size.amax().to(dtype))
        rows.append(torch.stack(row))
    return torch.stack(rows)


def _histogram(low: float, high: float, counts: np.ndarray, bins: int) -> dict[str, list]:
    """engine.stats.histogram's shape: bins + 1 edges, bins integer counts."""
    if not math.isfinite(low):  # no finite value at all
        return {"edges": [0.0] * (bins + 1), "counts": [0] * bins}
    if low == high:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, bins + 1)
    return {"edges": edges.tolist(), "counts": counts.astype(np.int64).tolist()}
