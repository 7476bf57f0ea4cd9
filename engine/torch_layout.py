"""The network's weights in PyTorch's names and layout, and back (GET/PUT weights ?layout=torch).

The engine computes a dense layer as x @ W + b with W (fan_in, units): the transpose of
torch.nn.Linear.weight (out_features, in_features). Conv2d weights are already torch's
(out_channels, in_channels, kh, kw); batch norm keeps gamma and beta, torch calls them weight
and bias. So in torch's layout, layer i of the config (the engine's name "i") gives:

    dense      i.weight (units, fan_in) = W.T        i.bias (units,)
    conv2d     i.weight (filters, in_ch, kh, kw)     i.bias (filters,)
    batchnorm  i.weight = gamma, i.bias = beta, i.running_mean, i.running_var

which is the state_dict of a model whose i-th submodule is nn.Linear / nn.Conv2d /
nn.BatchNorm1d or 2d for config layer i (activations, pooling and flatten hold no weights).
torch's BatchNorm also keeps `num_batches_tracked`, which the engine does not count: it is not
exported (load with strict=False) and ignored on the way back.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.network import Network, WeightsError

# (layer kind, engine key) -> torch key; the one array that changes layout is dense W
_TORCH_KEYS = {
    ("dense", "W"): "weight",
    ("dense", "b"): "bias",
    ("conv2d", "W"): "weight",
    ("conv2d", "b"): "bias",
    ("batchnorm", "gamma"): "weight",
    ("batchnorm", "beta"): "bias",
    ("batchnorm", "running_mean"): "running_mean",
    ("batchnorm", "running_var"): "running_var",
}
IGNORED_TORCH_KEYS = frozenset({"num_batches_tracked"})  # torch bookkeeping the engine lacks


def _transposed(kind: str, key: str) -> bool:
    return kind == "dense" and key == "W"


def _names(network: Network) -> dict[str, tuple[str, str, str, tuple[int, ...]]]:
    """torch name -> (engine name, layer kind, engine key, torch shape) of every array."""
    out = {}
    for layer in network.layers:
        arrays = {**{k: p.data for k, p in layer.params.items()}, **layer.buffers}
        for key, array in arrays.items():
            torch_key = _TORCH_KEYS.get((layer.kind, key))
            if torch_key is None:  # a new layer kind must say how torch names its arrays
                raise KeyError(f"no PyTorch name for {layer.kind} array {key!r}")
            shape = array.shape[::-1] if _transposed(layer.kind, key) else array.shape
            out[f"{layer.name}.{torch_key}"] = (f"{layer.name}.{key}", layer.kind, key, shape)
    return out


def to_torch(weights: dict[str, np.ndarray], network: Network) -> dict[str, np.ndarray]:
    """`weights` (engine names, as Network.get_weights gives them) in PyTorch's names and
    layout; dense weights become contiguous (units, fan_in) arrays."""
    out = {}
    for torch_name, (name, kind, key, _shape) in _names(network).items():
        array = weights[name]
        out[torch_name] = np.ascontiguousarray(array.T) if _transposed(kind, key) else array
    return out


def from_torch(weights: dict[str, Any], network: Network) -> dict[str, np.ndarray]:
    """Every array under PyTorch's names and layout (a state_dict, as lists or arrays) under
    the engine's names and layout, for Network.set_weights (which checks the values).
    WeightsError names the torch array that is unknown, missing or of the wrong shape;
    num_batches_tracked is dropped."""
    names = _names(network)
    given = {k: v for k, v in weights.items() if k.rpartition(".")[2] not in IGNORED_TORCH_KEYS}
    for torch_name in given:
        if torch_name not in names:
            expected = ", ".join(names) or "none"
            raise WeightsError(torch_name, f"no such array in torch layout; expected {expected}")
    out = {}
    for torch_name, (name, kind, key, shape) in names.items():
        if torch_name not in given:
            raise WeightsError(torch_name, "missing")
        try:
            array = np.asarray(given[torch_name], dtype=np.float64)
        except (TypeError, ValueError):
            raise WeightsError(torch_name, "expected an array of numbers") from None
        if array.shape != shape:
            raise WeightsError(
                torch_name, f"expected shape {shape} (torch layout), got {array.shape}"
            )
        out[name] = array.T if _transposed(kind, key) else array
    return out
