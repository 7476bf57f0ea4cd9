"""The trainer end to end: determinism, convergence, observation without side effects, faults."""

from __future__ import annotations

import copy
import io
import math
import re

import numpy as np
import pytest

from engine import recipes
from engine.config import ConfigError, parse_config
from engine.stats import LAYER_STAT_KEYS
from engine.trainer import Trainer, WeightsError


def tanh_net(data_name: str = "spiral", **overrides: object) -> dict:
    config = {
        "seed": 42,
        "dataset": {"name": data_name, "samples": 500, "noise": 0.1, "test_fraction": 0.3},
        "features": ["x1", "x2"],
        "layers": [
            {"type": "dense", "units": 8, "activation": "tanh"},
            {"type": "dense", "units": 8, "activation": "tanh"},
            {"type": "dense", "units": 1, "activation": "tanh"},
        ],
        "loss": "mse",
        "optimizer": {"name": "sgd", "learning_rate": 0.03, "momentum": 0.0},
        "batch_size": 10,
    }
    config.update(overrides)
    return config


def cnn_glyphs(**overrides: object) -> dict:
    config = recipes.cnn_glyphs()
    config.update(overrides)
    return config


# ----------------------------------------------------------------------------- determinism


def test_same_config_and_seed_give_bit_identical_weights() -> None:
    a, b = Trainer(tanh_net()), Trainer(tanh_net())
    a.train(500)
    b.train(500)
    for name, value in a.get_weights().items():
        assert np.array_equal(value, b.get_weights()[name]), name


def test_other_seed_gives_other_weights() -> None:
    a, b = Trainer(tanh_net()), Trainer(tanh_net(seed=43))
    assert not np.array_equal(a.get_weights()["0.W"], b.get_weights()["0.W"])


def test_reset_returns_to_the_first_weights_and_step_zero() -> None:
    trainer = Trainer(tanh_net())
    first = trainer.get_weights()
    trainer.train(50)
    trainer.reset()
    assert trainer.step == 0 and trainer.epoch == 0
    for name, value in first.items():
        assert np.array_equal(value, trainer.get_weights()[name])


def test_checkpoint_restore_continues_the_exact_trajectory() -> None:
    config = tanh_net(
        optimizer={"name": "adam", "learning_rate": 0.01},
        layers=[
            {"type": "dense", "units": 8, "activation": "relu"},
            {"type": "batchnorm"},
            {"type": "dropout", "rate": 0.2},
            {"type": "dense", "units": 1, "activation": "tanh"},
        ],
    )
    straight = Trainer(config)
    straight.train(300)
    resumed = Trainer(config)
    resumed.train(137)
    blob = resumed.checkpoint()
    fresh = Trainer(config)
    fresh.restore(blob)
    assert fresh.step == 137
    fresh.train(163)
    for name, value in straight.get_weights().items():
        assert np.array_equal(value, fresh.get_weights()[name]), name


# ----------------------------------------------------------------------------- convergence
# Step budgets (documented in the README): xor and circle 3,000 SGD steps at lr 0.03, batch 10;
# spiral 6,000 Adam steps at lr 0.02, batch 16, seed 1; the CNN 150 Adam steps of batch 32.


@pytest.mark.parametrize("dataset", ["xor", "circle"])
def test_two_class_datasets_reach_95_percent(dataset: str) -> None:
    trainer = Trainer(tanh_net(dataset))
    trainer.train(3000)
    assert trainer.evaluate()["test_accuracy"] >= 0.95


def test_spiral_reaches_90_percent_with_two_hidden_layers_of_8_tanh() -> None:
    # x1, x2 only; some seeds settle in a poorer minimum (seed 42 stays near 83 %), seed 1 does not
    config = tanh_net(seed=1, optimizer={"name": "adam", "learning_rate": 0.02}, batch_size=16)
    trainer = Trainer(config)
    trainer.train(6000)
    assert trainer.evaluate()["test_accuracy"] >= 0.90


def test_cnn_on_glyphs_reaches_90_percent() -> None:
    trainer = Trainer(cnn_glyphs())
    trainer.train(150)
    assert trainer.evaluate()["test_accuracy"] >= 0.90


def test_regression_on_sine_fits() -> None:
    config = tanh_net(
        "sine",
        layers=[
            {"type": "dense", "units": 16, "activation": "tanh"},
            {"type": "dense", "units": 1, "activation": "linear"},
        ],
        optimizer={"name": "adam", "learning_rate": 0.01},
    )
    config.pop("features")
    trainer = Trainer(config)
    before = trainer.evaluate()["test_loss"]
    trainer.train(3000)
    after = trainer.evaluate()
    assert after["accuracy"] is None
    assert after["test_loss"] < 0.1 * before


# ----------------------------------------------------------------------------- vanishing


def deep(activation: str, init: str) -> Trainer:
    layers = [{"type": "dense", "units": 16, "activation": activation} for _ in range(9)]
    layers.append({"type": "dense", "units": 1, "activation": "sigmoid"})
    return Trainer(
        tanh_net("circle", layers=layers, init=init, loss="bce", batch_size=64, dtype="float64")
    )


def first_last_ratio(trainer: Trainer) -> float:
    trainer.train(1)
    norms = [layer["grad_norm"] for layer in trainer.report().layers]
    return norms[0] / norms[-1]


def test_deep_sigmoid_gradients_vanish_towards_the_input() -> None:
    assert first_last_ratio(deep("sigmoid", "xavier")) < 1e-2


def test_relu_with_he_init_keeps_gradients_alive() -> None:
    assert first_last_ratio(deep("relu", "he")) > 1e-1


# ----------------------------------------------------------------------------- divergence


def test_divergence_stops_with_a_reason_and_keeps_finite_weights() -> None:
    config = tanh_net(
        layers=[
            {"type": "dense", "units": 32, "activation": "relu"},
            {"type": "dense", "units": 32, "activation": "relu"},
            {"type": "dense", "units": 1, "activation": "linear"},
        ],
        optimizer={"name": "sgd", "learning_rate": 50.0},
        init={"kind": "normal", "std": 1.0},
    )
    first = Trainer(config).get_weights()
    trainer = Trainer(config)
    reports: list = []
    assert trainer.train(10_000, on_report=reports.append) == "diverged"
    assert trainer.diverged and "step" in trainer.diverged
    assert "learning rate" in trainer.diverged
    assert trainer.step >= 1 and "last good weights (step 0)" in trainer.diverged
    for name, value in trainer.get_weights().items():
        assert np.all(np.isfinite(value)), name
        np.testing.assert_array_equal(value, first[name], err_msg=name)  # rolled back to step 0
    events = [e for r in reports for e in r.events if e["type"] == "diverged"]
    assert len(events) == 1 and events[0]["message"] == trainer.diverged
    # resuming after lowering the learning rate trains again
    trainer.update_hyperparameters({"learning_rate": 1e-4})
    assert trainer.train(20) == "steps"
    assert trainer.diverged is None


def test_divergence_rolls_back_to_the_last_good_weights_and_clears_the_optimizer() -> None:
    config = tanh_net(
        layers=[
            {"type": "dense", "units": 32, "activation": "relu"},
            {"type": "dense", "units": 32, "activation": "relu"},
            {"type": "dense", "units": 1, "activation": "linear"},
        ],
        optimizer={"name": "sgd", "learning_rate": 0.001, "momentum": 0.9},
    )
    trainer = Trainer(config)
    assert trainer.train(300) == "steps"  # past step 256, where good weights are kept
    trainer.update_hyperparameters({"learning_rate": 100.0})
    assert trainer.train(2000) == "diverged"
    match = re.search(r"last good weights \(step (\d+)\)", trainer.diverged or "")
    assert match is not None, trainer.diverged
    good_step = int(match.group(1))
    assert 0 < good_step < 300 < trainer.step  # the rollback goes back past finite steps
    twin = Trainer(config)  # the same run, stopped at the last good step
    twin.train(good_step)
    for name, value in twin.get_weights().items():
        np.testing.assert_array_equal(trainer.get_weights()[name], value, err_msg=name)
    assert trainer.optimizer.state_dict().keys() == {"step"}  # no momentum left over
    assert trainer.optimizer.state_dict()["step"] == 0


def test_reports_never_carry_nan() -> None:
    config = tanh_net(optimizer={"name": "sgd", "learning_rate": 100.0})
    trainer = Trainer(config)
    reports: list = []
    trainer.train(2000, on_report=reports.append)

    def walk(value: object) -> None:
        if isinstance(value, float):
            assert math.isfinite(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for report in reports:
        walk(report.to_dict())


# ----------------------------------------------------------------------------- epochs


def test_every_epoch_visits_each_sample_once_in_a_new_order() -> None:
    # 12 training samples in batches of 4: three steps per epoch
    config = tanh_net(
        dataset={"name": "xor", "samples": 24, "noise": 0.0, "test_fraction": 0.5}, batch_size=4
    )
    trainer = Trainer(config)
    x = trainer.x_train
    assert len(x) == 12
    orders = []
    for _ in range(4):
        order: list[int] = []
        for _ in range(3):
            trainer.train_step()
            # the first layer's inputs of the batch just trained on, sample by sample
            batch = trainer.snapshot(grid_resolution=None)["nodes"]["0"]["samples"]["a"]
            for row in batch:
                (index,) = np.flatnonzero((x == np.asarray(row)).all(axis=1))
                order.append(int(index))
        assert sorted(order) == list(range(12)), order  # every sample once per epoch
        orders.append(order)
    assert trainer.epoch == 3
    for before, after in zip(orders, orders[1:], strict=False):
        assert before != after, "the samples were not reshuffled between epochs"


# ----------------------------------------------------------------------------- early stopping


def test_early_stopping_remembers_and_restores_the_best_step() -> None:
    config = tanh_net(
        dataset={"name": "circle", "samples": 60, "noise": 0.6, "test_fraction": 0.5},
        layers=[
            {"type": "dense", "units": 64, "activation": "tanh"},
            {"type": "dense", "units": 64, "activation": "tanh"},
            {"type": "dense", "units": 1, "activation": "tanh"},
        ],
        optimizer={"name": "adam", "learning_rate": 0.01},
        early_stopping={"patience": 5, "eval_every": 20},
    )
    trainer = Trainer(config)
    reports: list = []
    assert trainer.train(20_000, on_report=reports.append) == "early_stopped"
    assert trainer.best_step is not None and trainer.best_step < trainer.step
    assert trainer.evaluate()["test_loss"] == pytest.approx(trainer.best_loss, rel=1e-5)
    events = [e for r in reports for e in r.events if e["type"] == "early_stop"]
    assert events and events[0]["best_step"] == trainer.best_step and events[0]["restored"]


# ----------------------------------------------------------------------------- observing


def test_report_has_every_per_layer_statistic() -> None:
    trainer = Trainer(tanh_net())
    trainer.train(30)
    trainer.recorder.measure_update = True  # the next step measures its update
    trainer.train_step()
    report = trainer.report().to_dict()
    assert report["step"] == 31 and report["loss"] is not None and report["test_loss"] is not None
    names = [layer["name"] for layer in report["layers"]]
    assert names == ["0", "1", "2"]
    for layer in report["layers"]:
        for key in LAYER_STAT_KEYS:
            assert key in layer, key
        assert 0 < layer["update_ratio"] < 1
        assert layer["grad_norm"] <= layer["max_grad_norm"]


def test_report_statistics_are_those_of_the_last_batch_by_hand() -> None:
    config = tanh_net(
        dtype="float64",
        dataset={"name": "xor", "samples": 40, "noise": 0.2, "test_fraction": 0.5},
        layers=[
            {"type": "dense", "units": 4, "activation": "relu"},
            {"type": "dense", "units": 4, "activation": "tanh"},
            {"type": "dense", "units": 1, "activation": "tanh"},
        ],
        batch_size=20,  # the whole training set: the last batch is known
    )
    trainer = Trainer(config)
    w = trainer.get_weights()
    w["0.W"][:, 0], w["0.b"][0] = [1.0, 1.0], 0.0  # alive: positive on part of the plane
    w["0.W"][:, 3], w["0.b"][3] = [-1.0, 0.5], 0.0
    w["0.W"][:, 1:3], w["0.b"][1:3] = 0.0, [-1.0, -0.5]  # relu units 1 and 2: dead everywhere
    w["1.W"] *= 0.01  # tanh units 1 and 2 stay far from saturation...
    w["1.W"][:, [0, 3]], w["1.b"] = 0.0, [5.0, 0.0, 0.0, -5.0]  # ...units 0 and 3 saturate
    trainer.set_weights(w)
    reports: list = []
    trainer.train(1, on_report=reports.append)  # one step, reported with its own update
    after = trainer.get_weights()
    layers = reports[-1].layers
    x = trainer.x_train  # the batch, in another order (no statistic depends on the order)
    a0 = np.maximum(x @ w["0.W"] + w["0.b"], 0.0)  # (20, 4)
    a1 = np.tanh(a0 @ w["1.W"] + w["1.b"])  # (20, 4)
    assert layers[0]["dead_fraction"] == 0.5
    assert layers[0]["saturated_fraction"] == 0.0
    assert layers[0]["activation_mean"] == pytest.approx(a0.mean(), rel=1e-12)
    assert layers[0]["activation_std"] == pytest.approx(a0.std(), rel=1e-9)
    assert layers[1]["saturated_fraction"] == 0.5 and layers[1]["dead_fraction"] == 0.0
    assert layers[1]["activation_mean"] == pytest.approx(a1.mean(), rel=1e-12)
    assert layers[1]["activation_std"] == pytest.approx(a1.std(), rel=1e-9)
    for index, layer in enumerate(layers):
        names = (f"{index}.W", f"{index}.b")
        delta = np.concatenate([(after[n] - w[n]).ravel() for n in names])
        weight = np.concatenate([after[n].ravel() for n in names])
        ratio = np.linalg.norm(delta) / np.linalg.norm(weight)
        assert layer["weight_norm"] == pytest.approx(np.linalg.norm(weight), rel=1e-12)
        assert layer["update_ratio"] == pytest.approx(ratio, rel=1e-9)


def test_grad_norm_statistic_matches_numpy() -> None:
    trainer = Trainer(tanh_net())
    trainer.train(5)
    layer = trainer.network.layers[1]
    expected = math.sqrt(
        sum(float((p.grad.astype(float) ** 2).sum()) for p in layer.params.values())
    )
    got = trainer.report().layers[1]["grad_norm"]
    assert got == pytest.approx(expected, rel=1e-6)


def test_observing_changes_no_training_state() -> None:
    config = tanh_net(
        layers=[
            {"type": "dense", "units": 8, "activation": "tanh"},
            {"type": "batchnorm"},
            {"type": "dropout", "rate": 0.3},
            {"type": "dense", "units": 1, "activation": "tanh"},
        ]
    )
    a, b = Trainer(config), Trainer(config)
    a.train(40)
    b.train(40)
    b.evaluate()
    b.trace([[0.5, -1.0], [2.0, 1.0]], [0, 1])
    b.snapshot(grid_resolution=20)
    b.grid(30)
    b.predict([[1.0, 1.0]])
    b.histograms()
    before = copy.deepcopy(b.report().layers)
    a_report = a.report().layers
    assert [x["grad_norm"] for x in a_report] == [x["grad_norm"] for x in before]
    a.train(40)
    b.train(40)
    for name, value in a.get_weights().items():
        assert np.array_equal(value, b.get_weights()[name]), name


def test_trace_follows_the_chain_rule() -> None:
    trainer = Trainer(tanh_net(dtype="float64"))
    trainer.train(20)
    trace = trainer.trace([[1.5, -2.0]], [1])
    layers = trace["layers"]
    assert [layer["name"] for layer in layers] == ["0", "1", "2"]
    out = np.array(layers[2]["output"])
    # MSE as the mean of squared errors, against the Playground target +1
    assert trace["loss"] == pytest.approx(float(np.mean((out - 1.0) ** 2)))
    for layer in layers:
        a_in = np.array(layer["input"])  # (1, fan_in)
        delta = np.array(layer["grad_preactivation"])  # (1, units)
        # dL/dw_ij = a_i * delta_j for a single sample
        assert np.allclose(np.array(layer["grad_W"]), a_in.T @ delta)
        assert np.allclose(np.array(layer["grad_b"]), delta.sum(axis=0))
    # delta_j = f'(z_j) * sum_k w_jk delta_k
    upper = layers[2]
    lower = layers[1]
    back = np.array(upper["grad_preactivation"]) @ np.array(upper["W"]).T
    assert np.allclose(np.array(lower["grad_preactivation"]), np.array(lower["derivative"]) * back)


def test_grid_has_output_and_every_hidden_neuron() -> None:
    trainer = Trainer(tanh_net())
    grid = trainer.grid(25)
    assert np.array(grid["output"]).shape == (25, 25)
    assert set(grid["neurons"]) == {"0", "1"}
    assert np.array(grid["neurons"]["0"]).shape == (8, 25, 25)
    assert grid["x"] == [-6.0, 6.0]


def test_snapshot_has_weights_grads_nodes_and_conv_maps() -> None:
    trainer = Trainer(cnn_glyphs(dataset={"name": "glyphs", "samples": 100}))
    trainer.train(2)
    snap = trainer.snapshot()
    assert snap["grid"] is None
    assert set(snap["conv"]) == {"0", "2"}
    assert np.array(snap["conv"]["0"]["filters"]).shape == (8, 1, 3, 3)
    assert np.array(snap["conv"]["0"]["feature_maps"]).shape == (8, 14, 14)
    assert len(snap["conv"]["2"]["filter_grad_norm"]) == 16
    assert np.array(snap["weights"]["5.W"]).shape == (16 * 2 * 2, 5)
    assert len(snap["histograms"]["0"]["grad"]["counts"]) == 30


def plane(resolution: int, low: float = -6.0, high: float = 6.0) -> np.ndarray:
    """The grid's points, row-major: row i is x2 = ys[i], column j is x1 = xs[j]."""
    gx, gy = np.meshgrid(np.linspace(low, high, resolution), np.linspace(low, high, resolution))
    return np.stack([gx.ravel(), gy.ravel()], axis=1)  # (res*res, 2)


def test_grid_maps_are_the_networks_own_forward_pass_over_the_plane() -> None:
    trainer = Trainer(tanh_net(dtype="float64", features=["x1", "x2", "x1*x2"]))
    trainer.train(50)
    grid = trainer.grid(7)
    points = plane(7)
    features = np.stack([points[:, 0], points[:, 1], points[:, 0] * points[:, 1]], axis=1)
    w = trainer.get_weights()
    a0 = np.tanh(features @ w["0.W"] + w["0.b"])  # (49, 8) by hand, from the weights
    a1 = np.tanh(a0 @ w["1.W"] + w["1.b"])
    out = np.tanh(a1 @ w["2.W"] + w["2.b"])  # (49, 1)
    rounding = 5e-5 + 1e-12  # the maps carry four decimals
    for name, values in (("x1", features[:, 0]), ("x2", features[:, 1]), ("x1*x2", features[:, 2])):
        np.testing.assert_allclose(np.array(grid["inputs"][name]).ravel(), values, atol=rounding)
    np.testing.assert_allclose(np.array(grid["neurons"]["0"]).reshape(8, -1).T, a0, atol=rounding)
    np.testing.assert_allclose(np.array(grid["neurons"]["1"]).reshape(8, -1).T, a1, atol=rounding)
    np.testing.assert_allclose(np.array(grid["output"]).ravel(), out[:, 0], atol=rounding)
    assert np.ptp(a0) > 1.0  # a picture with contrast, not a constant map


def test_snapshot_neuron_maps_of_wide_nets_sample_the_full_grid() -> None:
    wide = [{"type": "dense", "units": 64, "activation": "tanh"} for _ in range(4)]
    trainer = Trainer(tanh_net(layers=[*wide, {"type": "dense", "units": 1, "activation": "tanh"}]))
    trainer.train(3)
    coarse = trainer.snapshot(grid_resolution=40)["grid"]
    full = trainer.grid(40)
    size = coarse["neuron_resolution"]
    assert size == int((60_000 / 256) ** 0.5) == 15  # 256 neurons share the snapshot's budget
    step = 40 / size
    pick = np.minimum((np.arange(size) * step + step / 2).astype(int), 39)  # near cell centres
    assert np.abs(pick + 0.5 - (np.arange(size) + 0.5) * step).max() <= 1.0
    for name in ("0", "3"):
        sampled = np.array(full["neurons"][name])[:, pick][:, :, pick]  # (64, 15, 15)
        np.testing.assert_array_equal(np.array(coarse["neurons"][name]), sampled)
    np.testing.assert_array_equal(coarse["output"], full["output"])  # the output at full size


def test_snapshot_nodes_and_gradients_are_the_last_batchs_own_numbers() -> None:
    config = tanh_net(
        dtype="float64",
        dataset={"name": "xor", "samples": 40, "noise": 0.2, "test_fraction": 0.5},
        batch_size=20,  # the whole training set: the last batch is known
    )
    trainer = Trainer(config)
    trainer.train(9)
    before = trainer.get_weights()
    trainer.train_step()
    snap = trainer.snapshot(grid_resolution=None)
    assert snap["step"] == 10
    for name, value in trainer.get_weights().items():
        assert snap["weights"][name] == value.tolist(), name
    # the same batch through the same (pre-step) weights, traced value by value
    twin = Trainer(config)
    twin.set_weights(before)
    traced = twin.trace(twin.dataset.x_train, twin.dataset.y_train)
    for layer in traced["layers"]:
        name = layer["name"]
        node = snap["nodes"][name]
        out = np.array(layer["output"])  # (20, units)
        delta = np.array(layer["grad_preactivation"])  # (20, units)
        np.testing.assert_allclose(node["activation"], out.mean(axis=0), rtol=1e-10, atol=1e-15)
        np.testing.assert_allclose(node["delta"], np.abs(delta).mean(axis=0), rtol=1e-10)
        np.testing.assert_allclose(snap["grads"][f"{name}.W"], layer["grad_W"], rtol=1e-9)
        np.testing.assert_allclose(snap["grads"][f"{name}.b"], layer["grad_b"], rtol=1e-9)
    for name, pair in snap["histograms"].items():
        grads = np.concatenate([np.ravel(snap["grads"][f"{name}.W"]), snap["grads"][f"{name}.b"]])
        counts, edges = np.histogram(grads, bins=30)
        assert pair["grad"]["counts"] == counts.tolist(), name
        np.testing.assert_allclose(pair["grad"]["edges"], edges, rtol=1e-12)


SMALL_CNN = {
    "seed": 0,
    "dtype": "float64",
    "dataset": {"name": "glyphs", "samples": 40, "test_fraction": 0.5},
    "layers": [
        {"type": "conv2d", "filters": 3, "kernel_size": 3, "activation": "relu"},
        {"type": "maxpool2d", "size": 2},
        {"type": "flatten"},
        {"type": "dense", "units": 5, "activation": "softmax"},
    ],
    "loss": "cross_entropy",
    "optimizer": {"name": "adam", "learning_rate": 0.01},
    "batch_size": 20,  # the whole training set
}


def test_snapshot_conv_maps_and_filter_gradients_are_the_networks_own() -> None:
    trainer = Trainer(SMALL_CNN)
    trainer.train(3)
    before = trainer.get_weights()
    trainer.train_step()
    conv = trainer.snapshot()["conv"]["0"]
    np.testing.assert_array_equal(conv["filters"], trainer.get_weights()["0.W"])
    # the sample shown is one of the batch: find it, and run it through the pre-step weights
    sample = np.array(conv["input"])  # (1, 16, 16), four decimals
    (index,) = np.flatnonzero(
        np.abs(trainer.x_train - sample).reshape(len(trainer.x_train), -1).max(axis=1) <= 5e-5
    )
    twin = Trainer(SMALL_CNN)
    twin.set_weights(before)
    one = twin.trace(
        twin.dataset.x_train[index : index + 1], twin.dataset.y_train[index : index + 1]
    )
    maps = np.array(one["layers"][0]["output"])[0]  # (3, 14, 14)
    np.testing.assert_allclose(conv["feature_maps"], maps, atol=5e-5 + 1e-12)
    assert np.ptp(maps) > 0.1
    # per-filter gradient norms: of dL/dW over the whole batch, filter by filter
    batch = twin.trace(twin.dataset.x_train, twin.dataset.y_train)
    grad_w = np.array(batch["layers"][0]["grad_W"])  # (3, 1, 3, 3)
    expected = np.sqrt((grad_w**2).sum(axis=(1, 2, 3)))
    np.testing.assert_allclose(conv["filter_grad_norm"], expected, rtol=1e-9)
    assert len(set(np.round(expected, 12))) == 3  # three different numbers, not one repeated


def test_snapshot_samples_give_the_chain_rule_of_every_weight() -> None:
    # the page's live edge tooltip: mean over the batch of a_i * delta_j is dL/dw_ij, and the
    # first layer's a_i are the sample's input features
    trainer = Trainer(tanh_net(dtype="float64", features=["x1", "x2", "x1*x2"]))
    trainer.train(37)
    snap = trainer.snapshot()
    assert snap["batch_size"] == 10 and snap["samples_shown"] == 10
    first = np.array(snap["nodes"]["0"]["samples"]["a"])  # (10, 3): x1, x2, x1*x2
    for row in first:  # each is a training sample's features, exactly
        assert (np.abs(trainer.x_train - row).max(axis=1) == 0).any()
    np.testing.assert_allclose(first[:, 2], first[:, 0] * first[:, 1], rtol=1e-12)
    for name in ("0", "1", "2"):
        a = np.array(snap["nodes"][name]["samples"]["a"])  # (batch, fan_in)
        delta = np.array(snap["nodes"][name]["samples"]["delta"])  # (batch, units)
        by_samples = np.einsum("bi,bj->ij", a, delta) / len(a)
        np.testing.assert_allclose(by_samples, snap["grads"][f"{name}.W"], rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(delta.mean(axis=0), snap["grads"][f"{name}.b"], rtol=1e-10)


def test_snapshot_samples_fit_their_budget_on_wide_nets() -> None:
    wide = [{"type": "dense", "units": 256, "activation": "relu"} for _ in range(3)]
    trainer = Trainer(
        tanh_net(layers=[*wide, {"type": "dense", "units": 1, "activation": "tanh"}], batch_size=64)
    )
    trainer.train(2)
    snap = trainer.snapshot(grid_resolution=None)
    per_sample = (2 + 256) + (256 + 256) * 2 + (256 + 1)
    assert snap["samples_shown"] == 8000 // per_sample == 5
    assert np.array(snap["nodes"]["1"]["samples"]["delta"]).shape == (5, 256)


def test_compact_snapshot_holds_the_same_values_as_float32_arrays() -> None:
    import orjson

    trainer = Trainer(tanh_net())
    trainer.train(20)
    full = trainer.snapshot(grid_resolution=20)
    compact = trainer.snapshot(grid_resolution=20, compact=True)
    assert set(compact) == set(full) and set(compact["weights"]) == set(full["weights"])
    arrays = [
        *compact["weights"].values(),
        *compact["grads"].values(),
        compact["grid"]["output"],
        *compact["grid"]["inputs"].values(),
        *compact["grid"]["neurons"].values(),
    ]
    assert all(a.dtype == np.float32 and a.flags.c_contiguous for a in arrays)
    for key, values in full["weights"].items():
        np.testing.assert_allclose(compact["weights"][key], values, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(compact["grads"][key], full["grads"][key], rtol=1e-6, atol=1e-9)
    for name, maps in full["grid"]["neurons"].items():
        np.testing.assert_allclose(compact["grid"]["neurons"][name], maps, atol=1e-6)
    # what the stream sends: the same JSON structure, NaN as null, and fewer bytes
    option = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
    decoded = orjson.loads(orjson.dumps(compact, option=option))
    assert (
        np.array(decoded["grid"]["neurons"]["0"]).shape
        == np.array(full["grid"]["neurons"]["0"]).shape
    )
    assert len(orjson.dumps(compact, option=option)) < len(orjson.dumps(full, option=option))
    compact["weights"]["0.W"][0, 0] = np.nan
    assert orjson.loads(orjson.dumps(compact, option=option))["weights"]["0.W"][0][0] is None


# ----------------------------------------------------------------------------- weights


def test_weights_round_trip_through_npz() -> None:
    a = Trainer(tanh_net())
    a.train(30)
    buffer = io.BytesIO()
    a.save_weights(buffer)
    b = Trainer(tanh_net(seed=7))
    buffer.seek(0)
    b.load_weights(buffer)
    for name, value in a.get_weights().items():
        assert np.array_equal(value, b.get_weights()[name])


def test_set_weights_names_the_array_on_a_shape_mismatch() -> None:
    trainer = Trainer(tanh_net())
    weights = trainer.get_weights()
    weights["1.W"] = np.zeros((3, 8))
    with pytest.raises(WeightsError, match=r"1\.W: expected shape \(8, 8\), got \(3, 8\)"):
        trainer.set_weights(weights)
    weights = trainer.get_weights()
    weights["0.b"] = [math.nan] * 8
    with pytest.raises(WeightsError, match="0.b"):
        trainer.set_weights(weights)
    with pytest.raises(WeightsError, match="9.W"):
        trainer.set_weights({"9.W": [[1.0]]}, partial=True)


# ----------------------------------------------------------------------------- hyperparameters


def test_hyperparameters_change_between_steps_without_rebuilding() -> None:
    trainer = Trainer(tanh_net(optimizer={"name": "sgd", "learning_rate": 0.03, "momentum": 0.5}))
    trainer.train(10)
    network = trainer.network
    changes = trainer.update_hyperparameters(
        {
            "learning_rate": 0.1,
            "batch_size": 25,
            "momentum": 0.9,
            "regularization": {"kind": "l2", "rate": 0.01},
            "gradient_clip": {"kind": "value", "threshold": 0.1},
        }
    )
    assert changes["learning_rate"] == {"old": 0.03, "new": 0.1}
    assert changes["batch_size"] == {"old": 10, "new": 25}
    assert trainer.network is network and trainer.optimizer.momentum == 0.9
    reports: list = []
    trainer.train(50, on_report=reports.append)
    assert trainer.config.optimizer.learning_rate == 0.1
    assert reports[-1].learning_rate == 0.1
    assert sum(r.clip_count for r in reports) > 0
    changes = trainer.update_hyperparameters({"gradient_clip": None})
    assert changes == {"gradient_clip": {"old": {"kind": "value", "threshold": 0.1}, "new": None}}


def test_l2_regularization_adds_its_gradient_and_shrinks_weights() -> None:
    plain = Trainer(tanh_net())
    reg = Trainer(tanh_net(regularization={"kind": "l2", "rate": 0.05}))
    plain.train(500)
    reg.train(500)
    assert np.linalg.norm(reg.get_weights()["0.W"]) < np.linalg.norm(plain.get_weights()["0.W"])


# ----------------------------------------------------------------------------- bad configs


@pytest.mark.parametrize(
    ("patch", "field", "words"),
    [
        ({"layers": [{"type": "dense", "units": 0}]}, "layers[0].units", "integer >= 1, got 0"),
        ({"dataset": {"name": "nope"}}, "dataset.name", "nope"),
        ({"dataset": {"name": "spiral", "samples": 2}}, "dataset.samples", ">= 4"),
        ({"features": ["x3"]}, "features[0]", "x3"),
        ({"loss": "hinge"}, "loss", "hinge"),
        ({"optimizer": {"name": "lbfgs"}}, "optimizer.name", "lbfgs"),
        ({"optimizer": {"learning_rate": 0}}, "optimizer.learning_rate", "> 0"),
        ({"batch_size": 0}, "batch_size", ">= 1"),
        ({"regularization": {"kind": "l3"}}, "regularization.kind", "l3"),
        ({"gradient_clip": {"kind": "norm", "threshold": -1}}, "gradient_clip.threshold", "> 0"),
        ({"init": "magic"}, "init.kind", "magic"),
        ({"early_stopping": {"patience": 0}}, "early_stopping.patience", ">= 1"),
        ({"seed": -1}, "seed", ">= 0"),
        ({"lr": 0.1}, "lr", "not a known field"),
        ({"layers": [{"type": "pool"}]}, "layers[0].type", "pool"),
        ({"loss": "bce"}, "layers[2].activation", "sigmoid"),
        (
            {
                "loss": "cross_entropy",
                "layers": [{"type": "dense", "units": 1, "activation": "softmax"}],
            },
            "layers[0].units",
            "one unit per class (2)",
        ),
        (
            {"layers": [{"type": "conv2d", "filters": 4}, {"type": "dense", "units": 1}]},
            "layers[0]",
            "image",
        ),
        ({"layers": [{"type": "dense", "units": 3}]}, "layers[0].units", "2 units"),
        (
            {"layers": [{"type": "dense", "units": 4000}] * 3 + [{"type": "dense", "units": 1}]},
            "layers",
            "parameters",
        ),
        ({"optimizer": {"learning_rate": math.inf}}, "optimizer.learning_rate", "finite"),
    ],
)
def test_bad_config_gets_a_field_named_error(patch: dict, field: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Trainer(tanh_net(**patch))
    fields = [e["field"] for e in caught.value.errors]
    assert field in fields, caught.value.errors
    message = next(e["message"] for e in caught.value.errors if e["field"] == field)
    assert words in message, message


def test_config_defaults_fill_everything_but_layers_and_dataset() -> None:
    config = parse_config({"dataset": {"name": "xor"}, "layers": [{"type": "dense", "units": 1}]})
    assert config.loss == "mse" and config.batch_size == 10 and config.init.kind == "xavier"
    assert config.optimizer.learning_rate == 0.03 and config.gradient_clip is None
    with pytest.raises(ConfigError) as caught:
        parse_config({})
    assert {e["field"] for e in caught.value.errors} == {"dataset", "layers"}


# ----------------------------------------------------------------------------- pace


class FakeClock:
    """Stands in for the `time` module inside engine.trainer: steps take no time, sleeps do."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def perf_counter(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_paced_training_never_runs_ahead_of_its_pace(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr("engine.trainer.time", clock)
    trainer = Trainer(tanh_net())
    seen: list[tuple[float, int]] = []  # (seconds since start, step) at every report
    start = clock.now
    trainer.train(300, on_report=lambda r: seen.append((clock.now - start, r.step)), pace=100.0)
    assert trainer.step == 300
    # 300 steps at 100 steps/s: the last one is due 2.99 s after the first
    assert clock.now - start == pytest.approx(2.99, abs=1e-9)
    assert len(seen) >= 60  # a report about every 1/30 s of (fake) time, and one at the end
    for elapsed, step in seen:
        assert step <= 100.0 * elapsed + 1 + 1e-9  # never ahead: step k+1 runs at k / pace


def test_paced_training_stops_while_it_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr("engine.trainer.time", clock)
    trainer = Trainer(tanh_net())
    # one step every 1,000 s: the first runs at once, then the trainer waits in slices
    # and notices the stop request within one of them
    stop_after = clock.now + 0.2
    reason = trainer.train(pace=0.001, should_stop=lambda: clock.now >= stop_after)
    assert reason == "stopped" and trainer.step == 1
    assert max(clock.slept) <= 0.05


@pytest.mark.parametrize("pace", [0.0, -5.0, math.nan, math.inf])
def test_pace_must_be_a_positive_finite_rate(pace: float) -> None:
    with pytest.raises(ValueError, match="pace"):
        Trainer(tanh_net()).train(1, pace=pace)


def update_ratios_by_hand(
    trainer: Trainer, before: dict[str, np.ndarray], after: dict[str, np.ndarray]
) -> list[float]:
    """||W_after - W_before|| / ||W_after|| over each layer's parameters (W and b)."""
    ratios = []
    for layer in trainer.network.layers:
        keys = [k for k in after if k.startswith(f"{layer.name}.")]
        delta = np.concatenate([(after[k] - before[k]).ravel() for k in keys]).astype(np.float64)
        weight = np.concatenate([after[k].ravel() for k in keys]).astype(np.float64)
        ratios.append(float(np.linalg.norm(delta) / np.linalg.norm(weight)))
    return ratios


@pytest.mark.parametrize("steps", [1, 10])
def test_a_bounded_run_reports_the_update_of_its_last_step(steps: int) -> None:
    # the page's +1 and +10 buttons: the final report carries every layer's update ratio
    twin = Trainer(tanh_net())  # same seed, same trajectory: the weights before the last step
    twin.train(steps - 1)
    trainer = Trainer(tanh_net())
    reports: list = []
    trainer.train(steps, on_report=reports.append)
    assert reports[-1].step == steps
    ratios = [layer["update_ratio"] for layer in reports[-1].layers]
    expected = update_ratios_by_hand(trainer, twin.get_weights(), trainer.get_weights())
    assert ratios == pytest.approx(expected, rel=1e-4)


def test_a_bounded_run_ends_with_an_evaluation_at_its_last_step() -> None:
    trainer = Trainer(tanh_net())
    reports: list = []
    trainer.train(500, on_report=reports.append)
    # right after an evaluation the time budget would skip the next one: +1 must still not
    # show the numbers of the step before
    trainer.train(1, on_report=reports.append)
    last = reports[-1]
    assert last.step == last.eval_step == 501
    truth = Trainer(tanh_net())
    truth.train(501)
    assert (last.loss, last.test_loss) == pytest.approx(
        (truth.evaluate()["loss"], truth.evaluate()["test_loss"]), rel=1e-6
    )


def test_a_slow_paced_run_reports_each_steps_own_update(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr("engine.trainer.time", clock)
    trainer = Trainer(tanh_net())
    reports: list = []
    weights: list[dict[str, np.ndarray]] = [trainer.get_weights()]

    def on_report(report: object) -> None:
        reports.append(report)
        weights.append(trainer.get_weights())

    trainer.train(5, on_report=on_report, pace=2.0)  # 2 steps/s: every step is reported
    assert [r.step for r in reports] == [1, 2, 3, 4, 5]
    for k, report in enumerate(reports):  # the update of its own step, not of the one before
        ratios = [layer["update_ratio"] for layer in report.layers]
        expected = update_ratios_by_hand(trainer, weights[k], weights[k + 1])
        assert ratios == pytest.approx(expected, rel=1e-4)


def test_one_slow_evaluation_does_not_leave_the_numbers_stale(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = FakeClock()
    monkeypatch.setattr("engine.trainer.time", clock)
    trainer = Trainer(tanh_net())
    evaluate = trainer.evaluate

    calls: list[int] = []

    def slow_once() -> dict:
        clock.now += 10.0 if not calls else 0.001  # a busy machine, once
        calls.append(trainer.step)
        return evaluate()

    monkeypatch.setattr(trainer, "evaluate", slow_once)
    trainer.train(5)
    assert trainer.report().eval_step == 5  # the first report evaluates: 10 s of (fake) time
    for k in range(1, 4):
        clock.now += 1.0  # a second later the numbers are re-evaluated, not 500 s later
        trainer.train(7)
        report = trainer.report()
        assert report.step == report.eval_step == 5 + 7 * k
    assert calls == [5, 12, 19, 26]
