"""Numerical robustness of the kernels: finite, warning-free results for inputs up to |1e4|.

Hypothesis draws activations' and losses' inputs from [-1e4, 1e4] in float32 and float64; every
call runs with warnings as errors and numpy's overflow/divide/invalid traps raised (underflow to 0
is fine). Also: softmax rows sum to 1, and float32 stays float32 through every layer's forward
and backward.
"""

from __future__ import annotations

import types
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from engine.activations import ACTIVATION_NAMES, get_activation
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

INIT = types.SimpleNamespace(kind="he", std=0.1, range=0.1)  # stand-in for InitConfig
LIMIT = 1e4
SETTINGS = settings(max_examples=40, deadline=None)
DTYPES = st.sampled_from([np.float32, np.float64])


@contextmanager
def strict() -> Iterator[None]:
    """Any Python warning or numpy floating-point error (but underflow) raises."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", divide="raise", invalid="raise", under="ignore"):
            yield


@st.composite
def batches(draw: st.DrawFn, min_features: int = 1) -> np.ndarray:
    """A (batch, features) array with values in [-1e4, 1e4], extremes included."""
    dtype = draw(DTYPES)
    shape = (draw(st.integers(1, 6)), draw(st.integers(min_features, 6)))
    elements = st.one_of(
        st.floats(-LIMIT, LIMIT, width=32),
        st.sampled_from([-LIMIT, LIMIT, 0.0, -0.0, 1e-30, -1e-30]),
    )
    return draw(hnp.arrays(dtype, shape, elements=elements))


def _finite(*arrays: np.ndarray) -> bool:
    return all(np.isfinite(a).all() for a in arrays)


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
@SETTINGS
@given(z=batches(), data=st.data())
def test_activations_are_finite_and_warning_free(name: str, z: np.ndarray, data) -> None:  # type: ignore[no-untyped-def]
    act = get_activation(name)
    grad_out = data.draw(hnp.arrays(z.dtype, z.shape, elements=st.floats(-1, 1, width=32)))
    with strict():
        a = act.forward(z)
        grad_z = act.backward(z, a, grad_out)
        slope = act.derivative(z, a)
    assert _finite(a, grad_z, slope)
    assert a.dtype == z.dtype and grad_z.dtype == z.dtype and slope.dtype == z.dtype
    assert a.shape == z.shape == grad_z.shape == slope.shape
    if name == "sigmoid":
        assert ((a >= 0) & (a <= 1)).all()
    if name == "tanh":
        assert ((a >= -1) & (a <= 1)).all()
    if name == "softmax":
        assert ((a >= 0) & (a <= 1)).all()
        tol = 1e-5 if z.dtype == np.float32 else 1e-12
        np.testing.assert_allclose(a.sum(axis=1), 1.0, rtol=0, atol=tol)


@SETTINGS
@given(z=batches())
def test_sigmoid_is_symmetric_and_exact_in_the_tails(z: np.ndarray) -> None:
    sigmoid = get_activation("sigmoid")
    with strict():
        a, b = sigmoid.forward(z), sigmoid.forward(-z)
    tol = 1e-6 if z.dtype == np.float32 else 1e-15
    np.testing.assert_allclose(a + b, 1.0, rtol=0, atol=tol)
    with strict():
        tail = sigmoid.forward(np.array([[-40.0]], dtype=z.dtype))
    assert 0 < tail[0, 0] < 1e-17  # e^-40: not rounded to 0 by a 1 - tiny formula


@pytest.mark.parametrize("name", ["mse", "bce"])
@SETTINGS
@given(pred=batches(), data=st.data())
def test_mse_and_bce_are_finite_and_warning_free(name: str, pred: np.ndarray, data) -> None:  # type: ignore[no-untyped-def]
    if name == "bce":  # targets are probabilities; predictions beyond [0, 1] are clipped
        elements = st.one_of(st.floats(0, 1, width=32), st.sampled_from([0.0, 1.0]))
    else:
        elements = st.floats(-LIMIT, LIMIT, width=32)
    target = data.draw(hnp.arrays(pred.dtype, pred.shape, elements=elements))
    with strict():
        value, grad = get_loss(name)(pred, target)
    assert np.isfinite(value) and value >= 0
    assert _finite(grad) and grad.dtype == pred.dtype and grad.shape == pred.shape


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_of_a_saturated_correct_prediction_is_small_and_positive(dtype: type) -> None:
    eps = 1e-7 if dtype == np.float32 else 1e-12
    for pred, target in [(LIMIT, 1.0), (1.0, 1.0), (-LIMIT, 0.0), (0.0, 0.0)]:
        with strict():
            value, grad = get_loss("bce")(np.full((3, 1), pred, dtype), np.full((3, 1), target))
        assert 0 < value < 3 * eps  # -log(1 - eps), not rounded to 0 or below
        assert np.isfinite(grad).all()


@SETTINGS
@given(logits=batches(min_features=2), data=st.data())
def test_cross_entropy_is_finite_and_warning_free(logits: np.ndarray, data) -> None:  # type: ignore[no-untyped-def]
    batch, classes = logits.shape
    labels = data.draw(hnp.arrays(np.int64, (batch,), elements=st.integers(0, classes - 1)))
    with strict():
        value, grad = get_loss("cross_entropy")(logits, labels)
    assert np.isfinite(value) and value >= 0
    assert _finite(grad) and grad.dtype == logits.dtype
    tol = 1e-5 if logits.dtype == np.float32 else 1e-12
    np.testing.assert_allclose(grad.sum(axis=1), 0.0, atol=tol)  # softmax - onehot sums to 0


# ---------------------------------------------------------------------------------- dtypes
def _layers() -> list[tuple[Layer, tuple[int, ...]]]:
    return [
        (Dense(5, "tanh"), (4,)),
        (Dense(3, "softmax"), (4,)),
        (Conv2D(3, 3, 1, "same", "relu"), (2, 6, 6)),
        (Conv2D(3, 3, 2, "valid", "sigmoid"), (2, 7, 7)),
        (MaxPool2D(2), (2, 5, 5)),
        (AvgPool2D(2), (2, 5, 5)),
        (Flatten(), (2, 3, 3)),
        (BatchNorm(), (4,)),
        (BatchNorm(), (2, 3, 3)),
        (Dropout(0.5), (4,)),
    ]


@pytest.mark.parametrize(("layer", "input_shape"), _layers(), ids=lambda v: getattr(v, "kind", ""))
@pytest.mark.parametrize("training", [True, False])
def test_float32_is_preserved_through_every_layer(
    layer: Layer, input_shape: tuple[int, ...], training: bool
) -> None:
    rng = np.random.default_rng(0)
    layer.build(input_shape, rng, INIT, np.float32)
    layer.train(training)
    x = rng.normal(size=(3, *input_shape)).astype(np.float32)
    with strict():
        out = layer.forward(x)
        grad_in = layer.backward(np.ones_like(out))
    arrays = {"output": out, "preactivation": layer.preactivation, "grad_in": grad_in}
    arrays |= {f"grad {key}": p.grad for key, p in layer.params.items()}
    arrays |= {f"param {key}": p.data for key, p in layer.params.items()}
    arrays |= dict(layer.buffers)
    for what, array in arrays.items():
        assert array.dtype == np.float32, f"{layer.kind} {what}: {array.dtype}"
    assert _finite(*arrays.values())


def test_float32_losses_keep_their_dtype() -> None:
    pred = np.array([[0.2, 0.7], [0.9, 0.1]], dtype=np.float32)
    for name, target in [
        ("mse", np.zeros((2, 2))),  # a float64 target must not upcast the gradient
        ("bce", np.ones((2, 2))),
        ("cross_entropy", np.array([1, 0])),
    ]:
        _, grad = get_loss(name)(pred, target)
        assert grad.dtype == np.float32, name
