"""Looking inside a network without disturbing it: trace, grids, snapshots, non-finite search.

These functions run extra forward/backward passes for the visualizer. Each works on a network
(and, for the maps over the input plane, a function that turns plane points into the network's
inputs), never on a trainer, and puts back the training caches and gradients it overwrites, so a
statistic taken afterwards still describes the last real training step. Results are plain nested
lists and floats (NaN and infinity become None), or float32 arrays with `compact`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from engine import stats
from engine.cost import MAX_GRID_RESOLUTION
from engine.layers import Conv2D, Dense

if TYPE_CHECKING:
    from engine.data import Domain
    from engine.network import Network

_CACHES = ("input", "preactivation", "output", "grad_output", "grad_preactivation")
MAX_SNAPSHOT_VALUES = 20_000  # a layer's weights are left out of snapshots above this size
SNAPSHOT_WEIGHT_VALUES = 200_000  # all layers' weights of one snapshot together (grads as many)
SNAPSHOT_MAP_VALUES = 65_536  # all conv feature maps and input channels of one snapshot
SNAPSHOT_NEURON_VALUES = 60_000  # all per-neuron heatmaps of one snapshot together
SNAPSHOT_SAMPLE_VALUES = 8_000  # per-sample inputs and deltas of the last batch, all layers
MIN_CLASS_MAPS = 3  # output units from which grid() sends one map per class


def class_map_count(units: int) -> int:
    """How many per-class maps grid() sends for an output layer of `units` units: one per unit
    from three up; none for one unit or a two-unit output, whose single "output" map (the value,
    or p1 - p0) already says everything."""
    return units if units >= MIN_CLASS_MAPS else 0


@dataclass(frozen=True)
class Plane:
    """The 2-D input plane of a run: the part the page draws, and how its points become inputs."""

    domain: Domain  # ((x1 min, x1 max), (x2 min, x2 max)) drawn by the page
    features: list[str]  # the network's input features, in order; grid() maps each one
    prepare: Callable[[np.ndarray], np.ndarray]  # (n, 2) plane points -> (n, features) inputs


@contextmanager
def observing(net: Network) -> Iterator[Network]:
    """Eval mode, with the training caches and gradients put back afterwards."""
    saved = _save_caches(net)
    net.train(False)
    try:
        yield net
    finally:
        net.train(True)
        _restore_caches(net, saved)


def _save_caches(net: Network) -> list[tuple[dict[str, Any], list[np.ndarray]]]:
    """References to every layer's caches and copies of every gradient."""
    return [
        (
            {name: getattr(layer, name) for name in _CACHES},
            [p.grad.copy() for p in layer.params.values()],
        )
        for layer in net.layers
    ]


def _restore_caches(net: Network, saved: list[tuple[dict[str, Any], list[np.ndarray]]]) -> None:
    """Put back what _save_caches took."""
    for layer, (caches, grads) in zip(net.layers, saved, strict=True):
        for name, value in caches.items():
            setattr(layer, name, value)
        for param, grad in zip(layer.params.values(), grads, strict=True):
            param.grad = grad


def first_non_finite(net: Network) -> str | None:
    """The first layer (forward order, then gradients from the output) holding NaN/Inf."""
    for layer in net.layers:
        for what in ("preactivation", "output"):
            value = getattr(layer, what)
            if value is not None and not np.all(np.isfinite(value)):
                return f"layer {layer.name} ({layer.kind}) {what}"
    for layer in reversed(net.layers):
        for key, param in layer.params.items():
            if not np.all(np.isfinite(param.grad)):
                return f"layer {layer.name} ({layer.kind}) gradient of {key}"
    return None


def largest_gradient(net: Network) -> str | None:
    """The layer whose gradient has the largest magnitude, e.g. "layer 0 (dense) (3.1e+25)"."""
    best, name = -1.0, None
    for layer in net.layers:
        for param in layer.params.values():
            value = float(np.max(np.abs(param.grad.astype(np.float64))))
            if value > best:
                best, name = value, f"layer {layer.name} ({layer.kind}) ({value:.3g})"
    return name


def _list(array: np.ndarray | None, digits: int | None = None) -> Any:
    """Array -> nested lists of Python floats (None stays None; NaN/Inf become None).

    digits rounds the values (pictures need 4 significant digits, not 17 JSON characters).
    """
    if array is None:
        return None
    values = np.asarray(array, dtype=np.float64)
    if digits is not None:
        values = np.round(values, digits)
    if np.all(np.isfinite(values)):
        return values.tolist()
    return np.where(np.isfinite(values), values, None).tolist()


def _float32(array: np.ndarray | None, digits: int | None = None) -> np.ndarray | None:
    """Array -> a C-ordered float32 copy (None stays None), for encoders that take NumPy arrays
    (orjson writes each value in float32's shortest form and NaN/Inf as null)."""
    if array is None:
        return None
    if digits is not None:  # rounded in float64, as _list does
        array = np.round(np.asarray(array, dtype=np.float64), digits)
    return np.ascontiguousarray(array, dtype=np.float32)


def _sample_count(net: Network) -> tuple[int, int]:
    """(samples in the last batch, how many of them a snapshot carries sample by sample).

    All of them when the dense layers' inputs and deltas fit in SNAPSHOT_SAMPLE_VALUES, so the
    page can show that the mean of a_i * delta_j over the batch is dL/dw_ij; fewer for wide nets.
    """
    dense = [
        layer
        for layer in net.layers
        if isinstance(layer, Dense) and layer.input is not None and layer.input.ndim == 2
    ]
    if not dense or dense[0].grad_preactivation is None:
        return 0, 0
    batch = len(dense[0].input)
    per_sample = sum(layer.input.shape[1] + layer.output.shape[1] for layer in dense)
    return batch, min(batch, SNAPSHOT_SAMPLE_VALUES // max(per_sample, 1))


def trace(net: Network, x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Every value of one forward and backward pass of inputs x, targets y, in eval mode; changes
    nothing.

    For each layer: input, preactivation z, output a, dL/da, dL/dz (the delta), dL/dW, dL/db and
    the weights themselves, so dL/dw_ij = a_i * delta_j can be checked by hand.
    """
    with observing(net):
        net.forward(x)
        loss, grad_loss = net.loss(net.loss_input(), y)
        net.backward(grad_loss)
        layers = []
        for layer in net.layers:
            params = layer.params
            layers.append(
                {
                    "name": layer.name,
                    "type": layer.kind,
                    "activation": layer.activation.name,
                    "input": _list(layer.input),
                    "preactivation": _list(layer.preactivation),
                    "output": _list(layer.output),
                    "grad_output": _list(layer.grad_output),
                    "grad_preactivation": _list(layer.grad_preactivation),
                    "derivative": _list(
                        layer.activation.derivative(layer.preactivation, layer.output)
                    ),
                    "W": _list(params["W"].data) if "W" in params else None,
                    "b": _list(params["b"].data) if "b" in params else None,
                    "grad_W": _list(params["W"].grad) if "W" in params else None,
                    "grad_b": _list(params["b"].grad) if "b" in params else None,
                }
            )
    return {"loss": float(loss), "loss_name": net.loss_name, "targets": _list(y), "layers": layers}


def grid(
    net: Network,
    plane: Plane,
    resolution: int = 100,
    neuron_budget: int | None = None,
    compact: bool = False,
    chunk: int | None = None,
) -> dict[str, Any]:
    """The output and every dense neuron over the 2-D plane (Playground's heatmaps).

    Rows run along x2 (y axis), columns along x1; "inputs" holds each input feature's map.
    "output" is the single output unit's value, p1 - p0 for a two-unit cross-entropy output, or
    else the most likely class (as a float). From three output units, "classes" holds one map
    per unit, (units, res, res): the class probabilities (softmax of the logits) when the loss is
    cross-entropy ("class_values": "probability"), the units' outputs otherwise ("output").
    With neuron_budget, the neuron maps use a coarser "neuron_resolution" so that all of them
    together hold at most that many values (wide networks would otherwise send megabytes).
    With compact, the maps are float32 NumPy arrays instead of lists (see snapshot). With chunk,
    at most that many points go through the network at once (the run's evaluation chunk, which
    keeps the working memory within its budget); None: all of them.
    """
    resolution = int(resolution)
    if not 2 <= resolution <= MAX_GRID_RESOLUTION:
        raise ValueError(f"resolution: expected 2..{MAX_GRID_RESOLUTION}, got {resolution}")
    (x_lo, x_hi), (y_lo, y_hi) = plane.domain
    xs = np.linspace(x_lo, x_hi, resolution)
    ys = np.linspace(y_lo, y_hi, resolution)
    gx, gy = np.meshgrid(xs, ys)  # (res, res) each; row i is y = ys[i]
    points = np.stack([gx.ravel(), gy.ravel()], axis=1)  # (res*res, 2)
    x = plane.prepare(points)  # (res*res, features)
    shape = (resolution, resolution)
    hidden = [layer for layer in net.layers[:-1] if isinstance(layer, Dense)]
    units = sum(layer.units for layer in hidden)
    neuron_resolution = resolution
    keep = None  # the grid points the neuron maps sample (flat indices); None: all of them
    if neuron_budget is not None and units and units * resolution**2 > neuron_budget:
        neuron_resolution = max(1, int((neuron_budget / units) ** 0.5))
        step = resolution / neuron_resolution
        pick = np.minimum(
            (np.arange(neuron_resolution) * step + step / 2).astype(int), resolution - 1
        )
        keep = (pick[:, None] * resolution + pick[None, :]).ravel()  # (nres*nres,)
    outs, logit_parts = [], []
    rows: dict[str, list[np.ndarray]] = {layer.name: [] for layer in hidden}
    chunk = chunk or len(x)  # points per forward pass
    with observing(net):
        for start in range(0, len(x), chunk):
            stop = min(start + chunk, len(x))
            outs.append(net.forward(x[start:stop]))  # (chunk, outputs)
            logit_parts.append(net.layers[-1].preactivation)  # (chunk, outputs)
            wanted = None if keep is None else keep[(keep >= start) & (keep < stop)] - start
            for layer in hidden:
                rows[layer.name].append(layer.output if wanted is None else layer.output[wanted])
    out, logits = _joined(outs), _joined(logit_parts)  # (res*res, outputs)
    maps = {  # layer name -> (units, nres, nres): each hidden neuron over the plane
        name: _joined(parts).T.reshape(-1, neuron_resolution, neuron_resolution)
        for name, parts in rows.items()
    }
    convert = _float32 if compact else _list
    neurons = {name: convert(m, 4) for name, m in maps.items()}  # one conversion per layer
    output = out[:, 0] if out.shape[1] == 1 else out.argmax(axis=1).astype(np.float64)
    if out.shape[1] == 2 and net.loss_name == "cross_entropy":
        output = out[:, 1] - out[:, 0]  # margin of the positive class, in [-1, 1]
    result = {
        "resolution": resolution,
        "x": [float(x_lo), float(x_hi)],
        "y": [float(y_lo), float(y_hi)],
        "output": convert(output.reshape(shape), 4),
        "inputs": {f: convert(x[:, j].reshape(shape), 4) for j, f in enumerate(plane.features)},
        "neurons": neurons,
        "neuron_resolution": neuron_resolution,
    }
    if class_map_count(out.shape[1]):
        probability = net.loss_name == "cross_entropy"
        # Cross-entropy reads the logits whatever the output activation (softmax or linear),
        # so the probabilities the network stands for are their softmax, not the activations.
        values = _softmax(logits) if probability else out  # (res*res, units)
        result["classes"] = convert(values.T.reshape(-1, resolution, resolution), 4)
        result["class_values"] = "probability" if probability else "output"
    return result


def _first_maps(maps: np.ndarray | None, room: int) -> tuple[np.ndarray | None, int]:
    """The first (h, w) maps of a (count, h, w) stack that fit in `room` values (None when not
    one does), and the room left."""
    if maps is None:
        return None, room
    count = min(len(maps), room // max(1, maps[0].size))
    if count == 0:
        return None, room
    return maps[:count], room - count * maps[0].size


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    """The chunks of a chunked pass as one array (the only chunk itself, uncopied)."""
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64, shifted by the row maximum so exp() cannot overflow."""
    z = np.asarray(logits, dtype=np.float64)  # (n, units)
    e = np.exp(z - z.max(axis=1, keepdims=True))  # (n, units)
    return e / e.sum(axis=1, keepdims=True)


def snapshot(
    net: Network,
    step: int,
    plane: Plane | None = None,
    grid_resolution: int | None = 40,
    compact: bool = False,
    chunk: int | None = None,
) -> dict[str, Any]:
    """Weights, their gradients, per-neuron activations/deltas of the last batch, grids (over the
    plane, if the run has one), histograms; `step` is the step the network is at.

    Values are nested lists of Python floats; with compact, the weights, gradients and grids are
    float32 NumPy arrays instead, for a JSON encoder that writes arrays itself (orjson): the
    live stream's snapshots are ~30 % smaller and quicker to build that way. `chunk` is the
    grid's points per forward pass (see grid).
    """
    convert = _float32 if compact else _list
    weights: dict[str, Any] = {}
    grads: dict[str, Any] = {}
    nodes: dict[str, Any] = {}
    conv: dict[str, Any] = {}
    batch, shown = _sample_count(net)
    weight_room = SNAPSHOT_WEIGHT_VALUES  # what is left of the weights' share
    map_room = SNAPSHOT_MAP_VALUES  # what is left of the conv maps' share
    for layer in net.layers:
        size = layer.param_count()
        with_weights = bool(layer.params) and size <= min(MAX_SNAPSHOT_VALUES, weight_room)
        if with_weights:
            weight_room -= size
            for key, param in layer.params.items():
                weights[f"{layer.name}.{key}"] = convert(param.data)
                grads[f"{layer.name}.{key}"] = convert(param.grad)
        if layer.output is not None and layer.output.ndim == 2 and layer.output.shape[1] <= 4096:
            delta = layer.grad_preactivation
            nodes[layer.name] = {
                "activation": _list(layer.output.mean(axis=0)),
                "delta": None if delta is None else _list(np.abs(delta).mean(axis=0)),
            }
            if shown and isinstance(layer, Dense) and delta is not None:
                # The chain rule sample by sample: the loss is the batch mean of per-sample
                # losses l_b, so dl_b/dz = batch * dL/dz_b and dL/dW = mean_b a_b^T delta_b.
                nodes[layer.name]["samples"] = {
                    "a": convert(layer.input[:shown]),  # (shown, fan_in) inputs a_i
                    "delta": convert(delta[:shown] * batch),  # (shown, units) dl_b/dz_j
                }
        if isinstance(layer, Conv2D):
            W = layer.params["W"]
            maps = layer.output[0] if layer.output is not None else None  # (filters, h, w)
            sample = layer.input[0] if layer.input is not None else None  # (channels, h, w)
            sample, map_room = _first_maps(sample, map_room)
            maps, map_room = _first_maps(maps, map_room)
            conv[layer.name] = {  # the first channels and maps that fit the snapshot's budget
                "input": _list(sample, 4),
                "filters": _list(W.data) if with_weights else None,
                "filter_grad_norm": _list(
                    np.sqrt((W.grad.astype(np.float64) ** 2).reshape(len(W.grad), -1).sum(1))
                ),
                "feature_maps": _list(maps, 4),
            }
    grid_data = None
    if grid_resolution and plane is not None:
        grid_data = grid(
            net, plane, grid_resolution, SNAPSHOT_NEURON_VALUES, compact=compact, chunk=chunk
        )
    return {
        "step": step,
        "batch_size": batch,  # samples in the last training batch
        "samples_shown": shown,  # of them, how many nodes[...]["samples"] hold (the first ones)
        "weights": weights,
        "grads": grads,
        "nodes": nodes,
        "grid": grid_data,
        "histograms": {
            layer.name: stats.layer_histograms(layer)
            for layer in net.layers
            if stats.observed(layer)
        },
        "conv": conv,
    }
