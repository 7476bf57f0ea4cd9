"""Per-layer statistics (engine/stats.py) against hand computations on small fixed inputs: dead
and saturated fractions, activation mean and std, gradient, weight and update norms, batch-norm
batch statistics and histograms. The trainer's reports carry these numbers to every chart, so
each one is checked by value, not by its presence."""

from __future__ import annotations

import math
import types

import numpy as np
import pytest

from engine.activations import get_activation
from engine.layers import BatchNorm, Conv2D, Dense, Layer
from engine.stats import activation_statistics, histogram, layer_histograms, layer_statistics

INIT = types.SimpleNamespace(kind="xavier", std=0.1, range=0.1)  # stand-in for InitConfig


def built(layer: Layer, input_shape: tuple[int, ...]) -> Layer:
    layer.build(input_shape, np.random.default_rng(0), INIT, np.float64)
    return layer


def dense(activation: str, W: list[list[float]], b: list[float]) -> Dense:
    """A Dense layer with the given weights (fan_in, units) and biases."""
    layer = built(Dense(len(b), activation), (len(W),))
    layer.params["W"].data[...] = W
    layer.params["b"].data[...] = b
    return layer  # type: ignore[return-value]


# ----------------------------------------------------------------------------- dead ReLU units


def test_dead_fraction_counts_units_zero_for_every_sample() -> None:
    x = np.array([[1.0, 2.0], [-1.0, 0.5], [3.0, -1.0]])  # (3 samples, 2 inputs)
    # unit 0: z = x1 -> [1, -1, 3]: zero for one sample only, alive
    # unit 1: z = -1 for every sample: dead
    # unit 2: z = -x1 - x2 - 10 < 0 for every sample: dead
    # unit 3: z = x2 -> [2, 0.5, -1]: alive
    layer = dense("relu", [[1.0, 0.0, -1.0, 0.0], [0.0, 0.0, -1.0, 1.0]], [0.0, -1.0, -10.0, 0.0])
    out = layer.forward(x)
    np.testing.assert_array_equal(out, [[1, 0, 0, 2], [0, 0, 0, 0.5], [3, 0, 0, 0]])
    got = activation_statistics(layer)
    assert got["dead_fraction"] == 0.5
    assert got["saturated_fraction"] == 0.0
    # the 12 outputs sum to 6.5 and their squares to 14.25
    assert got["activation_mean"] == pytest.approx(6.5 / 12, rel=1e-12)
    assert got["activation_std"] == pytest.approx(
        math.sqrt(14.25 / 12 - (6.5 / 12) ** 2), rel=1e-12
    )


def test_no_unit_is_dead_while_one_sample_keeps_it_alive() -> None:
    x = np.array([[-1.0], [-2.0], [0.5]])
    layer = dense("relu", [[1.0, -1.0]], [0.0, 0.0])  # unit 0 alive on the last sample only
    layer.forward(x)
    assert activation_statistics(layer)["dead_fraction"] == 0.0
    layer.forward(x[:2])  # without that sample, unit 0 is dead
    assert activation_statistics(layer)["dead_fraction"] == 0.5


def test_a_conv_channel_is_dead_when_zero_at_every_position_of_every_sample() -> None:
    layer = built(Conv2D(3, kernel_size=1, activation="relu"), (1, 2, 2))
    # 1x1 filters: channel 0 = -x (alive through one negative pixel), channel 1 = -1 (dead),
    # channel 2 = x (alive)
    layer.params["W"].data[...] = np.array([-1.0, 0.0, 1.0]).reshape(3, 1, 1, 1)
    layer.params["b"].data[...] = [0.0, -1.0, 0.0]
    x = np.ones((2, 1, 2, 2))  # (batch, channels, h, w)
    x[1, 0, 1, 0] = -0.5
    layer.forward(x)
    got = activation_statistics(layer)
    assert got["dead_fraction"] == pytest.approx(1 / 3, rel=1e-12)
    # outputs: channel 0 holds one 0.5, channel 2 holds seven 1s: 7.5 over 24 values
    assert got["activation_mean"] == pytest.approx(7.5 / 24, rel=1e-12)
    assert got["activation_std"] == pytest.approx(math.sqrt(7.25 / 24 - (7.5 / 24) ** 2), rel=1e-12)


def test_conv_channels_are_not_mixed_across_samples() -> None:
    # channel 0 is alive in sample 1 only, channel 2 in sample 0 only, channel 1 never: a
    # grouping that mixed samples and channels would see two dead groups instead of one
    layer = built(Conv2D(3, kernel_size=1, activation="relu"), (1, 1, 2))
    layer.params["W"].data[...] = np.array([-1.0, 0.0, 1.0]).reshape(3, 1, 1, 1)
    layer.params["b"].data[...] = [0.0, -1.0, 0.0]
    x = np.array([[[[1.0, 2.0]]], [[[-1.0, -2.0]]]])  # (2 samples, 1 channel, 1, 2)
    out = layer.forward(x)
    np.testing.assert_array_equal(
        out[:, :, 0, :], [[[0, 0], [0, 0], [1, 2]], [[1, 2], [0, 0], [0, 0]]]
    )
    assert activation_statistics(layer)["dead_fraction"] == pytest.approx(1 / 3, rel=1e-12)


def test_conv_channels_alive_only_in_the_first_row_are_alive() -> None:
    # both channels are non-zero only at the top pixel of a 3x2 map: none is dead. Grouping
    # that swapped samples with rows instead of with channels would mix the rows of the two
    # channels and see the bottom rows of both as one dead group
    layer = built(Conv2D(2, kernel_size=1, activation="relu"), (1, 3, 2))
    layer.params["W"].data[...] = np.array([1.0, 2.0]).reshape(2, 1, 1, 1)
    layer.params["b"].data[...] = [0.0, 0.0]
    x = np.zeros((2, 1, 3, 2))  # (2 samples, 1 channel, 3 rows, 2 columns)
    x[0, 0, 0, 0] = 1.0
    out = layer.forward(x)
    assert np.count_nonzero(out) == 2 and out[0, 0, 0, 0] == 1.0 and out[0, 1, 0, 0] == 2.0
    got = activation_statistics(layer)
    assert got["dead_fraction"] == 0.0
    assert got["activation_mean"] == pytest.approx(3.0 / 24, rel=1e-12)


def test_before_any_forward_the_activation_statistics_are_zero() -> None:
    layer = dense("relu", [[1.0]], [0.0])
    zero = {
        "activation_mean": 0.0,
        "activation_std": 0.0,
        "dead_fraction": 0.0,
        "saturated_fraction": 0.0,
    }
    assert activation_statistics(layer) == zero
    layer.forward(np.array([[-2.0]]))  # one sample of one unit, a dead one
    assert activation_statistics(layer) == {**zero, "dead_fraction": 1.0}
    layer.forward(np.array([[3.0]]))
    assert activation_statistics(layer) == {**zero, "activation_mean": 3.0}


# ----------------------------------------------------------------------------- saturation


def test_saturated_fraction_of_tanh_counts_outputs_beyond_0_99() -> None:
    # z = [[4, 1], [-4, -1], [0, 0]]: |tanh(4)| = 0.99933 is saturated, tanh(1) = 0.76 is not
    layer = dense("tanh", [[4.0, 1.0]], [0.0, 0.0])
    layer.forward(np.array([[1.0], [-1.0], [0.0]]))
    got = activation_statistics(layer)
    assert got["saturated_fraction"] == pytest.approx(2 / 6, rel=1e-12)
    assert got["dead_fraction"] == 0.0
    assert got["activation_mean"] == pytest.approx(0.0, abs=1e-15)  # odd function, symmetric z
    expected_std = math.sqrt((2 * math.tanh(4) ** 2 + 2 * math.tanh(1) ** 2) / 6)
    assert got["activation_std"] == pytest.approx(expected_std, rel=1e-12)


def test_saturated_fraction_of_sigmoid_counts_outputs_outside_0_01_to_0_99() -> None:
    # z = [[5, 3], [-5, -3], [0, 4.7]]: sigmoid(5) = 0.9933 and sigmoid(-5) = 0.0067 are
    # saturated, sigmoid(4.7) = 0.9910 too; sigmoid(3) = 0.9526 and sigmoid(0) = 0.5 are not
    layer = dense("sigmoid", [[5.0, 3.0]], [0.0, 0.0])
    layer.forward(np.array([[1.0], [-1.0], [0.0]]))
    assert activation_statistics(layer)["saturated_fraction"] == pytest.approx(2 / 6, rel=1e-12)
    layer.params["b"].data[...] = [0.0, 4.7]
    layer.forward(np.array([[1.0], [-1.0], [0.0]]))  # second unit: z = 7.7, 1.7, 4.7
    assert activation_statistics(layer)["saturated_fraction"] == pytest.approx(4 / 6, rel=1e-12)


@pytest.mark.parametrize("name", ["tanh", "sigmoid"])
def test_an_output_exactly_at_the_threshold_is_not_saturated(name: str) -> None:
    # SATURATION = 0.99: tanh beyond +-0.99, sigmoid beyond 0.99 (or below 0.01) is saturated
    outputs = np.array([[0.99, 0.995, 0.5, 0.9]])  # only 0.995 is beyond the threshold
    if name == "tanh":
        outputs = np.array([[0.99, -0.995, 0.0, -0.9]])
    layer = types.SimpleNamespace(output=outputs, activation=get_activation(name))
    assert activation_statistics(layer)["saturated_fraction"] == 0.25  # type: ignore[arg-type]


def test_linear_outputs_are_never_dead_or_saturated() -> None:
    layer = dense("linear", [[0.0, 10.0]], [0.0, 0.0])  # zeros everywhere, and huge values
    layer.forward(np.array([[1.0], [2.0]]))
    got = activation_statistics(layer)
    assert got["dead_fraction"] == 0.0 and got["saturated_fraction"] == 0.0
    assert got["activation_mean"] == pytest.approx(30 / 4, rel=1e-12)


# ----------------------------------------------------------------------------- gradients, update


def test_layer_statistics_by_hand() -> None:
    layer = dense("tanh", [[4.0, 1.0]], [0.0, 0.0])
    layer.forward(np.array([[1.0], [-1.0], [0.0]]))
    layer.params["W"].grad = np.array([[3.0, -4.0]])
    layer.params["b"].grad = np.array([0.0, 12.0])
    got = layer_statistics(layer, update_norm=0.5, clipped=True)
    assert got["name"] == layer.name and got["type"] == "dense"
    assert got["grad_norm"] == pytest.approx(13.0, rel=1e-15)  # sqrt(9 + 16 + 144)
    assert got["grad_mean_abs"] == pytest.approx(19.0 / 4, rel=1e-15)
    assert got["grad_max_abs"] == 12.0
    assert got["weight_norm"] == pytest.approx(math.sqrt(17.0), rel=1e-15)
    assert got["update_ratio"] == pytest.approx(0.5 / math.sqrt(17.0), rel=1e-15)
    assert got["clipped"] is True
    assert got["saturated_fraction"] == pytest.approx(2 / 6, rel=1e-12)  # activation stats too
    unmeasured = layer_statistics(layer)
    assert unmeasured["update_ratio"] is None and unmeasured["clipped"] is False


def test_update_ratio_of_all_zero_weights_is_zero() -> None:
    layer = dense("linear", [[0.0, 0.0]], [0.0, 0.0])  # weight norm 0: no ratio to divide
    layer.forward(np.array([[1.0]]))
    assert layer_statistics(layer, update_norm=0.25)["update_ratio"] == 0.0


def test_non_finite_statistics_stay_what_they_are() -> None:
    # they become None once, where a report leaves the engine (tests/engine/test_recorder.py)
    layer = dense("linear", [[1.0]], [0.0])
    layer.forward(np.array([[1.0]]))
    layer.params["W"].grad = np.array([[math.inf]])
    got = layer_statistics(layer)
    assert got["grad_norm"] == math.inf and got["grad_max_abs"] == math.inf
    assert got["weight_norm"] == 1.0


# ----------------------------------------------------------------------------- batch norm


def test_batchnorm_reports_the_batch_mean_and_biased_variance_per_feature() -> None:
    layer = built(BatchNorm(), (3,))
    x = np.array([[1.0, 0.0, 2.0], [3.0, 0.0, 2.0], [5.0, 4.0, 2.0], [7.0, 0.0, 2.0]])
    layer.forward(x)
    got = layer_statistics(layer)
    assert got["batch_mean"] == [4.0, 1.0, 2.0]
    assert got["batch_var"] == [5.0, 3.0, 0.0]  # (9 + 1 + 1 + 9) / 4, (1 + 1 + 9 + 1) / 4, 0


def test_batchnorm_reports_no_batch_statistics_before_a_training_batch() -> None:
    layer = built(BatchNorm(), (2,)).eval()
    layer.forward(np.array([[1.0, 2.0], [3.0, 4.0]]))  # eval: the running statistics are used
    got = layer_statistics(layer)
    assert "batch_mean" not in got and "batch_var" not in got


def test_batchnorm_over_images_reports_per_channel_statistics() -> None:
    layer = built(BatchNorm(), (2, 1, 2))
    x = np.array([[[[1.0, 3.0]], [[0.0, 0.0]]], [[[5.0, 7.0]], [[4.0, 0.0]]]])  # (2, 2, 1, 2)
    layer.forward(x)
    got = layer_statistics(layer)
    assert got["batch_mean"] == [4.0, 1.0]
    assert got["batch_var"] == [5.0, 3.0]


# ----------------------------------------------------------------------------- histograms


def test_histogram_counts_by_hand() -> None:
    got = histogram(np.array([0.0, 1.0, 1.0, 2.0, 4.0, math.nan]), bins=4)
    assert got["edges"] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert got["counts"] == [1, 2, 1, 1]  # the last bin holds its right edge; NaN is left out
    flat = histogram(np.full(3, 2.0), bins=2)
    assert flat == {"edges": [1.5, 2.0, 2.5], "counts": [0, 3]}


def test_histogram_of_nothing_finite_is_empty_and_of_one_value_is_one_count() -> None:
    assert histogram(np.array([math.nan, math.inf]), bins=3) == {
        "edges": [0.0, 0.0, 0.0, 0.0],
        "counts": [0, 0, 0],
    }
    assert histogram(np.array([[3.0]]), bins=2) == {"edges": [2.5, 3.0, 3.5], "counts": [0, 1]}


def test_layer_histograms_cover_every_parameter_with_the_bins_asked_for() -> None:
    layer = dense("tanh", [[1.0, 3.0]], [0.0, 2.0])
    layer.params["W"].grad = np.array([[-1.0, 1.0]])
    layer.params["b"].grad = np.array([1.0, 1.0])
    got = layer_histograms(layer, bins=2)
    assert got == {
        "grad": {"edges": [-1.0, 0.0, 1.0], "counts": [1, 3]},
        "weight": {"edges": [0.0, 1.5, 3.0], "counts": [2, 2]},
    }
