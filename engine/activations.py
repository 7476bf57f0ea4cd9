"""Activation functions: forward value, backward (dL/dz from dL/da) and elementwise derivative.

Every activation is a stateless singleton fetched with `get_activation(name)`. They keep the
input dtype (float32 stays float32), allocate as little as possible because they run thousands
of times per second on (10, 8) arrays, and stay finite without numpy warnings for |z| up to 1e4:
sigmoid is evaluated split by sign, softmax subtracts the row maximum before exponentiating.
"""

from __future__ import annotations

import numpy as np

LEAKY_SLOPE = 0.01  # slope of leaky_relu for z <= 0 (torch.nn.LeakyReLU's default)


class Activation:
    """Base class: a = f(z) elementwise (softmax: along axis 1)."""

    name: str = ""

    def forward(self, z: np.ndarray) -> np.ndarray:
        """Return a = f(z)."""
        raise NotImplementedError

    def backward(self, z: np.ndarray, a: np.ndarray, grad_out: np.ndarray) -> np.ndarray:
        """Return dL/dz given z, a = f(z) and grad_out = dL/da."""
        raise NotImplementedError

    def derivative(self, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        """Return f'(z) elementwise (the diagonal of the Jacobian)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"Activation({self.name!r})"


class Linear(Activation):
    """Identity: a = z. Forward and backward return their argument itself (no copy)."""

    name = "linear"

    def forward(self, z: np.ndarray) -> np.ndarray:
        return z

    def backward(self, z: np.ndarray, a: np.ndarray, grad_out: np.ndarray) -> np.ndarray:
        return grad_out

    def derivative(self, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        return np.ones_like(z)


class Sigmoid(Activation):
    """Logistic function 1 / (1 + exp(-z)), split by sign so exp never overflows."""

    name = "sigmoid"

    def forward(self, z: np.ndarray) -> np.ndarray:
        e = np.abs(z)
        np.negative(e, out=e)
        np.exp(e, out=e)  # exp(-|z|) in (0, 1]
        num = np.where(z >= 0, 1, e)  # keeps z's dtype (the 1 is a weak Python scalar)
        e += 1
        num /= e  # z >= 0: 1 / (1 + e^-z); z < 0: e^z / (1 + e^z)
        return num

    def backward(self, z: np.ndarray, a: np.ndarray, grad_out: np.ndarray) -> np.ndarray:
        g = 1 - a
        g *= a
        g *= grad_out
        return g

    def derivative(self, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        return a * (1 - a)


class Tanh(Activation):
    """Hyperbolic tangent; derivative 1 - a^2."""

    name = "tanh"

    def forward(self, z: np.ndarray) -> np.ndarray:
        return np.tanh(z)

    def backward(self, z: np.ndarray, a: np.ndarray, grad_out: np.ndarray) -> np.ndarray:
        g = a * a
        np.subtract(1, g, out=g)
        g *= grad_out
        return g

    def derivative(self, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        return 1 - a * a


class ReLU(Activation):
    """max(z, 0); derivative 1 for z > 0 and 0 otherwise (0 at z = 0, as torch)."""

    name = "relu"

    def forward(self, z: np.ndarray) -> np.ndarray:
        return np.maximum(z, 0)

    def backward(self, z: np.ndarray, a: np.ndarray, grad_out: np.ndarray) -> np.ndarray:
        return grad_out * (z > 0)

    def derivative(self, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        return (z > 0).astype(z.dtype)


class LeakyReLU(Activation):
    """z for z > 0, 0.01 z otherwise (as torch.nn.LeakyReLU())."""

    name = "leaky_relu"

    def forward(self, z: np.ndarray) -> np.ndarray:
        return np.maximum(z, LEAKY_SLOPE * z)  # valid because the slope is below 1

    def backward(self, z: np.ndarray, a: np.ndarray, grad_out: np.ndarray) -> np.ndarray:
        return np.where(z > 0, grad_out, LEAKY_SLOPE * grad_out)

    def derivative(self, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        return np.where(z > 0, 1, LEAKY_SLOPE).astype(z.dtype)


class Softmax(Activation):
    """Softmax along axis 1 (classes of (batch, classes); channels of NCHW, as Softmax2d).

    `derivative` returns only the Jacobian's diagonal a * (1 - a); `backward` applies the full
    Jacobian: dL/dz = a * (dL/da - sum(dL/da * a)).
    """

    name = "softmax"

    def forward(self, z: np.ndarray) -> np.ndarray:
        e = z - np.max(z, axis=1, keepdims=True)  # every exponent <= 0: no overflow
        np.exp(e, out=e)
        e /= np.add.reduce(e, axis=1, keepdims=True)  # the sum is >= 1
        return e

    def backward(self, z: np.ndarray, a: np.ndarray, grad_out: np.ndarray) -> np.ndarray:
        g = grad_out * a
        inner = np.add.reduce(g, axis=1, keepdims=True)  # (batch, 1, ...)
        g -= a * inner
        return g

    def derivative(self, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        return a * (1 - a)


_ACTIVATIONS: dict[str, Activation] = {
    act.name: act for act in (Linear(), Sigmoid(), Tanh(), ReLU(), LeakyReLU(), Softmax())
}
ACTIVATION_NAMES: tuple[str, ...] = tuple(_ACTIVATIONS)  # the allowed activation names


def get_activation(name: str) -> Activation:
    """Return the singleton activation called `name` (one of ACTIVATION_NAMES)."""
    try:
        return _ACTIVATIONS[name]
    except (KeyError, TypeError):
        allowed = ", ".join(ACTIVATION_NAMES)
        raise ValueError(f"unknown activation {name!r}: expected one of {allowed}") from None
