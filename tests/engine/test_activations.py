"""Activation derivatives and kinks (engine/activations.py), by hand: no torch needed.

`derivative` is what the inspector shows as f'(z); `backward` is what training uses. Both are
checked against the slope of `forward` itself, and at z = 0, where ReLU and leaky ReLU have a
kink, against torch's convention (the slope of the left side).
"""

from __future__ import annotations

import numpy as np
import pytest

from engine.activations import LEAKY_SLOPE, get_activation

Z = np.array([[-3.0, -0.7, 0.4, 2.5], [1.2, -1.9, 0.05, -0.2]])  # no kinks: z != 0


@pytest.mark.parametrize("name", ["linear", "sigmoid", "tanh", "relu", "leaky_relu"])
def test_derivative_is_the_slope_of_forward(name: str) -> None:
    act = get_activation(name)
    h = 1e-6
    slope = (act.forward(Z + h) - act.forward(Z - h)) / (2 * h)  # central difference
    np.testing.assert_allclose(act.derivative(Z, act.forward(Z)), slope, rtol=1e-7, atol=1e-9)


def test_softmax_derivative_is_the_jacobian_diagonal() -> None:
    act = get_activation("softmax")
    h = 1e-6
    diagonal = np.empty_like(Z)
    for i in range(Z.shape[0]):
        for j in range(Z.shape[1]):
            up, down = Z.copy(), Z.copy()
            up[i, j] += h
            down[i, j] -= h
            diagonal[i, j] = (act.forward(up)[i, j] - act.forward(down)[i, j]) / (2 * h)
    np.testing.assert_allclose(act.derivative(Z, act.forward(Z)), diagonal, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize(("name", "left_slope"), [("relu", 0.0), ("leaky_relu", LEAKY_SLOPE)])
def test_kink_at_zero_takes_the_left_slope_as_torch(name: str, left_slope: float) -> None:
    act = get_activation(name)
    z = np.array([[-2.0, 0.0, 0.5, 3.0]])
    a = act.forward(z)
    expected = np.array([[left_slope, left_slope, 1.0, 1.0]])
    np.testing.assert_array_equal(act.derivative(z, a), expected)
    grad_out = np.array([[2.0, 2.0, 2.0, 2.0]])
    np.testing.assert_array_equal(act.backward(z, a, grad_out), 2.0 * expected)
