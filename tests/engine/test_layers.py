"""Layer behaviour: shapes, init, caches, modes, running statistics, errors and PyTorch twins.

Gradients themselves are checked by finite differences in test_gradients.py; here the values are
checked against hand computations and, when PyTorch is installed, against torch with identical
weights (float64).
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable

import numpy as np
import pytest

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
    Parameter,
    init_weights,
)
from engine.losses import LOSS_NAMES, get_loss

INIT = types.SimpleNamespace(kind="xavier", std=0.1, range=0.1)  # stand-in for InitConfig


def built(layer: Layer, input_shape: tuple[int, ...], dtype=np.float64, seed: int = 0) -> Layer:
    layer.build(input_shape, np.random.default_rng(seed), INIT, dtype)
    return layer


@pytest.fixture
def torch():  # type: ignore[no-untyped-def]
    """PyTorch when installed (twins are skipped without it)."""
    return pytest.importorskip("torch")


# ---------------------------------------------------------------------------------- shapes
def test_dense_build_shapes_and_counts() -> None:
    layer = built(Dense(5, "relu"), (3,))
    assert layer.output_shape == (5,)
    assert layer.params["W"].data.shape == (3, 5)
    assert layer.params["b"].data.shape == (5,)
    assert not layer.params["b"].data.any()  # biases start at zero
    assert layer.params["W"] is layer.W and layer.params["b"] is layer.b
    assert layer.param_count() == 3 * 5 + 5
    assert layer.flops_per_sample() >= 3 * 5
    assert layer.kind == "dense" and layer.activation.name == "relu"


@pytest.mark.parametrize(
    ("height", "width", "kernel", "stride", "padding", "expected"),
    [
        (28, 28, 3, 1, "valid", (26, 26)),
        (28, 28, 3, 1, "same", (28, 28)),
        (7, 9, 3, 2, "valid", (3, 4)),
        (7, 9, 3, 2, "same", (4, 5)),  # ceil(H / stride)
        (6, 6, 2, 1, "same", (6, 6)),
        (5, 5, 5, 1, "valid", (1, 1)),
        (5, 6, 4, 3, "same", (2, 2)),
    ],
)
def test_conv2d_output_shapes(
    height: int, width: int, kernel: int, stride: int, padding: str, expected: tuple[int, int]
) -> None:
    layer = built(Conv2D(4, kernel, stride, padding, "relu"), (3, height, width))
    assert layer.output_shape == (4, *expected)
    assert layer.params["W"].data.shape == (4, 3, kernel, kernel)
    assert layer.param_count() == 4 * 3 * kernel * kernel + 4
    out = layer.forward(np.random.default_rng(0).normal(size=(2, 3, height, width)))
    assert out.shape == (2, 4, *expected)
    assert layer.flops_per_sample() >= 4 * 3 * kernel * kernel * math.prod(expected)


@pytest.mark.parametrize("pool", [MaxPool2D, AvgPool2D])
def test_pool_output_shape_floors(pool: type) -> None:
    layer = built(pool(2), (3, 7, 6))
    assert layer.output_shape == (3, 3, 3)
    assert built(pool(2), (1, 4, 5)).output_shape == (1, 2, 2)  # ints: 5 // 2, not 2.5
    assert layer.params == {} and layer.param_count() == 0
    assert layer.forward(np.zeros((2, 3, 7, 6))).shape == (2, 3, 3, 3)


def test_flatten_is_c_order() -> None:
    layer = built(Flatten(), (2, 3, 4))
    assert layer.output_shape == (24,)
    x = np.arange(2 * 24, dtype=np.float64).reshape(2, 2, 3, 4)
    np.testing.assert_array_equal(layer.forward(x), x.reshape(2, 24))
    np.testing.assert_array_equal(layer.backward(x.reshape(2, 24)), x)


@pytest.mark.parametrize(
    ("layer", "input_shape", "message"),
    [
        (Dense(3), (2, 4, 4), "features"),
        (Conv2D(2, 3), (16,), "channels"),
        (Conv2D(2, 5), (1, 4, 4), "kernel_size"),
        (MaxPool2D(3), (1, 2, 5), "size"),
        (AvgPool2D(2), (8,), "channels"),
        (BatchNorm(), (2, 3), "features"),
    ],
)
def test_build_rejects_shapes_it_cannot_take(
    layer: Layer, input_shape: tuple[int, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        built(layer, input_shape)


def test_an_unknown_activation_name_is_refused() -> None:
    # the layers trust their numeric arguments (their limits are the config's, refused with the
    # field's name in tests/engine/test_config_limits.py); a name is looked up, and a name that
    # is not there is an error
    with pytest.raises(ValueError, match="expected"):
        Dense(3, "swish")


@pytest.mark.parametrize(
    ("make", "input_shape", "message"),
    [
        (
            lambda: Dense(3),
            (2, 4),
            "dense layer input: expected per-sample shape (features,) (add a flatten layer), "
            "got (2, 4)",
        ),
        (
            lambda: Conv2D(2, 3),
            (16,),
            "conv2d layer input: expected per-sample shape (channels, height, width), got (16,)",
        ),
        (  # too short: one side is enough
            lambda: Conv2D(2, 3),
            (1, 2, 5),
            "conv2d input: expected height and width >= kernel_size 3, got 2x5",
        ),
        (
            lambda: MaxPool2D(2),
            (8,),
            "maxpool2d layer input: expected per-sample shape (channels, height, width), got (8,)",
        ),
        (
            lambda: BatchNorm(),
            (2, 3),
            "batchnorm layer input: expected per-sample shape (features,) or "
            "(channels, height, width), got (2, 3)",
        ),
    ],
    ids=["dense", "conv-rank", "conv-size", "pool-rank", "batchnorm"],
)
def test_build_errors_say_what_shape_was_expected(
    make: Callable[[], Layer], input_shape: tuple[int, ...], message: str
) -> None:
    with pytest.raises(ValueError) as caught:
        built(make(), input_shape)
    assert str(caught.value) == message


def test_constructor_defaults_and_an_activation_instance() -> None:
    conv, pool, dropout, batchnorm = Conv2D(4), MaxPool2D(), Dropout(), BatchNorm()
    assert (conv.kernel_size, conv.stride, conv.padding, conv.activation.name) == (
        3,
        1,
        "valid",
        "relu",
    )
    assert pool.size == 2 and AvgPool2D().size == 2
    assert dropout.rate == 0.5  # torch.nn.Dropout's p
    assert (batchnorm.momentum, batchnorm.eps) == (0.1, 1e-5)  # torch.nn.BatchNorm1d's
    tanh = get_activation("tanh")
    assert Dense(3, tanh).activation is tanh


def test_layers_print_their_type_name_and_activation() -> None:
    dense = Dense(3, "relu")
    assert repr(dense) == "Dense(name='', activation='relu')"
    dense.name = "2"
    assert repr(dense) == "Dense(name='2', activation='relu')"
    assert repr(Flatten()) == "Flatten(name='')"  # linear: no activation shown


def test_train_and_eval_switch_the_mode() -> None:
    layer = Dropout(0.5)
    assert layer.eval() is layer and layer.training is False
    assert layer.train() is layer and layer.training is True
    assert layer.train(False).training is False


# ---------------------------------------------------------------------------------- flops
@pytest.mark.parametrize(
    ("make", "input_shape", "flops"),
    [
        (lambda: Dense(3, "linear"), (4,), 4 * 3),
        (lambda: Dense(3, "relu"), (4,), 4 * 3 + 3),  # + one activation per unit
        (
            lambda: Conv2D(2, 3, activation="linear"),
            (1, 4, 5),
            2 * 9 * 2 * 3,
        ),  # W.size per output pixel
        (lambda: Conv2D(2, 3), (1, 4, 5), 2 * 9 * 2 * 3 + 2 * 2 * 3),
        (lambda: MaxPool2D(2), (3, 4, 5), 3 * 4 * 5),
        (lambda: AvgPool2D(2), (3, 4, 5), 3 * 4 * 5),
        (lambda: BatchNorm(), (3, 4, 5), 4 * 3 * 4 * 5),
        (lambda: Dropout(0.5), (7,), 7),
        (lambda: Flatten(), (3, 4, 5), 0),
    ],
    ids=[
        "dense",
        "dense-relu",
        "conv",
        "conv-relu",
        "max",
        "avg",
        "batchnorm",
        "dropout",
        "flatten",
    ],
)
def test_flops_per_sample(
    make: Callable[[], Layer], input_shape: tuple[int, ...], flops: int
) -> None:
    layer = make()  # a fresh layer each run: the test builds it
    assert layer.flops_per_sample() == 0  # before build: nothing to count
    assert built(layer, input_shape).flops_per_sample() == flops


# ---------------------------------------------------------------------------------- init
def test_init_weights_kinds() -> None:
    rng = np.random.default_rng(0)
    shape, fan_in, fan_out = (400, 300), 400, 300

    def draw(kind: str, **extra: float) -> np.ndarray:
        init = types.SimpleNamespace(kind=kind, std=0.1, range=0.1)
        for key, value in extra.items():
            setattr(init, key, value)
        return init_weights(shape, fan_in, fan_out, init, rng, np.float64)

    bound = math.sqrt(6 / (fan_in + fan_out))
    xavier = draw("xavier")
    assert np.abs(xavier).max() <= bound
    assert xavier.std() == pytest.approx(bound / math.sqrt(3), rel=0.02)
    assert draw("he").std() == pytest.approx(math.sqrt(2 / fan_in), rel=0.02)
    assert draw("he").mean() == pytest.approx(0.0, abs=0.002)
    assert draw("normal", std=0.3).std() == pytest.approx(0.3, rel=0.02)
    uniform = draw("uniform", range=0.5)
    assert np.abs(uniform).max() <= 0.5 and uniform.std() == pytest.approx(0.5 / 3**0.5, rel=0.02)
    assert not draw("zeros").any()
    assert init_weights((3, 2), 3, 2, "he", rng, np.float32).dtype == np.float32
    with pytest.raises(ValueError, match="xavier"):
        init_weights((2, 2), 2, 2, types.SimpleNamespace(kind="orthogonal"), rng, np.float64)


def test_init_takes_a_kind_name_or_falls_back_to_the_defaults() -> None:
    def draw(init, seed: int = 4, dtype=np.float64) -> np.ndarray:  # type: ignore[no-untyped-def]
        return init_weights((3, 2), 3, 2, init, np.random.default_rng(seed), dtype)

    np.testing.assert_array_equal(draw("he"), draw(types.SimpleNamespace(kind="he")))
    bound = math.sqrt(6 / (3 + 2))  # no kind at all: xavier
    np.testing.assert_array_equal(
        draw(types.SimpleNamespace()), np.random.default_rng(4).uniform(-bound, bound, (3, 2))
    )
    np.testing.assert_array_equal(  # no std: 0.1
        draw(types.SimpleNamespace(kind="normal")),
        np.random.default_rng(4).normal(0.0, 0.1, (3, 2)),
    )
    np.testing.assert_array_equal(  # no range: 0.1
        draw(types.SimpleNamespace(kind="uniform")),
        np.random.default_rng(4).uniform(-0.1, 0.1, (3, 2)),
    )
    zeros = draw("zeros", dtype=np.float32)
    assert zeros.dtype == np.float32 and not zeros.any()
    with pytest.raises(ValueError) as caught:
        draw("orthogonal")
    assert str(caught.value) == (
        "unknown init kind 'orthogonal': expected one of xavier, he, normal, uniform, zeros"
    )


def test_init_is_deterministic_per_seed_and_conv_uses_kernel_fans() -> None:
    he = types.SimpleNamespace(kind="he", std=0.1, range=0.1)
    first = Conv2D(64, 3)
    first.build((32, 8, 8), np.random.default_rng(5), he, np.float64)
    second = Conv2D(64, 3)
    second.build((32, 8, 8), np.random.default_rng(5), he, np.float64)
    np.testing.assert_array_equal(first.W.data, second.W.data)
    assert first.W.data.std() == pytest.approx(math.sqrt(2 / (32 * 9)), rel=0.03)
    xavier = Conv2D(16, 3)
    xavier.build((8, 8, 8), np.random.default_rng(5), INIT, np.float64)
    assert np.abs(xavier.W.data).max() <= math.sqrt(6 / (8 * 9 + 16 * 9))


def test_parameter_holds_data_and_a_zero_grad() -> None:
    param = Parameter(np.ones((2, 3), dtype=np.float32))
    assert param.grad.shape == (2, 3) and param.grad.dtype == np.float32 and not param.grad.any()
    with pytest.raises(AttributeError):
        param.other = 1  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------- caches
def test_forward_and_backward_cache_every_array() -> None:
    rng = np.random.default_rng(1)
    layer = built(Dense(3, "tanh"), (2,))
    for attr in ("input", "preactivation", "output", "grad_output", "grad_preactivation"):
        assert getattr(layer, attr) is None
    x = rng.normal(size=(4, 2))
    out = layer.forward(x)
    assert layer.input is x and layer.output is out
    np.testing.assert_allclose(layer.preactivation, x @ layer.W.data + layer.b.data)
    np.testing.assert_allclose(out, np.tanh(layer.preactivation))
    grad_out = rng.normal(size=(4, 3))
    grad_in = layer.backward(grad_out)
    assert layer.grad_output is grad_out
    np.testing.assert_allclose(layer.grad_preactivation, grad_out * (1 - out**2))
    np.testing.assert_allclose(grad_in, layer.grad_preactivation @ layer.W.data.T)
    layer.backward_preactivation(grad_out)
    assert layer.grad_output is None and layer.grad_preactivation is grad_out


def test_param_grads_are_overwritten_not_accumulated() -> None:
    rng = np.random.default_rng(2)
    layer = built(Conv2D(2, 3, padding="same", activation="tanh"), (1, 4, 4))
    x, grad_out = rng.normal(size=(2, 1, 4, 4)), rng.normal(size=(2, 2, 4, 4))
    layer.forward(x)
    layer.backward(grad_out)
    first = {key: p.grad.copy() for key, p in layer.params.items()}
    layer.forward(x)
    layer.backward(grad_out)
    for key, param in layer.params.items():
        np.testing.assert_array_equal(param.grad, first[key])


@pytest.mark.parametrize(
    ("make_layer", "input_shape"),
    [  # factories: the test switches needs_input_grad off, so each run gets a fresh layer
        (lambda: Dense(3), (4,)),
        (lambda: Conv2D(2, 3), (2, 5, 5)),
        (lambda: Conv2D(2, 3, stride=2), (2, 5, 5)),
        (lambda: BatchNorm(), (3,)),
    ],
    ids=["dense", "conv", "conv-stride2", "batchnorm"],
)
def test_without_input_grad_backward_returns_none_but_fills_param_grads(
    make_layer: Callable[[], Layer], input_shape: tuple[int, ...]
) -> None:
    layer = make_layer()
    rng = np.random.default_rng(3)
    built(layer, input_shape)
    x = rng.normal(size=(3, *input_shape))
    grad_out = rng.normal(size=layer.forward(x).shape)
    expected_in = layer.backward(grad_out)
    expected = {key: p.grad.copy() for key, p in layer.params.items()}
    layer.needs_input_grad = False
    layer.forward(x)
    assert expected_in is not None and layer.backward(grad_out) is None
    for key, param in layer.params.items():
        np.testing.assert_allclose(param.grad, expected[key])


# ---------------------------------------------------------------------------------- pools
def test_maxpool_routes_ties_to_the_first_maximum() -> None:
    layer = built(MaxPool2D(2), (1, 2, 4))
    x = np.array([[[[1.0, 3.0, 2.0, 2.0], [3.0, 0.0, 2.0, 2.0]]]])
    np.testing.assert_array_equal(layer.forward(x), [[[[3.0, 2.0]]]])
    grad_in = layer.backward(np.array([[[[10.0, 20.0]]]]))
    np.testing.assert_array_equal(grad_in, [[[[0.0, 10.0, 20.0, 0.0], [0.0, 0.0, 0.0, 0.0]]]])


def test_pools_leave_cropped_rows_and_columns_with_zero_gradient() -> None:
    rng = np.random.default_rng(4)
    for pool in (MaxPool2D(2), AvgPool2D(2)):
        built(pool, (1, 5, 5))
        pool.forward(rng.normal(size=(1, 1, 5, 5)))
        grad_in = pool.backward(np.ones((1, 1, 2, 2)))
        assert not grad_in[:, :, 4, :].any() and not grad_in[:, :, :, 4].any()
        assert grad_in.sum() == pytest.approx(4.0)


def test_avgpool_values() -> None:
    layer = built(AvgPool2D(2), (1, 2, 2))
    np.testing.assert_allclose(layer.forward(np.array([[[[1.0, 2.0], [3.0, 6.0]]]])), [[[[3.0]]]])
    np.testing.assert_allclose(layer.backward(np.array([[[[4.0]]]])), np.ones((1, 1, 2, 2)))


# ---------------------------------------------------------------------------------- batchnorm
@pytest.mark.parametrize("input_shape", [(3,), (2, 3, 2)])
def test_batchnorm_training_normalises_and_updates_running_stats(
    input_shape: tuple[int, ...],
) -> None:
    rng = np.random.default_rng(5)
    layer = built(BatchNorm(momentum=0.2, eps=1e-5), input_shape)
    assert layer.kind == "batchnorm" and set(layer.params) == {"gamma", "beta"}
    assert set(layer.buffers) == {"running_mean", "running_var"}
    axes = (0,) if len(input_shape) == 1 else (0, 2, 3)
    x = rng.normal(2.0, 3.0, size=(6, *input_shape))
    out = layer.forward(x)
    np.testing.assert_allclose(out.mean(axis=axes), 0.0, atol=1e-12)
    np.testing.assert_allclose(out.var(axis=axes), 1.0, rtol=1e-4)  # var / (var + eps)
    mean, var = x.mean(axis=axes), x.var(axis=axes)
    np.testing.assert_allclose(layer.batch_mean, mean)
    np.testing.assert_allclose(layer.batch_var, var)
    count = x.size // input_shape[0]
    np.testing.assert_allclose(layer.buffers["running_mean"], 0.8 * 0.0 + 0.2 * mean)
    np.testing.assert_allclose(
        layer.buffers["running_var"], 0.8 * 1.0 + 0.2 * var * count / (count - 1)
    )


@pytest.mark.parametrize("input_shape", [(3,), (2, 3, 2)])
def test_batchnorm_eval_uses_running_stats(input_shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(6)
    layer = built(BatchNorm(eps=1e-3), input_shape)
    features = input_shape[0]
    shape = (1, features) + (1,) * (len(input_shape) - 1)
    layer.buffers["running_mean"][...] = rng.normal(size=features)
    layer.buffers["running_var"][...] = rng.uniform(0.5, 2, size=features)
    layer.gamma.data[...] = rng.normal(size=features)
    layer.beta.data[...] = rng.normal(size=features)
    before = {key: value.copy() for key, value in layer.buffers.items()}
    x = rng.normal(size=(4, *input_shape))
    out = layer.eval().forward(x)
    expected = (x - before["running_mean"].reshape(shape)) / np.sqrt(
        before["running_var"].reshape(shape) + 1e-3
    ) * layer.gamma.data.reshape(shape) + layer.beta.data.reshape(shape)
    np.testing.assert_allclose(out, expected)
    for key, value in before.items():
        np.testing.assert_array_equal(layer.buffers[key], value)  # eval never updates them


def test_batchnorm_momentum_at_its_ends_and_two_values_per_feature() -> None:
    x = np.array([[1.0, 10.0], [3.0, 20.0]])  # two values per feature: unbiased var = 2 * biased
    # momentum 0 is past the config's limit (a run never has it), but the formula's end holds
    still = built(BatchNorm(momentum=0.0), (2,))
    still.forward(x)
    np.testing.assert_array_equal(still.buffers["running_mean"], [0.0, 0.0])  # never moves
    np.testing.assert_array_equal(still.buffers["running_var"], [1.0, 1.0])
    follows = built(BatchNorm(momentum=1.0), (2,))
    follows.forward(x)
    np.testing.assert_array_equal(follows.buffers["running_mean"], [2.0, 15.0])  # the batch's
    np.testing.assert_array_equal(follows.buffers["running_var"], [2.0, 50.0])  # (1 + 1) / 1


def test_batchnorm_single_value_per_feature_stays_finite() -> None:
    layer = built(BatchNorm(), (3,))
    out = layer.forward(np.array([[1.0, 2.0, 3.0]]))
    assert np.isfinite(out).all() and np.isfinite(layer.buffers["running_var"]).all()


# ---------------------------------------------------------------------------------- dropout
def test_dropout_training_masks_and_scales() -> None:
    layer = built(Dropout(0.25), (1000,), seed=7)
    x = np.ones((20, 1000))
    out = layer.forward(x)
    kept = out != 0
    assert 0.22 < 1 - kept.mean() < 0.28
    np.testing.assert_allclose(out[kept], 1 / 0.75)
    grad = layer.backward(np.full_like(x, 2.0))
    np.testing.assert_allclose(grad, 2.0 * out)
    assert not np.array_equal(layer.forward(x), out)  # a fresh mask per step


def test_dropout_is_deterministic_per_seed_and_identity_in_eval() -> None:
    x = np.random.default_rng(8).normal(size=(4, 10))
    first = built(Dropout(0.5), (10,), seed=3).forward(x)
    second = built(Dropout(0.5), (10,), seed=3).forward(x)
    np.testing.assert_array_equal(first, second)
    layer = built(Dropout(0.5), (10,)).eval()
    assert layer.forward(x) is x and layer.mask is None
    assert layer.backward(x) is x
    assert built(Dropout(0.0), (10,)).forward(x) is x  # rate 1 is past the config's limit


def test_dropout_draws_its_mask_in_the_input_dtype_and_keeps_a_draw_equal_to_the_rate() -> None:
    x = np.ones((2, 6), dtype=np.float32)
    layer = built(Dropout(0.5), (6,), dtype=np.float32, seed=9)
    draws = np.random.default_rng(9).random((2, 6), dtype=np.float32)  # float32: half the bits
    np.testing.assert_array_equal(layer.forward(x), (draws >= 0.5) * np.float32(2.0))

    class Exactly:  # a generator whose every draw is the rate itself
        def random(self, shape: tuple[int, ...], dtype: type) -> np.ndarray:
            return np.full(shape, 0.25, dtype=dtype)

    quarter = Dropout(0.25)
    quarter.rng = Exactly()  # type: ignore[assignment]
    np.testing.assert_array_equal(quarter.forward(x), np.full((2, 6), 1 / 0.75, dtype=np.float32))


# ---------------------------------------------------------------------------------- registries
def test_registries_name_the_allowed_values() -> None:
    assert ACTIVATION_NAMES == ("linear", "sigmoid", "tanh", "relu", "leaky_relu", "softmax")
    assert LOSS_NAMES == ("mse", "bce", "cross_entropy")
    assert get_activation("tanh") is get_activation("tanh")
    with pytest.raises(ValueError, match="leaky_relu"):
        get_activation("gelu")
    with pytest.raises(
        ValueError, match="one of linear, sigmoid, tanh, relu, leaky_relu, softmax$"
    ):
        get_activation("gelu")
    with pytest.raises(ValueError, match="cross_entropy"):
        get_loss("hinge")
    with pytest.raises(ValueError, match="expected one of mse, bce, cross_entropy$"):
        get_loss("hinge")


def test_cross_entropy_rejects_bad_labels() -> None:
    loss = get_loss("cross_entropy")
    logits = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"\[0, 3\]"):
        loss(logits, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match=r"\(3,\)"):
        loss(logits, np.array([0, 1]))
    with pytest.raises(ValueError, match="integer"):
        loss(logits, np.array([0.5, 1.0, 2.0]))
    value, _ = loss(logits, np.array([0.0, 1.0, 3.0]))  # integral floats are accepted
    assert value == pytest.approx(math.log(4))


def test_cross_entropy_takes_a_column_of_labels_and_refuses_other_layouts() -> None:
    loss = get_loss("cross_entropy")
    logits = np.random.default_rng(12).normal(size=(3, 4))
    value, grad = loss(logits, np.array([2, 0, 3]))
    column_value, column_grad = loss(logits, np.array([[2], [0], [3]]))  # (batch, 1)
    assert column_value == value
    np.testing.assert_array_equal(column_grad, grad)
    for bad in (np.array([[2, 0, 3]]), np.zeros((3, 2), dtype=int)):  # a row; two per sample
        with pytest.raises(ValueError, match=r"cross_entropy target shape: expected \(3,\)"):
            loss(logits, bad)
    with pytest.raises(ValueError, match=r"cross_entropy logits: expected \(batch, classes\)"):
        loss(logits[0], np.array([2]))


def test_mse_rejects_a_target_of_another_shape() -> None:
    with pytest.raises(ValueError, match=r"expected \(4, 2\)"):
        get_loss("mse")(np.zeros((4, 2)), np.zeros((4, 3)))
    value, grad = get_loss("mse")(np.ones((4, 1)), np.zeros(4))  # (batch,) for (batch, 1)
    assert value == 1.0 and grad.shape == (4, 1)


# ---------------------------------------------------------------------------------- torch twins
def test_activations_match_torch(torch) -> None:  # type: ignore[no-untyped-def]
    z = np.random.default_rng(9).normal(0.0, 3.0, size=(5, 4))
    twins = {
        "linear": lambda t: t,
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "relu": torch.relu,
        "leaky_relu": torch.nn.functional.leaky_relu,  # slope 0.01
        "softmax": lambda t: torch.softmax(t, dim=1),
    }
    grad_out = np.random.default_rng(10).normal(size=z.shape)
    for name, twin in twins.items():
        act = get_activation(name)
        tz = torch.tensor(z, requires_grad=True)
        ta = twin(tz)
        (ta * torch.tensor(grad_out)).sum().backward()
        a = act.forward(z)
        np.testing.assert_allclose(a, ta.detach().numpy(), rtol=1e-12, atol=1e-15, err_msg=name)
        np.testing.assert_allclose(
            act.backward(z, a, grad_out), tz.grad.numpy(), rtol=1e-10, atol=1e-15, err_msg=name
        )


def test_losses_match_torch(torch) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(11)
    fn = torch.nn.functional
    pred, target = rng.normal(size=(6, 2)), rng.normal(size=(6, 2))
    probs, labels01 = rng.uniform(0.01, 0.99, size=(6, 1)), rng.integers(0, 2, (6, 1)) * 1.0
    logits, labels = rng.normal(size=(6, 3)), rng.integers(0, 3, size=6)
    cases = [
        ("mse", pred, target, lambda p: fn.mse_loss(p, torch.tensor(target))),
        ("bce", probs, labels01, lambda p: fn.binary_cross_entropy(p, torch.tensor(labels01))),
        ("cross_entropy", logits, labels, lambda p: fn.cross_entropy(p, torch.tensor(labels))),
    ]
    for name, p, t, twin in cases:
        value, grad = get_loss(name)(p, t)
        tp = torch.tensor(p, requires_grad=True)
        tvalue = twin(tp)
        tvalue.backward()
        assert value == pytest.approx(tvalue.item(), rel=1e-12), name
        np.testing.assert_allclose(grad, tp.grad.numpy(), rtol=1e-10, atol=1e-15, err_msg=name)


def _compare_with_twin(torch, layer: Layer, module, x: np.ndarray, pairs) -> None:  # type: ignore[no-untyped-def]
    """Forward values, dL/dx and param grads of `layer` vs torch `module` for L = sum(out * R)."""
    out = layer.forward(x)
    tx = torch.tensor(x, requires_grad=True)
    tout = module(tx)
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    weights = np.random.default_rng(12).normal(size=out.shape)
    (tout * torch.tensor(weights)).sum().backward()
    grad_in = layer.backward(weights)
    np.testing.assert_allclose(grad_in, tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    for ours, theirs, transform in pairs:
        np.testing.assert_allclose(
            ours.grad, transform(theirs.grad.numpy()), rtol=1e-10, atol=1e-12
        )


def test_dense_matches_torch_linear(torch) -> None:  # type: ignore[no-untyped-def]
    layer = built(Dense(4, "linear"), (3,))
    layer.b.data[...] = np.random.default_rng(13).normal(size=4)
    module = torch.nn.Linear(3, 4, dtype=torch.float64)
    with torch.no_grad():
        module.weight.copy_(torch.tensor(layer.W.data.T))  # torch stores (out, in)
        module.bias.copy_(torch.tensor(layer.b.data))
    x = np.random.default_rng(14).normal(size=(5, 3))
    _compare_with_twin(
        torch,
        layer,
        module,
        x,
        [(layer.W, module.weight, np.transpose), (layer.b, module.bias, np.asarray)],
    )


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize(
    ("kernel", "stride", "padding"),
    [(3, 1, "valid"), (3, 1, "same"), (2, 1, "same"), (3, 2, "valid"), (5, 2, "same")],
)
def test_conv2d_matches_torch(torch, kernel: int, stride: int, padding: str) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(15)
    layer = built(Conv2D(4, kernel, stride, padding, "linear"), (3, 9, 8))
    layer.b.data[...] = rng.normal(size=4)
    torch_padding = "same" if padding == "same" and stride == 1 else 0
    conv = torch.nn.Conv2d(3, 4, kernel, stride=stride, padding=torch_padding, dtype=torch.float64)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor(layer.W.data))
        conv.bias.copy_(torch.tensor(layer.b.data))
    module = conv
    if padding == "same" and stride > 1:  # torch has no "same" here: pad as the contract says
        low = (kernel - 1) // 2
        pad = (low, kernel - 1 - low, low, kernel - 1 - low)

        def module(t):  # type: ignore[no-untyped-def]
            return conv(torch.nn.functional.pad(t, pad))

    x = rng.normal(size=(2, 3, 9, 8))
    pairs = [(layer.W, conv.weight, np.asarray), (layer.b, conv.bias, np.asarray)]
    _compare_with_twin(torch, layer, module, x, pairs)


@pytest.mark.parametrize("pool", ["max", "avg"])
def test_pools_match_torch(torch, pool: str) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(16)
    layer = built(MaxPool2D(2) if pool == "max" else AvgPool2D(2), (3, 7, 6))
    module = torch.nn.MaxPool2d(2) if pool == "max" else torch.nn.AvgPool2d(2)
    x = np.round(rng.normal(size=(2, 3, 7, 6)), 1)  # rounding makes ties
    x[0, 0, :2, :2] = 0.5  # a window of four equal values
    _compare_with_twin(torch, layer, module, x, [])


@pytest.mark.parametrize("input_shape", [(4,), (3, 4, 5)])
def test_batchnorm_matches_torch(torch, input_shape: tuple[int, ...]) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(17)
    features = input_shape[0]
    layer = built(BatchNorm(momentum=0.1, eps=1e-5), input_shape)
    twin_class = torch.nn.BatchNorm1d if len(input_shape) == 1 else torch.nn.BatchNorm2d
    module = twin_class(features, momentum=0.1, eps=1e-5, dtype=torch.float64)
    layer.gamma.data[...] = rng.normal(1.0, 0.3, size=features)
    layer.beta.data[...] = rng.normal(size=features)
    with torch.no_grad():
        module.weight.copy_(torch.tensor(layer.gamma.data))
        module.bias.copy_(torch.tensor(layer.beta.data))
    for step in range(3):
        x = rng.normal(step, 2.0, size=(6, *input_shape))
        module.zero_grad()
        _compare_with_twin(
            torch,
            layer,
            module,
            x,
            [(layer.gamma, module.weight, np.asarray), (layer.beta, module.bias, np.asarray)],
        )
    np.testing.assert_allclose(layer.buffers["running_mean"], module.running_mean.numpy())
    np.testing.assert_allclose(layer.buffers["running_var"], module.running_var.numpy())
    layer.eval()
    module.eval()
    module.zero_grad()
    x = rng.normal(size=(5, *input_shape))
    _compare_with_twin(
        torch,
        layer,
        module,
        x,
        [(layer.gamma, module.weight, np.asarray), (layer.beta, module.bias, np.asarray)],
    )
