"""Finite-difference checks of every analytic gradient in activations, layers and losses.

All in float64 with central differences; the relative error ||analytic - numeric|| /
(||analytic|| + ||numeric||) must stay below 1e-6. Layers are checked through the random scalar
loss L = sum(output * R), which makes dL/d(output) = R.
"""

from __future__ import annotations

import types
from collections.abc import Callable

import numpy as np
import pytest

from engine.activations import ACTIVATION_NAMES
from engine.layers import (
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    Layer,
    MaxPool2D,
)
from engine.losses import get_loss

INIT = types.SimpleNamespace(kind="xavier", std=0.1, range=0.1)  # stand-in for InitConfig
STEP = 1e-6  # central-difference step
TOLERANCE = 1e-6  # largest accepted relative error


def numeric_gradient(loss: Callable[[], float], array: np.ndarray) -> np.ndarray:
    """dL/d(array) by central differences, perturbing `array` in place (restored after)."""
    grad = np.zeros_like(array)
    flat, flat_grad = array.reshape(-1), grad.reshape(-1)  # views: writes reach `array`
    for i in range(flat.size):
        keep = flat[i]
        flat[i] = keep + STEP
        plus = loss()
        flat[i] = keep - STEP
        minus = loss()
        flat[i] = keep
        flat_grad[i] = (plus - minus) / (2 * STEP)
    return grad


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """||a - n|| / (||a|| + ||n||), 0 when both vanish."""
    scale = np.linalg.norm(analytic) + np.linalg.norm(numeric)
    return 0.0 if scale == 0 else float(np.linalg.norm(analytic - numeric) / scale)


def assert_close(analytic: np.ndarray, numeric: np.ndarray, what: str) -> None:
    assert analytic.shape == numeric.shape, f"{what}: shape {analytic.shape} vs {numeric.shape}"
    error = relative_error(analytic, numeric)
    assert error < TOLERANCE, f"{what}: relative error {error:.2e}"
    assert np.linalg.norm(numeric) > 0, f"{what}: gradient is identically zero (vacuous check)"


def built(layer: Layer, input_shape: tuple[int, ...], seed: int = 0) -> Layer:
    layer.build(input_shape, np.random.default_rng(seed), INIT, np.float64)
    return layer


def randomise_params(layer: Layer, rng: np.random.Generator) -> None:
    """Non-trivial values (biases, gamma, beta would otherwise start at 0 or 1)."""
    for param in layer.params.values():
        param.data[...] = rng.normal(0.0, 0.5, size=param.data.shape) + (
            1.0 if param is layer.params.get("gamma") else 0.0
        )


def check_layer(
    layer: Layer,
    x: np.ndarray,
    rng: np.random.Generator,
    before_forward: Callable[[], None] = lambda: None,
) -> None:
    """Compare dL/dx and every dL/dparam of L = sum(layer(x) * R) with central differences."""
    before_forward()
    out = layer.forward(x)
    weights = rng.normal(size=out.shape)  # R

    def loss() -> float:
        before_forward()
        return float(np.sum(layer.forward(x) * weights))

    before_forward()
    layer.forward(x)
    grad_in = layer.backward(weights.copy())
    analytic = {key: param.grad.copy() for key, param in layer.params.items()}
    assert_close(np.asarray(grad_in), numeric_gradient(loss, x), f"{layer.kind} dL/dx")
    for key, param in layer.params.items():
        assert_close(analytic[key], numeric_gradient(loss, param.data), f"{layer.kind} dL/d{key}")


# ---------------------------------------------------------------------------------- dense
@pytest.mark.parametrize("activation", ACTIVATION_NAMES)
def test_dense_gradients_for_every_activation(activation: str) -> None:
    rng = np.random.default_rng(1)
    layer = built(Dense(4, activation), (3,))
    randomise_params(layer, rng)
    x = rng.normal(size=(5, 3))
    check_layer(layer, x, rng)


# ---------------------------------------------------------------------------------- conv2d
@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "activation"),
    [
        (3, 1, "valid", "linear"),
        (3, 1, "same", "tanh"),
        (2, 1, "same", "linear"),  # even kernel: asymmetric padding
        (3, 2, "valid", "linear"),
        (3, 2, "same", "sigmoid"),
        (1, 1, "valid", "linear"),
    ],
)
def test_conv2d_gradients(kernel: int, stride: int, padding: str, activation: str) -> None:
    rng = np.random.default_rng(2)
    layer = built(Conv2D(3, kernel, stride, padding, activation), (2, 5, 6))
    randomise_params(layer, rng)
    x = rng.normal(size=(2, 2, 5, 6))
    check_layer(layer, x, rng)


def test_conv2d_relu_gradients() -> None:
    rng = np.random.default_rng(3)
    layer = built(Conv2D(2, 3, 1, "same", "relu"), (1, 4, 4))
    randomise_params(layer, rng)
    check_layer(layer, rng.normal(size=(2, 1, 4, 4)), rng)


# ---------------------------------------------------------------------------------- pools, flatten
@pytest.mark.parametrize("pool", [MaxPool2D, AvgPool2D])
@pytest.mark.parametrize(("size", "height", "width"), [(2, 4, 6), (2, 5, 7), (3, 7, 6)])
def test_pool_gradients(pool: type, size: int, height: int, width: int) -> None:
    rng = np.random.default_rng(4)
    layer = built(pool(size), (2, height, width))
    check_layer(layer, rng.normal(size=(2, 2, height, width)), rng)


def test_flatten_gradient() -> None:
    rng = np.random.default_rng(5)
    layer = built(Flatten(), (2, 3, 2))
    check_layer(layer, rng.normal(size=(3, 2, 3, 2)), rng)


# ---------------------------------------------------------------------------------- batchnorm
@pytest.mark.parametrize("input_shape", [(4,), (3, 2, 3)])
@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_gradients(input_shape: tuple[int, ...], training: bool) -> None:
    rng = np.random.default_rng(6)
    layer = built(BatchNorm(momentum=0.1, eps=1e-5), input_shape)
    randomise_params(layer, rng)
    features = input_shape[0]
    layer.buffers["running_mean"][...] = rng.normal(size=features)
    layer.buffers["running_var"][...] = rng.uniform(0.5, 2.0, size=features)
    layer.train(training)
    x = rng.normal(1.0, 2.0, size=(5, *input_shape))
    check_layer(layer, x, rng)


# ---------------------------------------------------------------------------------- dropout
@pytest.mark.parametrize("input_shape", [(6,), (2, 3, 3)])
def test_dropout_gradient_with_a_fixed_mask(input_shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(7)
    layer = built(Dropout(0.4), input_shape)

    def same_mask() -> None:
        layer.rng = np.random.default_rng(123)  # every forward draws the same mask

    x = rng.normal(size=(4, *input_shape))
    check_layer(layer, x, rng, before_forward=same_mask)
    assert layer.mask is not None and 0 < np.count_nonzero(layer.mask) < layer.mask.size


def test_dropout_gradient_in_eval_mode_is_identity() -> None:
    rng = np.random.default_rng(8)
    layer = built(Dropout(0.5), (5,)).eval()
    check_layer(layer, rng.normal(size=(3, 5)), rng)


# ---------------------------------------------------------------------------------- losses
def _check_loss(name: str, pred: np.ndarray, target: np.ndarray) -> None:
    loss = get_loss(name)
    _, grad = loss(pred, target)
    numeric = numeric_gradient(lambda: loss(pred, target)[0], pred)
    assert_close(grad, numeric, f"{name} dL/dpred")


def test_mse_gradient() -> None:
    rng = np.random.default_rng(9)
    _check_loss("mse", rng.normal(size=(6, 2)), rng.normal(size=(6, 2)))


def test_bce_gradient() -> None:
    rng = np.random.default_rng(10)
    pred = rng.uniform(0.05, 0.95, size=(7, 1))
    _check_loss("bce", pred, rng.uniform(0.0, 1.0, size=(7, 1)))  # soft targets too
    _check_loss("bce", pred, rng.integers(0, 2, size=(7, 1)).astype(np.float64))


def test_cross_entropy_gradient() -> None:
    rng = np.random.default_rng(11)
    _check_loss("cross_entropy", rng.normal(0.0, 3.0, size=(6, 4)), rng.integers(0, 4, size=6))


# ---------------------------------------------------------------------------------- a stack
def test_conv_pool_batchnorm_dense_stack_with_fused_softmax_cross_entropy() -> None:
    """conv-relu -> maxpool -> batchnorm -> flatten -> dense softmax, CE via the logits."""
    rng = np.random.default_rng(12)
    layers: list[Layer] = [
        Conv2D(3, 3, 1, "same", "relu"),
        MaxPool2D(2),
        BatchNorm(),
        Flatten(),
        Dense(4, "softmax"),
    ]
    shape: tuple[int, ...] = (2, 6, 6)
    for index, layer in enumerate(layers):
        shape = layer.build(shape, np.random.default_rng(index), INIT, np.float64)
        randomise_params(layer, rng)
    x = rng.normal(size=(4, 2, 6, 6))
    labels = rng.integers(0, 4, size=4)
    cross_entropy = get_loss("cross_entropy")

    def loss() -> float:
        h = x
        for layer in layers:
            h = layer.forward(h)
        return cross_entropy(layers[-1].preactivation, labels)[0]

    loss()
    _, grad = cross_entropy(layers[-1].preactivation, labels)
    grad = layers[-1].backward_preactivation(grad)
    assert layers[-1].grad_output is None  # dL/da is never formed when softmax is fused
    for layer in reversed(layers[:-1]):
        grad = layer.backward(grad)
    analytic = {
        (i, key): p.grad.copy() for i, lay in enumerate(layers) for key, p in lay.params.items()
    }
    assert_close(grad, numeric_gradient(loss, x), "stack dL/dx")
    for (index, key), value in analytic.items():
        param = layers[index].params[key]
        assert_close(value, numeric_gradient(loss, param.data), f"stack layer {index} dL/d{key}")
