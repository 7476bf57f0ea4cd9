"""The network: an ordered stack of layers built from the config for one input shape.

`Network` owns the layers and the loss. It knows how to run a batch forward, turn the loss gradient
into every parameter's gradient (backward), and name every array stably ("0.W", "0.b", "2.gamma",
"2.running_mean") so weights can be read, written, saved and compared with PyTorch.

It also owns the one flat layout of the parameters: every Parameter.data is a view into one array,
`flat.data`, in layer order, so that the optimizer updates the whole network with a handful of
array operations and a layer's values are one slice of it (`layer_slices`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from engine.config import (
    AvgPool2DLayer,
    BatchNormLayer,
    ConfigError,
    Conv2DLayer,
    DenseLayer,
    DropoutLayer,
    FieldError,
    FlattenLayer,
    InitConfig,
    LayerConfig,
    MaxPool2DLayer,
)
from engine.cost import MAX_FLOPS_PER_SAMPLE, MAX_PARAMETERS
from engine.layers import (
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    Layer,
    MaxPool2D,
    Parameter,
)
from engine.losses import Loss, get_loss


class WeightsError(ValueError):
    """Weights that do not fit the network; `name` is the array's stable name ("0.W")."""

    def __init__(self, name: str, message: str) -> None:
        self.name = name
        super().__init__(f"{name}: {message}" if name else message)


def make_layer(config: LayerConfig) -> Layer:
    """The engine layer for one layer config."""
    if isinstance(config, DenseLayer):
        return Dense(config.units, config.activation)
    if isinstance(config, Conv2DLayer):
        return Conv2D(
            config.filters, config.kernel_size, config.stride, config.padding, config.activation
        )
    if isinstance(config, MaxPool2DLayer):
        return MaxPool2D(config.size)
    if isinstance(config, AvgPool2DLayer):
        return AvgPool2D(config.size)
    if isinstance(config, FlattenLayer):
        return Flatten()
    if isinstance(config, BatchNormLayer):
        return BatchNorm(config.momentum, config.eps)
    if isinstance(config, DropoutLayer):
        return Dropout(config.rate)
    raise TypeError(f"unknown layer config {type(config).__name__}")


class Network:
    """Layers applied in order; the last one is the output layer."""

    def __init__(
        self,
        layer_configs: list[LayerConfig],
        input_shape: tuple[int, ...],
        loss: str,
        init: InitConfig,
        rng: np.random.Generator,
        dtype: Any = np.float32,
    ) -> None:
        self.layers: list[Layer] = []  # in forward order; layer i is named str(i)
        self.input_shape = tuple(input_shape)  # per-sample shape fed to layer 0
        self.loss: Loss = get_loss(loss)  # mean loss and dL/d(prediction) in one call
        self.loss_name = loss  # "mse" | "bce" | "cross_entropy"
        self.dtype = np.dtype(dtype)  # float32 (fast) or float64 (gradient checks)
        self._flatten_before: list[bool] = []  # dense layers fed a multi-dim input flatten it
        self._in_shapes: list[tuple[int, ...]] = []  # per-sample input shape of each layer
        shape = self.input_shape
        errors: list[FieldError] = []
        for index, config in enumerate(layer_configs):
            layer = make_layer(config)
            layer.name = str(index)
            flatten = isinstance(layer, Dense) and len(shape) > 1
            if flatten:
                shape = (math.prod(shape),)
            try:
                self._in_shapes.append(shape)
                shape = layer.build(shape, rng, init, self.dtype)
            except ValueError as exc:
                errors.append(FieldError(f"layers[{index}]", _fit_message(config, shape, exc)))
                break
            if any(d < 1 for d in shape):
                errors.append(
                    FieldError(
                        f"layers[{index}]",
                        f"{config.type} turns input {self._in_shapes[-1]} into an empty output "
                        f"{shape}; use a smaller kernel/pool or 'same' padding",
                    )
                )
                break
            self.layers.append(layer)
            self._flatten_before.append(flatten)
        if errors:
            raise ConfigError(errors)
        self.layers[0].needs_input_grad = False  # nobody needs dL/d(input data)
        self._parameters = [p for _, p in self.named_parameters()]  # every Parameter, layer order
        self._forward_plan = [  # (bound forward, flatten first?) per layer, for the hot loop
            (layer.forward, flatten)
            for layer, flatten in zip(self.layers, self._flatten_before, strict=True)
        ]
        # flat: every parameter in one Parameter (what the optimizer updates); layer_slices: each
        # layer's part of it, None for a layer without parameters
        self.flat, self.layer_slices = self._flatten_parameters()
        self.output_shape = shape  # per-sample output shape
        self.fused_softmax = loss == "cross_entropy"  # CE reads logits; softmax folds into dL/dz
        total = self.param_count()
        if total > MAX_PARAMETERS:
            raise ConfigError.single(
                "layers",
                f"the network has {total:,} parameters, at most {MAX_PARAMETERS:,} are allowed",
            )
        flops = self.flops_per_sample()
        if flops > MAX_FLOPS_PER_SAMPLE:
            raise ConfigError.single(
                "layers",
                f"one sample costs about {flops:,} multiply-adds, at most "
                f"{MAX_FLOPS_PER_SAMPLE:,} are allowed; use fewer units or filters",
            )

    def _flatten_parameters(self) -> tuple[Parameter, list[slice | None]]:
        """Lay every parameter out in one flat array; each Parameter.data becomes a view of it.

        Returns the whole network as one Parameter (what the optimizer updates) and each layer's
        slice of it (None for a layer without parameters). The gradients are gathered into
        `flat.grad` with one concatenate: for a small network this halves the cost of a step
        compared with one update per array.
        """
        sizes = [p.data.size for p in self._parameters]
        flat = Parameter(np.zeros(sum(sizes), dtype=self.dtype))  # (all parameters,)
        slices: list[slice | None] = []
        start = 0
        for layer in self.layers:
            begin = start
            for param in layer.params.values():
                view = flat.data[start : start + param.data.size].reshape(param.data.shape)
                view[...] = param.data
                param.data = view
                start += param.data.size
            slices.append(slice(begin, start) if layer.params else None)
        return flat, slices

    def gather_grads(self) -> np.ndarray:
        """Copy every param.grad into flat.grad (parameter order) and return it."""
        grads = [p.grad for p in self._parameters]
        if grads:
            np.concatenate(grads, axis=None, out=self.flat.grad)
        return self.flat.grad

    # ------------------------------------------------------------------ passes
    def forward(self, x: np.ndarray) -> np.ndarray:
        """The output layer's activations for a batch x; every layer caches what backward needs."""
        for forward, flatten in self._forward_plan:
            if flatten:
                x = x.reshape(len(x), -1)  # (batch, features)
            x = forward(x)
        return x

    def loss_input(self) -> np.ndarray:
        """What the loss reads after forward: logits for cross-entropy, else the output."""
        last = self.layers[-1]
        return last.preactivation if self.fused_softmax else last.output  # type: ignore[return-value]

    def backward(self, grad_loss: np.ndarray) -> None:
        """From dL/d(loss input) to every param.grad, output layer first."""
        last = self.layers[-1]
        if self.fused_softmax:
            grad = last.backward_preactivation(grad_loss)  # dL/dz of the output layer is given
        else:
            grad = last.backward(grad_loss)  # dL/da of the output layer
        for index in range(len(self.layers) - 2, -1, -1):
            if self._flatten_before[index + 1]:
                grad = grad.reshape((len(grad), *self.layers[index].output_shape))
            grad = self.layers[index].backward(grad)

    def train(self, mode: bool = True) -> None:
        """Training mode (batch statistics, dropout on) or eval mode (running statistics)."""
        for layer in self.layers:
            layer.train(mode)

    # ------------------------------------------------------------------ arrays by name
    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        """("0.W", Parameter), ("0.b", Parameter), ... in layer order."""
        for layer in self.layers:
            for key, param in layer.params.items():
                yield f"{layer.name}.{key}", param

    def parameters(self) -> list[Parameter]:
        """Every trainable Parameter in layer order."""
        return self._parameters

    def named_arrays(self) -> Iterator[tuple[str, np.ndarray]]:
        """Parameters and buffers (running statistics) by stable name, live references."""
        for layer in self.layers:
            for key, param in layer.params.items():
                yield f"{layer.name}.{key}", param.data
            for key, buffer in layer.buffers.items():
                yield f"{layer.name}.{key}", buffer

    def get_weights(self) -> dict[str, np.ndarray]:
        """Copies of every parameter and buffer by stable name."""
        return {name: array.copy() for name, array in self.named_arrays()}

    def set_weights(self, weights: dict[str, Any], partial: bool = False) -> None:
        """Write arrays by stable name; checks every name, shape and value before writing any."""
        targets = dict(self.named_arrays())
        unknown = sorted(set(weights) - set(targets))
        if unknown:
            raise WeightsError(
                unknown[0], f"no such array; expected one of {', '.join(targets) or 'none'}"
            )
        if not partial:
            missing = [name for name in targets if name not in weights]
            if missing:
                raise WeightsError(missing[0], "missing")
        staged: list[tuple[np.ndarray, np.ndarray]] = []
        for name, value in weights.items():
            target = targets[name]
            try:
                array = np.asarray(value, dtype=np.float64)
            except (TypeError, ValueError):
                raise WeightsError(name, "expected an array of numbers") from None
            if array.shape != target.shape:
                raise WeightsError(name, f"expected shape {target.shape}, got {array.shape}")
            if not np.all(np.isfinite(array)):
                raise WeightsError(name, "contains NaN or infinite values")
            if name.endswith(".running_var") and np.any(array < 0):
                raise WeightsError(name, "a variance cannot be negative")
            staged.append((target, array))
        for target, array in staged:
            target[...] = array  # in place: the optimizer and layers keep their references

    # ------------------------------------------------------------------ size
    def param_count(self) -> int:
        """Number of trainable scalars."""
        return sum(layer.param_count() for layer in self.layers)

    def flops_per_sample(self) -> int:
        """Rough multiply-adds of one sample's forward pass."""
        return sum(layer.flops_per_sample() for layer in self.layers)

    def describe(self) -> list[dict[str, Any]]:
        """Each layer's name, type, activation, input/output shape and parameter shapes."""
        return [
            {
                "name": layer.name,
                "type": layer.kind,
                "activation": layer.activation.name,
                "input_shape": list(shape),
                "output_shape": list(layer.output_shape or ()),
                "params": {key: list(p.data.shape) for key, p in layer.params.items()},
            }
            for layer, shape in zip(self.layers, self._in_shapes, strict=True)
        ]


def _fit_message(config: LayerConfig, shape: tuple[int, ...], exc: ValueError) -> str:
    """Explain why a layer cannot take the shape it is given."""
    if config.type in ("conv2d", "maxpool2d", "avgpool2d") and len(shape) != 3:
        return (
            f"{config.type} needs image input (channels, height, width), got {shape}; "
            "use an image dataset such as 'glyphs'"
        )
    return f"{config.type} cannot take input of shape {shape}: {exc}"
