"""Multi-class runs: the per-class grid of a softmax net on the plane, and the presets on the
three-arm spiral and the handwritten digits learning (test accuracy over several seeds, at every
checkpoint of a run, not at one instant)."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from engine.config import ConfigError
from engine.introspect import class_map_count
from engine.presets import get_preset
from engine.trainer import Trainer

SPIRAL3 = {
    "seed": 2,
    "dataset": {"name": "spiral3", "samples": 300, "noise": 0.1},
    "layers": [
        {"type": "dense", "units": 8, "activation": "tanh"},
        {"type": "dense", "units": 3, "activation": "softmax"},
    ],
    "loss": "cross_entropy",
    "optimizer": {"name": "adam", "learning_rate": 0.02},
    "batch_size": 16,
}


def run(config: dict, **changes: object) -> dict:
    out = copy.deepcopy(config)
    out.update(changes)
    return out


def plane_points(grid: dict) -> np.ndarray:
    """The grid's sample points, row-major: row i is x2 = ys[i], column j is x1 = xs[j]."""
    res = grid["resolution"]
    xs = np.linspace(*grid["x"], res)
    ys = np.linspace(*grid["y"], res)
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.ravel(), gy.ravel()], axis=1)  # (res*res, 2)


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# --------------------------------------------------------------------------- the grid


def test_grid_classes_are_the_softmax_nets_own_probabilities() -> None:
    trainer = Trainer(SPIRAL3)
    trainer.train(300)
    grid = trainer.grid(9)
    assert grid["class_values"] == "probability"
    classes = np.array(grid["classes"])  # (3, 9, 9)
    assert classes.shape == (3, 9, 9)
    expected = trainer.predict(plane_points(grid))  # (81, 3): the network's own forward pass
    np.testing.assert_allclose(classes.reshape(3, -1).T, expected, atol=6e-5)
    assert np.ptp(classes) > 0.5  # a trained net, not a uniform 1/3 everywhere
    np.testing.assert_array_equal(np.array(grid["output"]).ravel(), expected.argmax(axis=1))
    # The streamed snapshot carries the same maps (float32) at its own resolution.
    snap = trainer.snapshot(grid_resolution=9, compact=True)["grid"]
    np.testing.assert_allclose(snap["classes"], classes, atol=1e-6)


def test_grid_classes_of_linear_logits_are_their_softmax() -> None:
    config = run(SPIRAL3)
    config["layers"][-1]["activation"] = "linear"  # cross-entropy on raw logits
    trainer = Trainer(config)
    trainer.train(200)
    grid = trainer.grid(7)
    logits = trainer.predict(plane_points(grid))  # (49, 3)
    assert grid["class_values"] == "probability"
    np.testing.assert_allclose(
        np.array(grid["classes"]).reshape(3, -1).T, softmax(logits), atol=6e-5
    )


def test_grid_classes_of_an_mse_output_are_the_units_outputs() -> None:
    config = run(SPIRAL3, loss="mse")
    config["layers"][-1]["activation"] = "tanh"  # one-hot targets, three tanh units
    trainer = Trainer(config)
    trainer.train(200)
    grid = trainer.grid(7)
    outputs = trainer.predict(plane_points(grid))
    assert grid["class_values"] == "output"
    np.testing.assert_allclose(np.array(grid["classes"]).reshape(3, -1).T, outputs, atol=6e-5)


def test_binary_grids_have_no_class_maps() -> None:
    base = {
        "seed": 0,
        "dataset": {"name": "xor", "samples": 100},
        "layers": [{"type": "dense", "units": 4}, {"type": "dense", "units": 1}],
    }
    one = Trainer(base)
    grid = one.grid(6)
    assert "classes" not in grid
    np.testing.assert_allclose(
        np.array(grid["output"]).ravel(), one.predict(plane_points(grid))[:, 0], atol=6e-5
    )
    two = run(base, loss="cross_entropy")
    two["layers"][-1] = {"type": "dense", "units": 2, "activation": "softmax"}
    trainer = Trainer(two)
    grid = trainer.grid(6)
    assert "classes" not in grid
    p = trainer.predict(plane_points(grid))
    np.testing.assert_allclose(np.array(grid["output"]).ravel(), p[:, 1] - p[:, 0], atol=6e-5)
    assert [class_map_count(u) for u in (1, 2, 3, 10)] == [0, 0, 3, 10]


# --------------------------------------------------------------------------- presets learn


def accuracy_trajectory(preset_id: str, seed: int, steps: int, every: int) -> list[float]:
    config = copy.deepcopy(get_preset(preset_id)["config"])
    config["seed"] = seed
    trainer = Trainer(config)
    out = []
    for _ in range(steps // every):
        assert trainer.train(every) == "steps"
        out.append(trainer.evaluate()["test_accuracy"])
    return out


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_spiral3_softmax_preset_learns_and_stays_learned(seed: int) -> None:
    curve = accuracy_trajectory("spiral3-softmax", seed, 4000, 250)
    assert curve[0] < 0.85  # it starts far from the answer (chance is 1/3) ...
    late = curve[5:]  # ... and from step 1,500 on, every checkpoint is right on 9 of 10 points
    assert min(late) >= 0.9, curve


def test_spiral3_softmax_preset_paints_all_three_classes_on_the_plane() -> None:
    config = get_preset("spiral3-softmax")["config"]
    assert config["layers"][-1] == {"type": "dense", "units": 3, "activation": "softmax"}
    assert config["loss"] == "cross_entropy"
    trainer = Trainer(config)
    trainer.train(2000)
    winners = np.array(trainer.grid(30)["output"]).ravel()
    shares = np.bincount(winners.astype(int), minlength=3) / winners.size
    assert shares.min() > 0.2, shares  # three arms, each winning about a third of the plane


@pytest.mark.parametrize("preset_id", ["digits-dense", "digits-cnn"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_digits_presets_learn_the_ten_digits(preset_id: str, seed: int) -> None:
    curve = accuracy_trajectory(preset_id, seed, 600, 100)
    assert curve[0] > 0.5  # from 10 % (chance) to most digits right in 100 steps
    assert min(curve[2:]) >= 0.9, curve  # steps 300..600


def test_digits_dense_layer_flattens_the_images_itself() -> None:
    config = copy.deepcopy(get_preset("digits-dense")["config"])
    assert config["layers"][0] == {"type": "flatten"}
    config["layers"] = config["layers"][1:]  # dense first: the network flattens 1x8x8 to 64
    trainer = Trainer(config)
    assert trainer.network.describe()[0]["input_shape"] == [64]
    trainer.train(200)
    assert trainer.evaluate()["test_accuracy"] >= 0.85


def test_a_conv_stack_too_deep_for_8x8_digits_names_the_layer() -> None:
    config = copy.deepcopy(get_preset("digits-cnn")["config"])
    for layer in config["layers"]:
        layer.pop("padding", None)  # 'valid': 8 -> 6 -> pool 3 -> 1 -> no pool
    with pytest.raises(ConfigError) as info:
        Trainer(config)
    assert info.value.errors[0]["field"] == "layers[3]"
    message = info.value.errors[0]["message"]
    assert "maxpool2d" in message and "(16, 1, 1)" in message and "got 1x1" in message
