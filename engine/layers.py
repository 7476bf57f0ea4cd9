"""Layers: trainable parameters, the Layer protocol and every layer type, plus weight init.

A layer computes z = f_layer(x) (its "preactivation") and a = activation(z) (its output). The
public `forward`/`backward` in `Layer` do the bookkeeping (caching input, preactivation, output
and their gradients for the trace/inspector); the maths lives in each subclass's `_forward`
(x -> z) and `_backward` (dL/dz -> dL/dx, writing param.grad). Conventions follow PyTorch (NCHW,
conv weight (filters, in_ch, kh, kw), BatchNorm running stats) so weights can be compared and
exchanged; the one difference is Dense's W, stored (fan_in, units) = torch Linear's weight.T.
Every layer keeps its input's dtype (float32 stays float32). Constructor arguments are trusted:
their limits are engine.config's, checked once when a run configuration is validated.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.lib.stride_tricks import as_strided, sliding_window_view

from engine.activations import Activation, get_activation

if TYPE_CHECKING:
    from engine.config import InitConfig

INIT_KINDS = ("xavier", "he", "normal", "uniform", "zeros")  # allowed InitConfig.kind values

# np.dot is ~0.5 us faster than `@` per call on 2-D arrays this small (Dense runs them on (10, 8))
_dot = np.dot
_add_reduce = np.add.reduce


class Parameter:
    """A trainable array and dL/d(array)."""

    __slots__ = ("data", "grad")

    def __init__(self, data: np.ndarray) -> None:
        self.data = data  # the values the optimizer updates in place
        self.grad = np.zeros_like(data)  # dL/d(data) of the last backward (overwritten, not summed)

    def __repr__(self) -> str:
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"


def init_weights(
    shape: tuple[int, ...],
    fan_in: int,
    fan_out: int,
    init: InitConfig | Any,
    rng: np.random.Generator,
    dtype: Any,
) -> np.ndarray:
    """Return a new weight array drawn as `init` says (PyTorch's formulas).

    init is an InitConfig (or any object with kind/std/range, or just the kind as a string):
    xavier = U(-a, a) with a = sqrt(6 / (fan_in + fan_out)) (xavier_uniform_); he = N(0, 2 / fan_in)
    (kaiming_normal_); normal = N(0, std^2); uniform = U(-range, range); zeros.
    """
    kind = init if isinstance(init, str) else getattr(init, "kind", "xavier")
    dtype = np.dtype(dtype)
    if kind == "xavier":
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        values = rng.uniform(-bound, bound, size=shape)
    elif kind == "he":
        values = rng.normal(0.0, math.sqrt(2.0 / fan_in), size=shape)
    elif kind == "normal":
        values = rng.normal(0.0, float(getattr(init, "std", 0.1)), size=shape)
    elif kind == "uniform":
        bound = float(getattr(init, "range", 0.1))
        values = rng.uniform(-bound, bound, size=shape)
    elif kind == "zeros":
        return np.zeros(shape, dtype=dtype)
    else:
        raise ValueError(f"unknown init kind {kind!r}: expected one of {', '.join(INIT_KINDS)}")
    return values.astype(dtype)


def _as_activation(activation: str | Activation) -> Activation:
    """Return the Activation for a name (or the instance itself)."""
    return activation if isinstance(activation, Activation) else get_activation(activation)


class Layer:
    """Base class: bookkeeping around the subclass's `_forward` and `_backward` maths."""

    kind: str = ""  # "dense", "conv2d", "maxpool2d", "avgpool2d", "flatten", "batchnorm", "dropout"

    def __init__(self, activation: str | Activation) -> None:
        self.name = ""  # stable index name set by the network: "0", "1", ...
        self.params: dict[str, Parameter] = {}  # trainable arrays by name
        self.buffers: dict[str, np.ndarray] = {}  # non-trainable state saved with the weights
        self.activation = _as_activation(activation)  # applied after _forward ("linear": none)
        self.training = True  # train() / eval() mode
        self.needs_input_grad = True  # False: layers with params skip dL/dx, backward -> None
        self.input_shape: tuple[int, ...] | None = None  # per-sample input shape, set by build
        self.output_shape: tuple[int, ...] | None = None  # per-sample output shape, set by build
        self.dtype: np.dtype | None = None  # dtype of params and buffers, set by build
        # caches of the last forward/backward (references, read by trace/stats in the same thread)
        self.input: np.ndarray | None = None  # x of the last forward
        self.preactivation: np.ndarray | None = None  # z of the last forward
        self.output: np.ndarray | None = None  # a = activation(z) of the last forward
        self.grad_output: np.ndarray | None = None  # dL/da of the last backward (None if fused)
        self.grad_preactivation: np.ndarray | None = None  # dL/dz of the last backward

    # -- public protocol ------------------------------------------------------------------
    def build(
        self,
        input_shape: tuple[int, ...],
        rng: np.random.Generator,
        init: InitConfig | Any,
        dtype: Any,
    ) -> tuple[int, ...]:
        """Create params for a per-sample `input_shape`; return the per-sample output shape."""
        self.input_shape = tuple(int(d) for d in input_shape)
        self.dtype = np.dtype(dtype)
        self.output_shape = self._build(self.input_shape, rng, init, self.dtype)
        return self.output_shape

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Return the output for a batch x (batch first); caches input, preactivation, output."""
        self.input = x
        z = self._forward(x)
        self.preactivation = z
        a = self.activation.forward(z)
        self.output = a
        return a

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        """Turn dL/d(output) into dL/d(input); overwrites every param.grad.

        Returns None instead of dL/dx when `needs_input_grad` is False (a first layer with
        params: nobody needs the gradient of the data, and it is the costliest part of conv).
        """
        grad_pre = self.activation.backward(self.preactivation, self.output, grad_out)
        grad_in = self.backward_preactivation(grad_pre)
        self.grad_output = grad_out
        return grad_in

    def backward_preactivation(self, grad_pre: np.ndarray) -> np.ndarray | None:
        """Like backward, from a known dL/dz (softmax fused with cross-entropy); sets
        grad_output to None because dL/da is never formed."""
        self.grad_output = None
        self.grad_preactivation = grad_pre
        return self._backward(grad_pre)

    def train(self, mode: bool = True) -> Layer:
        """Switch to training mode (or eval mode with mode=False)."""
        self.training = mode
        return self

    def eval(self) -> Layer:
        """Switch to evaluation mode."""
        self.training = False
        return self

    def param_count(self) -> int:
        """Number of trainable scalars."""
        return sum(p.data.size for p in self.params.values())

    def flops_per_sample(self) -> int:
        """Rough multiply-add count of one sample's forward pass."""
        return 0

    def __repr__(self) -> str:
        act = "" if self.activation.name == "linear" else f", activation={self.activation.name!r}"
        return f"{type(self).__name__}(name={self.name!r}{act})"

    # -- subclass maths -------------------------------------------------------------------
    def _build(
        self, input_shape: tuple[int, ...], rng: np.random.Generator, init: Any, dtype: np.dtype
    ) -> tuple[int, ...]:
        return input_shape

    def _forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _backward(self, grad_pre: np.ndarray) -> np.ndarray | None:
        raise NotImplementedError

    def _activation_flops(self) -> int:
        """Elementwise activation cost per sample (0 for linear)."""
        if self.activation.name == "linear" or self.output_shape is None:
            return 0
        return math.prod(self.output_shape)

    def _expect_rank(self, input_shape: tuple[int, ...], rank: int, what: str) -> None:
        if len(input_shape) != rank:
            raise ValueError(
                f"{self.kind} layer input: expected per-sample shape {what}, got {input_shape}"
            )


class Dense(Layer):
    """Fully connected: z = x @ W + b with W (fan_in, units), b (units,)."""

    kind = "dense"

    def __init__(self, units: int, activation: str | Activation = "tanh") -> None:
        super().__init__(activation)
        self.units = units  # output width
        self.W: Parameter | None = None  # same object as params["W"]; weight (fan_in, units)
        self.b: Parameter | None = None  # same object as params["b"]; bias (units,)

    def _build(self, input_shape, rng, init, dtype):
        self._expect_rank(input_shape, 1, "(features,) (add a flatten layer)")
        fan_in = input_shape[0]
        self.W = Parameter(init_weights((fan_in, self.units), fan_in, self.units, init, rng, dtype))
        self.b = Parameter(np.zeros(self.units, dtype=dtype))
        self.params = {"W": self.W, "b": self.b}
        return (self.units,)

    def _forward(self, x):
        z = _dot(x, self.W.data)  # (batch, units)
        z += self.b.data
        return z

    def _backward(self, grad_pre):
        W = self.W
        W.grad = _dot(self.input.T, grad_pre)  # (fan_in, units)
        self.b.grad = _add_reduce(grad_pre, axis=0)  # (units,)
        if not self.needs_input_grad:
            return None
        return _dot(grad_pre, W.data.T)  # (batch, fan_in)

    def flops_per_sample(self) -> int:
        return self.W.data.size + self._activation_flops() if self.W is not None else 0


def _same_padding(kernel: int) -> tuple[int, int]:
    """(low, high) padding of one spatial axis for padding="same": total k - 1, low (k - 1) // 2."""
    low = (kernel - 1) // 2
    return low, kernel - 1 - low


class Conv2D(Layer):
    """2-D convolution (cross-correlation, as torch) on NCHW batches via im2col and one matmul.

    W (filters, in_ch, kh, kw), b (filters,). padding "valid" (none) or "same" (total k - 1 per
    axis, low (k - 1) // 2, so output H, W = ceil(H / stride), torch's padding="same" at stride 1).

    Stride 1 uses a "row-flat" im2col: seen as one long row of length Hp*Wp, the window of output
    (y, x) at kernel offset (i, j) reads flat index (y*Wp + x) + (i*Wp + j), so every (c, i, j)
    row of the im2col matrix is ONE contiguous slice of length span = (Ho - 1)*Wp + Wo. The
    Wp - Wo junk columns between output rows are dropped from the output (a strided view) and get
    zero gradient; col2im is then k*k contiguous slice additions. This is ~2x faster than the
    window-by-window layout, which the stride > 1 path uses (sliding_window_view + reshape copy).
    """

    kind = "conv2d"

    def __init__(
        self,
        filters: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: str = "valid",
        activation: str | Activation = "relu",
    ) -> None:
        super().__init__(activation)
        self.filters = filters  # output channels
        self.kernel_size = kernel_size  # square kernel side
        self.stride = stride  # step between windows, both axes
        self.padding = padding  # "valid" (none) or "same"
        self.W: Parameter | None = None  # same object as params["W"]; (filters, in_ch, kh, kw)
        self.b: Parameter | None = None  # same object as params["b"]; (filters,)
        self._pad = (0, 0, 0, 0)  # (top, bottom, left, right) zero padding
        self._cols: np.ndarray | None = None  # im2col of the last forward (N, C*k*k, columns)
        self._padded_shape: tuple[int, ...] = ()  # (N, C, Hp, Wp) of the last forward

    def _build(self, input_shape, rng, init, dtype):
        self._expect_rank(input_shape, 3, "(channels, height, width)")
        channels, height, width = input_shape
        k, s = self.kernel_size, self.stride
        if self.padding == "same":
            self._pad = (*_same_padding(k), *_same_padding(k))
        top, bottom, left, right = self._pad
        out_h = (height + top + bottom - k) // s + 1
        out_w = (width + left + right - k) // s + 1
        if out_h < 1 or out_w < 1:
            raise ValueError(
                f"conv2d input: expected height and width >= kernel_size {k}, got {height}x{width}"
            )
        fan_in, fan_out = channels * k * k, self.filters * k * k
        shape = (self.filters, channels, k, k)
        self.W = Parameter(init_weights(shape, fan_in, fan_out, init, rng, dtype))
        self.b = Parameter(np.zeros(self.filters, dtype=dtype))
        self.params = {"W": self.W, "b": self.b}
        return (self.filters, out_h, out_w)

    def _forward(self, x):
        padded = self._padded(x)  # (N, C, Hp, Wp)
        self._padded_shape = padded.shape
        weights = self.W.data.reshape(self.filters, -1)  # (F, C*k*k)
        if self.stride == 1:
            return self._forward_rowflat(padded, weights)
        return self._forward_windows(padded, weights)

    def _backward(self, grad_pre):
        if self.stride == 1:
            return self._backward_rowflat(grad_pre)
        return self._backward_windows(grad_pre)

    def _padded(self, x: np.ndarray) -> np.ndarray:
        """x with the zero padding of `padding` (x itself for "valid")."""
        top, bottom, left, right = self._pad
        if not (top or bottom or left or right):
            return x
        n, c, h, w = x.shape
        padded = np.zeros((n, c, h + top + bottom, w + left + right), dtype=x.dtype)
        padded[:, :, top : top + h, left : left + w] = x
        return padded

    def _unpadded(self, grad_padded: np.ndarray) -> np.ndarray:
        """The gradient of the unpadded input: grad_padded without its padding border."""
        top, bottom, left, right = self._pad
        if not (top or bottom or left or right):
            return grad_padded
        h, w = grad_padded.shape[2] - top - bottom, grad_padded.shape[3] - left - right
        return grad_padded[:, :, top : top + h, left : left + w]

    def _offsets(self, row: int) -> list[int]:
        """Flat offsets i*row + j of the kernel positions, (i, j) in row-major order."""
        k = self.kernel_size
        return [i * row + j for i in range(k) for j in range(k)]

    # -- stride 1: row-flat im2col ---------------------------------------------------------
    def _forward_rowflat(self, padded: np.ndarray, weights: np.ndarray) -> np.ndarray:
        n, c, hp, wp = padded.shape
        k = self.kernel_size
        out_h, out_w = hp - k + 1, wp - k + 1
        span = (out_h - 1) * wp + out_w  # flat output columns, junk between rows included
        flat = padded.reshape(n, c, hp * wp)
        cols = np.empty((n, c, k * k, span), dtype=padded.dtype)
        for o, offset in enumerate(self._offsets(wp)):
            cols[:, :, o] = flat[:, :, offset : offset + span]
        cols = cols.reshape(n, c * k * k, span)  # (N, C*k*k, span)
        self._cols = cols
        z = np.matmul(weights, cols)  # (N, F, span)
        z += self.b.data[:, None]
        item = z.itemsize
        # view the valid columns as (N, F, Ho, Wo): output row y starts at flat column y*Wp
        return as_strided(
            z, (n, self.filters, out_h, out_w), (z.strides[0], z.strides[1], wp * item, item)
        )

    def _backward_rowflat(self, grad_pre: np.ndarray) -> np.ndarray:
        n, f, out_h, out_w = grad_pre.shape
        _, c, hp, wp = self._padded_shape
        k = self.kernel_size
        span = (out_h - 1) * wp + out_w
        wide = np.zeros((n, f, out_h * wp), dtype=grad_pre.dtype)  # junk columns get 0
        wide.reshape(n, f, out_h, wp)[:, :, :, :out_w] = grad_pre
        g = wide[:, :, :span]  # (N, F, span)
        W = self.W
        per_sample = np.matmul(g, self._cols.transpose(0, 2, 1))  # (N, F, C*k*k)
        W.grad = _add_reduce(per_sample, axis=0).reshape(W.data.shape)  # (F, C, k, k)
        self.b.grad = _add_reduce(grad_pre, axis=(0, 2, 3))  # (F,)
        if not self.needs_input_grad:
            return None
        grad_cols = np.matmul(W.data.reshape(f, -1).T, g)  # (N, C*k*k, span)
        grad_cols = grad_cols.reshape(n, c, k * k, span)
        grad_flat = np.zeros((n, c, hp * wp), dtype=grad_pre.dtype)
        for o, offset in enumerate(self._offsets(wp)):  # col2im: k*k contiguous additions
            grad_flat[:, :, offset : offset + span] += grad_cols[:, :, o]
        return self._unpadded(grad_flat.reshape(n, c, hp, wp))

    # -- stride > 1: window im2col -----------------------------------------------------------
    def _forward_windows(self, padded: np.ndarray, weights: np.ndarray) -> np.ndarray:
        n, c = padded.shape[:2]
        k, s = self.kernel_size, self.stride
        windows = sliding_window_view(padded, (k, k), axis=(2, 3))[:, :, ::s, ::s]
        out_h, out_w = windows.shape[2], windows.shape[3]  # windows: (N, C, Ho, Wo, k, k)
        # one copy with the output pixel innermost (~4x faster than pixel-major rows)
        cols = windows.transpose(0, 1, 4, 5, 2, 3).reshape(n, c * k * k, out_h * out_w)
        self._cols = cols
        z = np.matmul(weights, cols)  # (N, F, Ho*Wo)
        z += self.b.data[:, None]
        return z.reshape(n, self.filters, out_h, out_w)  # (N, F, Ho, Wo)

    def _backward_windows(self, grad_pre: np.ndarray) -> np.ndarray:
        n, f, out_h, out_w = grad_pre.shape
        _, c, hp, wp = self._padded_shape
        k, s = self.kernel_size, self.stride
        g = grad_pre.reshape(n, f, out_h * out_w)  # (N, F, Ho*Wo)
        W = self.W
        per_sample = np.matmul(g, self._cols.transpose(0, 2, 1))  # (N, F, C*k*k)
        W.grad = _add_reduce(per_sample, axis=0).reshape(W.data.shape)  # (F, C, k, k)
        self.b.grad = _add_reduce(g, axis=(0, 2))  # (F,)
        if not self.needs_input_grad:
            return None
        grad_cols = np.matmul(W.data.reshape(f, -1).T, g)  # (N, C*k*k, Ho*Wo)
        grad_cols = grad_cols.reshape(n, c, k, k, out_h, out_w)
        grad_padded = np.zeros((n, c, hp, wp), dtype=grad_pre.dtype)
        span_h, span_w = s * (out_h - 1) + 1, s * (out_w - 1) + 1
        for i in range(k):  # col2im: one strided addition per kernel offset
            for j in range(k):
                grad_padded[:, :, i : i + span_h : s, j : j + span_w : s] += grad_cols[:, :, i, j]
        return self._unpadded(grad_padded)

    def flops_per_sample(self) -> int:
        if self.W is None or self.output_shape is None:
            return 0
        _, out_h, out_w = self.output_shape
        return self.W.data.size * out_h * out_w + self._activation_flops()


class _Pool2D(Layer):
    """Shared shape logic of the pools: kernel = stride = size, floor output size (as torch)."""

    def __init__(self, size: int = 2) -> None:
        super().__init__("linear")
        self.size = size  # window side and stride

    def _build(self, input_shape, rng, init, dtype):
        self._expect_rank(input_shape, 3, "(channels, height, width)")
        channels, height, width = input_shape
        if height < self.size or width < self.size:
            raise ValueError(
                f"{self.kind} input: expected height and width >= size {self.size}, "
                f"got {height}x{width}"
            )
        return (channels, height // self.size, width // self.size)

    def _blocks(self, x: np.ndarray) -> np.ndarray:
        """View x as (N, C, Ho, s, Wo, s) blocks, dropping rows/columns beyond Ho*s, Wo*s."""
        n, c, h, w = x.shape
        s = self.size
        out_h, out_w = h // s, w // s
        return x[:, :, : out_h * s, : out_w * s].reshape(n, c, out_h, s, out_w, s)

    def _empty_grad(self, grad_pre: np.ndarray) -> np.ndarray:
        """An uninitialised input-shaped gradient whose cropped border rows/columns are zero."""
        grad_in = np.empty(self.input.shape, dtype=grad_pre.dtype)
        h, w = grad_in.shape[2:]
        s = self.size
        grad_in[:, :, (h // s) * s :, :] = 0
        grad_in[:, :, :, (w // s) * s :] = 0
        return grad_in

    def flops_per_sample(self) -> int:
        return math.prod(self.input_shape) if self.input_shape else 0


class MaxPool2D(_Pool2D):
    """Max over non-overlapping size x size windows; gradient to the first maximum (as torch)."""

    kind = "maxpool2d"

    def _forward(self, x):
        blocks = self._blocks(x)  # (N, C, Ho, s, Wo, s) view
        s = self.size
        out = blocks[:, :, :, 0, :, 0].copy()  # (N, C, Ho, Wo)
        for i in range(s):
            for j in range(s):
                if i or j:
                    np.maximum(out, blocks[:, :, :, i, :, j], out=out)
        return out

    def _backward(self, grad_pre):
        # route each window's gradient to its first maximum in row-major order, like torch; one
        # pass per window offset on (N, C, Ho, Wo) arrays beats argmax + scatter by ~3x
        s = self.size
        x = self.input
        blocks = self._blocks(x)
        out = self.preactivation
        grad_in = self._empty_grad(grad_pre)
        grad_blocks = self._blocks(grad_in)  # a view into grad_in
        unclaimed = np.ones(out.shape, dtype=bool)  # windows whose maximum is not yet routed
        for i in range(s):
            for j in range(s):
                hit = blocks[:, :, :, i, :, j] == out
                hit &= unclaimed
                if i < s - 1 or j < s - 1:
                    np.greater(unclaimed, hit, out=unclaimed)  # unclaimed and not hit
                np.multiply(grad_pre, hit, out=grad_blocks[:, :, :, i, :, j])
        return grad_in


class AvgPool2D(_Pool2D):
    """Mean over non-overlapping size x size windows."""

    kind = "avgpool2d"

    # one pass per window offset: ~10x faster than np.add.reduce over the 6-D view's axes (3, 5)
    def _forward(self, x):
        blocks = self._blocks(x)  # (N, C, Ho, s, Wo, s) view
        s = self.size
        out = blocks[:, :, :, 0, :, 0].copy()  # (N, C, Ho, Wo)
        for i in range(s):
            for j in range(s):
                if i or j:
                    out += blocks[:, :, :, i, :, j]
        out *= 1.0 / (s * s)
        return out

    def _backward(self, grad_pre):
        s = self.size
        grad_in = self._empty_grad(grad_pre)
        grad_blocks = self._blocks(grad_in)  # a view into grad_in
        share = grad_pre * (1.0 / (s * s))  # (N, C, Ho, Wo)
        for i in range(s):
            for j in range(s):
                grad_blocks[:, :, :, i, :, j] = share
        return grad_in


class Flatten(Layer):
    """(N, C, H, W) -> (N, C*H*W) in C order (as torch.flatten(x, 1))."""

    kind = "flatten"

    def __init__(self) -> None:
        super().__init__("linear")

    def _build(self, input_shape, rng, init, dtype):
        return (math.prod(input_shape),)

    def _forward(self, x):
        return x.reshape(x.shape[0], -1)

    def _backward(self, grad_pre):
        return grad_pre.reshape(self.input.shape)


class BatchNorm(Layer):
    """Batch normalisation per feature of (N, F) or per channel of (N, C, H, W) (torch 1d/2d).

    Training normalises with the batch mean and biased variance and updates the running stats
    as torch does: running = (1 - momentum) * running + momentum * batch, the variance unbiased
    (times m / (m - 1), m values per feature; with m = 1 the biased 0 is used where torch raises).
    Eval normalises with the running stats. gamma starts at 1, beta at 0.
    """

    kind = "batchnorm"

    def __init__(self, momentum: float = 0.1, eps: float = 1e-5) -> None:
        super().__init__("linear")
        self.momentum = float(momentum)  # weight of the batch in the running statistics
        self.eps = float(eps)  # added to the variance before the square root
        self.gamma: Parameter | None = None  # same object as params["gamma"]; scale (F,)
        self.beta: Parameter | None = None  # same object as params["beta"]; shift (F,)
        self.batch_mean: np.ndarray | None = None  # (F,) mean of the last training batch
        self.batch_var: np.ndarray | None = None  # (F,) biased variance of the last training batch
        self._axes: tuple[int, ...] = (0,)  # reduction axes: (0,) or (0, 2, 3)
        self._shape: tuple[int, ...] = (1, -1)  # broadcast shape of per-feature vectors
        self._xhat: np.ndarray | None = None  # normalised input of the last forward
        self._inv_std: np.ndarray | None = None  # (F,) 1 / sqrt(var + eps) of the last forward
        self._batch_stats = True  # whether the last forward used batch statistics

    def _build(self, input_shape, rng, init, dtype):
        if len(input_shape) == 1:
            self._axes, self._shape = (0,), (1, -1)
        elif len(input_shape) == 3:
            self._axes, self._shape = (0, 2, 3), (1, -1, 1, 1)
        else:
            raise ValueError(
                "batchnorm layer input: expected per-sample shape (features,) or "
                f"(channels, height, width), got {input_shape}"
            )
        features = input_shape[0]
        self.gamma = Parameter(np.ones(features, dtype=dtype))
        self.beta = Parameter(np.zeros(features, dtype=dtype))
        self.params = {"gamma": self.gamma, "beta": self.beta}
        self.buffers = {
            "running_mean": np.zeros(features, dtype=dtype),
            "running_var": np.ones(features, dtype=dtype),
        }
        return input_shape

    def _forward(self, x):
        shape = self._shape
        if self.training:
            count = x.size // x.shape[1]  # values per feature
            mean = np.add.reduce(x, axis=self._axes) / count  # (F,)
            centred = x - mean.reshape(shape)
            var = np.add.reduce(centred * centred, axis=self._axes) / count  # (F,) biased
            self._update_running(mean, var, count)
            self.batch_mean, self.batch_var = mean, var
        else:
            mean, var = self.buffers["running_mean"], self.buffers["running_var"]
            centred = x - mean.reshape(shape)
        inv_std = 1.0 / np.sqrt(var + self.eps)  # (F,)
        xhat = centred
        xhat *= inv_std.reshape(shape)
        self._xhat, self._inv_std, self._batch_stats = xhat, inv_std, self.training
        z = xhat * self.gamma.data.reshape(shape)
        z += self.beta.data.reshape(shape)
        return z

    def _update_running(self, mean: np.ndarray, var: np.ndarray, count: int) -> None:
        """running = (1 - momentum) running + momentum batch, in place (unbiased variance)."""
        momentum = self.momentum
        unbiased = var * (count / (count - 1)) if count > 1 else var
        running_mean, running_var = self.buffers["running_mean"], self.buffers["running_var"]
        running_mean *= 1.0 - momentum
        running_mean += momentum * mean
        running_var *= 1.0 - momentum
        running_var += momentum * unbiased

    def _backward(self, grad_pre):
        shape, axes, xhat = self._shape, self._axes, self._xhat
        grad_beta = np.add.reduce(grad_pre, axis=axes)  # (F,)
        grad_gamma = np.add.reduce(grad_pre * xhat, axis=axes)  # (F,)
        self.gamma.grad, self.beta.grad = grad_gamma, grad_beta
        if not self.needs_input_grad:
            return None
        scale = (self.gamma.data * self._inv_std).reshape(shape)
        if not self._batch_stats:
            return grad_pre * scale
        count = grad_pre.size // grad_pre.shape[1]
        # dL/dx = gamma inv_std (g - mean(g) - xhat mean(g xhat)), means over the batch axes
        grad_in = xhat * (grad_gamma / count).reshape(shape)
        np.subtract(grad_pre, grad_in, out=grad_in)
        grad_in -= (grad_beta / count).reshape(shape)
        grad_in *= scale
        return grad_in

    def flops_per_sample(self) -> int:
        return 4 * math.prod(self.input_shape) if self.input_shape else 0


class Dropout(Layer):
    """Inverted dropout: in training zero each value with probability `rate`, scale the rest by
    1 / (1 - rate); eval mode is the identity. The mask comes from the generator given to build."""

    kind = "dropout"

    def __init__(self, rate: float = 0.5) -> None:
        super().__init__("linear")
        self.rate = float(rate)  # probability of zeroing a value, below 1
        self.rng: np.random.Generator | None = None  # kept from build(): masks are deterministic
        self.mask: np.ndarray | None = None  # scaled keep-mask of the last training forward

    def _build(self, input_shape, rng, init, dtype):
        self.rng = rng
        return input_shape

    def _forward(self, x):
        if not self.training or self.rate == 0.0:
            self.mask = None
            return x
        draws = self.rng.random(x.shape, dtype=x.dtype)  # U[0, 1)
        mask = (draws >= self.rate).astype(x.dtype)
        mask *= 1.0 / (1.0 - self.rate)
        self.mask = mask
        return x * mask

    def _backward(self, grad_pre):
        if self.mask is None:
            return grad_pre
        return grad_pre * self.mask

    def flops_per_sample(self) -> int:
        return math.prod(self.input_shape) if self.input_shape else 0
