"""What the trainer shows of a run, checked against the network's own numbers: the per-layer
statistics of a report, the trace of one pass, the decision-boundary grid and the snapshot.
Observing never changes the training state."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from engine.stats import LAYER_STAT_KEYS
from engine.trainer import Trainer
from tests.engine.configs import cnn_glyphs, tanh_net

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
