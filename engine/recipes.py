"""Run configurations the presets and the lessons are made of: the spiral, circle, deep-sigmoid,
exploding, overfitting, relu, CNN and drawn-points runs, each a plain config document.

engine.presets and engine.lessons add the words the page shows; tests/engine/test_presets.py
checks that each lesson's runs do what its words say, so a change here is a change of a lesson.
"""

from __future__ import annotations

import copy
from typing import Any

_TANH_2_8_8_1 = [
    {"type": "dense", "units": 8, "activation": "tanh"},
    {"type": "dense", "units": 8, "activation": "tanh"},
    {"type": "dense", "units": 1, "activation": "tanh"},
]


def spiral_run(learning_rate: float = 0.03, optimizer: str = "sgd", **extra: Any) -> dict[str, Any]:
    """The two-spiral run of the basic presets."""
    config: dict[str, Any] = {
        "seed": 1,
        "dataset": {"name": "spiral", "samples": 500, "noise": 0.1, "test_fraction": 0.3},
        "features": ["x1", "x2"],
        "layers": copy.deepcopy(_TANH_2_8_8_1),
        "loss": "mse",
        "optimizer": {"name": optimizer, "learning_rate": learning_rate},
        "batch_size": 10,
    }
    config["optimizer"].update(extra)
    return config


def circle_run(learning_rate: float, optimizer: str = "sgd", **extra: Any) -> dict[str, Any]:
    """2-8-8-1 tanh on the circle: the run the learning-rate and optimizer experiments compare.

    The circle, not the spiral: on the spiral this small net's loss keeps jumping by up to 0.6
    at any learning rate fast enough to watch, so no ordering of runs holds for long.
    """
    config = spiral_run(learning_rate, optimizer, **extra)
    config["dataset"]["name"] = "circle"
    return config


def deep_sigmoid(
    batchnorm: bool = False,
    activation: str = "sigmoid",
    init: str = "xavier",
    learning_rate: float = 0.1,
) -> dict:
    """Nine hidden layers of 8 units on the circle: the vanishing-gradient run."""
    layers: list[dict[str, Any]] = []
    for _ in range(9):
        layers.append({"type": "dense", "units": 8, "activation": activation})
        if batchnorm:
            layers.append({"type": "batchnorm"})
    layers.append({"type": "dense", "units": 1, "activation": "tanh"})
    return {
        "seed": 1,
        "dataset": {"name": "circle", "samples": 500, "noise": 0.1, "test_fraction": 0.3},
        "layers": layers,
        "loss": "mse",
        "optimizer": {"name": "sgd", "learning_rate": learning_rate},
        "batch_size": 32,
        "init": init,
    }


def full_batch_deep_sigmoid(batchnorm: bool) -> dict[str, Any]:
    """The nine-layer sigmoid net on 200 circle points, each step on all 140 training points,
    SGD with momentum 0.9 at 0.01.

    Why the whole training set as the batch: with batches of 32, the batch-norm layers' running
    statistics (used when evaluating) drift away from the batch statistics training uses once the
    sigmoids saturate; after ~10,000 steps the evaluated loss climbs to 1.5-1.9 while the
    training-mode loss stays near 0.02 (PyTorch's BatchNorm1d does the same on this net). Why
    momentum: plain SGD at 0.1 on this batch still throws the loss up to 0.5-1.4 now and then in
    the first few thousand steps on some seeds; momentum 0.9 at 0.01 does not.
    """
    config = deep_sigmoid(batchnorm=batchnorm, learning_rate=0.01)
    config["optimizer"]["momentum"] = 0.9
    config["dataset"]["samples"] = 200
    config["batch_size"] = 140  # 70 % of 200: every training point in every step
    return config


def exploding(clip: dict[str, Any] | None = None, learning_rate: float = 0.01) -> dict[str, Any]:
    """Eight ReLU layers of 32 with a too-large initial weight scale, regression on the plane.

    32 units, not 16: with 16, about 1 seed in 300 draws layers small enough not to explode.
    """
    return {
        "seed": 1,
        "dataset": {"name": "plane", "samples": 500, "noise": 0.1, "test_fraction": 0.3},
        "layers": [{"type": "dense", "units": 32, "activation": "relu"} for _ in range(8)]
        + [{"type": "dense", "units": 1, "activation": "linear"}],
        "loss": "mse",
        "optimizer": {"name": "sgd", "learning_rate": learning_rate},
        "batch_size": 10,
        "init": {"kind": "normal", "std": 0.5},
        "gradient_clip": clip,
    }


def with_batchnorm(config: dict[str, Any]) -> dict[str, Any]:
    """A copy of config with a batch-norm layer after every dense layer but the last, as the
    page's "add batch norm" fix for a diverged run builds it."""
    out = copy.deepcopy(config)
    layers: list[dict[str, Any]] = []
    for index, layer in enumerate(out["layers"]):
        layers.append(layer)
        if layer["type"] == "dense" and index < len(out["layers"]) - 1:
            layers.append({"type": "batchnorm", "momentum": 0.1, "eps": 1e-5})
    out["layers"] = layers
    return out


def overfitting(**extra: Any) -> dict[str, Any]:
    """Eighty very noisy circle points, half held out, and a net far bigger than they need.

    Noise 1.0 (the most the generator allows): at 0.5, on some seeds the test loss never rises.
    """
    config: dict[str, Any] = {
        "seed": 1,
        "dataset": {"name": "circle", "samples": 80, "noise": 1.0, "test_fraction": 0.5},
        "layers": [
            {"type": "dense", "units": 32, "activation": "tanh"},
            {"type": "dense", "units": 32, "activation": "tanh"},
            {"type": "dense", "units": 1, "activation": "tanh"},
        ],
        "loss": "mse",
        "optimizer": {"name": "adam", "learning_rate": 0.01},
        "batch_size": 10,
    }
    config.update(extra)
    return config


def relu_net(activation: str = "relu") -> dict[str, Any]:
    """Four hidden layers of 16 units on the circle, xavier init for either activation.

    Not he init for relu: on these raw inputs (up to 6) it saturates the tanh output on about
    half of the seeds, and about 1 in 12 never recovers (loss stuck near 2). Learning rate 0.01:
    at 0.03 the relu net's loss still jumps to ~0.1 now and then late in a run.
    """
    return {
        "seed": 1,
        "dataset": {"name": "circle", "samples": 500, "noise": 0.1, "test_fraction": 0.3},
        "layers": [{"type": "dense", "units": 16, "activation": activation} for _ in range(4)]
        + [{"type": "dense", "units": 1, "activation": "tanh"}],
        "loss": "mse",
        "optimizer": {"name": "sgd", "learning_rate": 0.01},
        "batch_size": 10,
        "init": "xavier",
    }


def cnn_glyphs(
    noise: float = 0.2, batch_size: int = 32, filters: tuple[int, int] = (8, 16)
) -> dict[str, Any]:
    """conv-pool-conv-pool-dense on the 16x16 glyph images."""
    return {
        "seed": 0,
        "dataset": {"name": "glyphs", "samples": 600, "noise": noise, "test_fraction": 0.3},
        "layers": [
            {"type": "conv2d", "filters": filters[0], "kernel_size": 3, "activation": "relu"},
            {"type": "maxpool2d", "size": 2},
            {"type": "conv2d", "filters": filters[1], "kernel_size": 3, "activation": "relu"},
            {"type": "maxpool2d", "size": 2},
            {"type": "flatten"},
            {"type": "dense", "units": 5, "activation": "softmax"},
        ],
        "loss": "cross_entropy",
        "optimizer": {"name": "adam", "learning_rate": 0.005},
        "batch_size": batch_size,
    }


def lesson_cnn(noise: float = 0.2) -> dict[str, Any]:
    """The conv lesson's net: batches of 8 and 8 second-layer filters train ~3x faster per step
    than the basic preset (32, 16) and still reach 90 % test accuracy within a few hundred steps."""
    return cnn_glyphs(noise, batch_size=8, filters=(8, 8))


DRAWN_POINTS = [  # two small clusters a user might draw; the page replaces them with its own
    [-3.0, -3.0, 0],
    [-2.5, -3.5, 0],
    [-3.5, -2.0, 0],
    [-2.0, -2.5, 0],
    [-4.0, -3.0, 0],
    [-3.0, -4.0, 0],
    [3.0, 3.0, 1],
    [2.5, 3.5, 1],
    [3.5, 2.0, 1],
    [2.0, 2.5, 1],
    [4.0, 3.0, 1],
    [3.0, 4.0, 1],
    [-3.0, 3.0, 1],
    [-2.5, 2.0, 1],
    [3.0, -3.0, 0],
    [2.0, -2.5, 0],
]


def drawn_points(extra: list[list[float]] | None = None) -> dict[str, Any]:
    """The own-data run: DRAWN_POINTS (plus extra [x1, x2, label] rows), 2-8-1 tanh."""
    return {
        "seed": 1,
        "dataset": {
            "name": "points",
            "points": DRAWN_POINTS + (extra or []),
            "test_fraction": 0.0,
        },
        "layers": [
            {"type": "dense", "units": 8, "activation": "tanh"},
            {"type": "dense", "units": 1, "activation": "tanh"},
        ],
        "loss": "mse",
        "optimizer": {"name": "sgd", "learning_rate": 0.03},
        "batch_size": 4,
    }


def xor_run() -> dict[str, Any]:
    """2-4-1 tanh on noise-free xor: the first lesson's and the basic xor run."""
    return {
        "seed": 3,
        "dataset": {"name": "xor", "samples": 200, "noise": 0.0, "test_fraction": 0.3},
        "layers": [
            {"type": "dense", "units": 4, "activation": "tanh"},
            {"type": "dense", "units": 1, "activation": "tanh"},
        ],
        "loss": "mse",
        "optimizer": {"name": "sgd", "learning_rate": 0.03},
        "batch_size": 10,
    }
