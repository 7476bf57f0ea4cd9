"""Per-layer statistics of a PyTorch model, computed on its device, a few operations per tensor.

The definitions are the engine's (engine/stats.py), so the page shows both alike: per layer with
parameters (a module's own parameters, by its dotted name), grad_norm is the L2 norm of dL/dp
over all its parameters, grad_mean_abs and grad_max_abs the mean and largest |dL/dp|,
weight_norm the L2 norm of its parameters after the step, update_ratio the L2 norm of the step's
change divided by weight_norm (0 when that is 0), and 30-bin histograms of gradients and weights
over each layer's finite range (a range of one value is widened by 0.5 each side, as numpy does).

The norms are reductions over each parameter's own tensor (float32 at least), combined per layer
on the host; the histograms are torch.histc over each layer's values in float64; everything
ends in one vector copied to the host once per logged step (histograms add one small look at
the layers' ranges). The histograms cost several times the norms, so the watcher asks for them
about once a second (the page redraws them about as often), the norms at every logged step.
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
# the weights-before buffer is kept between logged steps up to this size
KEEP_BUFFERS_BYTES = 256 * 2**20


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


@dataclass
class _Counted:
    """Histograms of every layer: their ranges on the host, their counts on the device."""

    ranges: list[tuple[float, float]]  # per layer (low, high): the finite range, widened if one
    counts: torch.Tensor  # (layers * bins,) float64


@dataclass
class _Slot:
    """One parameter's places in LayerStats' buffers, made once per device."""

    param: nn.Parameter
    before: torch.Tensor  # (numel,) view of the flat buffer: |dL/dp|, then the weights before
    before_as_param: torch.Tensor  # the same memory in the parameter's shape
    grad: tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # 0-d results: ||g||, sum |g|, max |g|
    weight: tuple[torch.Tensor, torch.Tensor]  # 0-d results: ||w||, ||update||


class LayerStats:
    """The statistics of a fixed list of layers: `before_step` in the optimizer's step pre-hook
    (gradients final), `after_step` in its post-hook (the update made).

    A logged step runs once in many, so its code and buffers are cold in the CPU's caches and
    every call and every byte counts: the norms are taken parameter by parameter, straight from
    the tensors in their own shapes, written into one result vector (out=) and combined per
    layer on the host in plain Python. One flat buffer serves twice per parameter: |dL/dp| is
    written into the parameter's place in it and normed, summed and maxed there, then the
    weights before the step are copied over it while those lines are still in cache (a second,
    cold buffer for |dL/dp| cost a third more); the post-hook subtracts the weights after the
    step from it in place. A logged step so reads each gradient once and the weights three
    times, makes about eight calls per parameter, and allocates nothing while the buffer is kept
    (up to KEEP_BUFFERS_BYTES; a larger model gets it afresh at each logged step)."""

    def __init__(self, layers: list[Layer], bins: int = HISTOGRAM_BINS) -> None:
        self.layers = layers
        self.bins = bins
        self.sizes = [layer.size for layer in layers]
        self._params = [p for layer in layers for p in layer.params]
        ends = np.cumsum([len(layer.params) for layer in layers]).tolist()
        # each layer's parameters: [first, last) in self._params
        self._ranges = list(zip([0, *ends[:-1]], ends, strict=True))
        dtype = torch.float32
        for param in self._params:
            dtype = torch.promote_types(dtype, param.dtype)
        self._dtype = dtype  # of the buffers and the norms: float32, or wider if a parameter is
        self._keep = sum(self.sizes) * dtype.itemsize <= KEEP_BUFFERS_BYTES
        self._slots: list[_Slot] | None = None  # the buffer's views, per parameter
        self._results: torch.Tensor | None = None  # (5 * parameters,): the per-parameter norms
        self._grad_hist: _Counted | None = None  # the gradients' histograms, when asked for
        self._pending = False  # before_step ran and after_step has not

    def _make_slots(self, device: torch.device) -> list[_Slot]:
        slots = self._slots
        if slots is not None and slots[0].before.device == device:
            return slots
        before = torch.empty(sum(self.sizes), dtype=self._dtype, device=device)
        count = len(self._params)
        results = self._results = torch.zeros(5 * count, dtype=self._dtype, device=device)
        grad = results[: 3 * count].view(count, 3)
        weight = results[3 * count :].view(count, 2)
        slots, offset = [], 0
        for i, param in enumerate(self._params):
            size = param.numel()
            copy = before[offset : offset + size]
            slots.append(
                _Slot(
                    param,
                    copy,
                    copy.view(param.shape),
                    (grad[i, 0], grad[i, 1], grad[i, 2]),
                    (weight[i, 0], weight[i, 1]),
                )
            )
            offset += size
        self._slots = slots
        return slots

    def before_step(self, histograms: bool = True) -> None:
        """Summarise the gradients as they are now and keep a copy of the weights; with
        `histograms`, count them too (the costly part: the watcher asks for it about once a
        second)."""
        device = self._params[0].device
        slots = self._make_slots(device)
        signed: list[torch.Tensor] = []  # the gradients as they are, for the histograms
        with torch.no_grad():
            for slot in slots:
                param, grad, magnitude = slot.param, slot.param.grad, slot.before_as_param
                if grad is None or param.numel() == 0:  # unused by this loss: dL/dp is 0
                    for result in slot.grad:
                        result.zero_()
                    grad = torch.zeros_like(magnitude)
                else:
                    if grad.layout != torch.strided:
                        grad = grad.to_dense()
                    if grad.device != device:
                        grad = grad.to(device)
                    if grad.dtype == magnitude.dtype:
                        torch.abs(grad, out=magnitude)
                    else:
                        magnitude.copy_(grad).abs_()
                    norm, total, largest = slot.grad
                    torch.linalg.vector_norm(slot.before, out=norm)
                    torch.sum(slot.before, 0, out=total)
                    torch.amax(slot.before, 0, out=largest)
                if histograms:
                    signed.append(grad.reshape(-1))
                slot.before_as_param.copy_(param)  # over |dL/dp|, done with
            self._grad_hist = self._histograms(torch.cat(signed)) if histograms else None
        self._pending = True

    def after_step(self) -> list[dict[str, Any]] | None:
        """Per-layer statistics (and histograms, when before_step counted them) of the step just
        made, copied to the host at once; None when before_step did not run for it."""
        slots, results, grad_hist = self._slots, self._results, self._grad_hist
        pending, self._pending, self._grad_hist = self._pending, False, None
        if not pending or slots is None or results is None:
            return None
        device = results.device
        packed: np.ndarray | None = None
        with torch.no_grad():
            for slot in slots:
                weight = slot.param
                if weight.device != device:
                    weight = weight.to(device)
                norm, update = slot.weight
                torch.linalg.vector_norm(weight, dtype=self._dtype, out=norm)
                slot.before_as_param.sub_(weight)  # before - after: the update, negated
                torch.linalg.vector_norm(slot.before, out=update)
            if grad_hist is None:
                values = results.tolist()  # the one copy to the host
            else:
                after = torch.cat([s.param.reshape(-1).to(device) for s in slots])
                weight_hist = self._histograms(after)
                parts = [results.to(torch.float64), grad_hist.counts, weight_hist.counts]
                packed = torch.cat(parts).cpu().numpy()
                values = packed[: results.numel()].tolist()
        if not self._keep:
            self._slots = self._results = None
        out = self._layer_entries(values)
        if packed is not None and grad_hist is not None:
            counts = packed[results.numel() :].reshape(2, len(self.layers), self.bins)
            for key, ranges, block in (
                ("grad_histogram", grad_hist.ranges, counts[0]),
                ("weight_histogram", weight_hist.ranges, counts[1]),
            ):
                for entry, (low, high), row in zip(out, ranges, block, strict=True):
                    entry[key] = _histogram(low, high, row, self.bins)
        return out

    def _histograms(self, values: torch.Tensor) -> _Counted:
        """Per layer (a slice of `values`), its finite range and torch.histc's counts over it in
        float64: histc bins as np.histogram does (checked against the edges), so the counts are
        engine.stats.histogram's. One look at the host for the ranges (a sync on a GPU): the
        histograms are asked for about once a second."""
        parts = values.split(self.sizes)
        nothing = values.new_full((2,), math.inf)  # a layer of no values: no finite range
        ranges = torch.stack(
            [torch.stack(torch.aminmax(part)) if part.numel() else nothing for part in parts]
        ).tolist()
        counts = []
        for i, part in enumerate(parts):
            low, high = ranges[i]
            if not (math.isfinite(low) and math.isfinite(high)):  # inf or NaN among them
                part = part[torch.isfinite(part)]
                low, high = (
                    (float(part.min()), float(part.max())) if part.numel() else (math.inf, math.inf)
                )
            if low == high:  # one value: a unit-wide range around it (numpy's rule)
                low, high = low - 0.5, high + 0.5
            if math.isfinite(low):
                counts.append(torch.histc(part.to(torch.float64), self.bins, low, high))
            else:  # no finite value at all
                counts.append(values.new_zeros(self.bins, dtype=torch.float64))
            ranges[i] = (low, high)
        return _Counted(ranges, torch.cat(counts))

    def _layer_entries(self, values: list[float]) -> list[dict[str, Any]]:
        """The per-parameter norms (5 per parameter, as _make_slots lays them out) combined
        per layer, in plain Python: cheaper than numpy for a handful of numbers on a cold path."""
        count = len(self._params)
        grad, weight = values[: 3 * count], values[3 * count :]
        out = []
        for layer, size, (first, last) in zip(self.layers, self.sizes, self._ranges, strict=True):
            weight_norm = math.hypot(*weight[2 * first : 2 * last : 2])
            update_norm = math.hypot(*weight[2 * first + 1 : 2 * last : 2])
            out.append(
                {
                    "name": layer.name,
                    "type": layer.kind,
                    "grad_norm": math.hypot(*grad[3 * first : 3 * last : 3]),
                    "grad_mean_abs": sum(grad[3 * first + 1 : 3 * last : 3]) / size
                    if size
                    else 0.0,
                    "grad_max_abs": _largest(grad[3 * first + 2 : 3 * last : 3]),
                    "weight_norm": weight_norm,
                    "update_ratio": update_norm / weight_norm if weight_norm else 0.0,
                }
            )
        return out


def _largest(values: list[float]) -> float:
    """max() that is NaN when any value is (Python's max skips a NaN after the first value)."""
    largest = max(values, default=0.0)
    return math.nan if any(v != v for v in values) else largest


def _histogram(low: float, high: float, counts: np.ndarray, bins: int) -> dict[str, list]:
    """engine.stats.histogram's shape: bins + 1 edges, bins integer counts."""
    if not math.isfinite(low):  # no finite value at all
        return {"edges": [0.0] * (bins + 1), "counts": [0] * bins}
    edges = np.linspace(low, high, bins + 1)
    return {"edges": edges.tolist(), "counts": counts.astype(np.int64).tolist()}
