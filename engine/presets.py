"""Ready-made runs: the basic presets and the guided experiments, one concept each.

Every preset is a real run configuration (validated like any other) plus the words the page shows:
a plain-language explanation, the formulas it is about, what to watch and a change to try. The
texts claim only what the engine demonstrably does; tests/engine/test_presets.py checks each claim.
"""

from __future__ import annotations

import copy
from typing import Any

from engine.config import parse_config

_TANH_2_8_8_1 = [
    {"type": "dense", "units": 8, "activation": "tanh"},
    {"type": "dense", "units": 8, "activation": "tanh"},
    {"type": "dense", "units": 1, "activation": "tanh"},
]


def _spiral(learning_rate: float = 0.03, optimizer: str = "sgd", **extra: Any) -> dict[str, Any]:
    """The spiral run that the learning-rate and optimizer experiments compare."""
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


def deep_sigmoid(
    batchnorm: bool = False, activation: str = "sigmoid", init: str = "xavier"
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
        "optimizer": {"name": "sgd", "learning_rate": 0.1},
        "batch_size": 32,
        "init": init,
    }


def exploding(clip: dict[str, Any] | None = None) -> dict[str, Any]:
    """Eight ReLU layers with a too-large initial weight scale, regression on the plane."""
    return {
        "seed": 1,
        "dataset": {"name": "plane", "samples": 500, "noise": 0.1, "test_fraction": 0.3},
        "layers": [{"type": "dense", "units": 16, "activation": "relu"} for _ in range(8)]
        + [{"type": "dense", "units": 1, "activation": "linear"}],
        "loss": "mse",
        "optimizer": {"name": "sgd", "learning_rate": 0.01},
        "batch_size": 10,
        "init": {"kind": "normal", "std": 0.6},
        "gradient_clip": clip,
    }


def overfitting(**extra: Any) -> dict[str, Any]:
    """Eighty noisy circle points, half held out, and a net far bigger than they need."""
    config: dict[str, Any] = {
        "seed": 1,
        "dataset": {"name": "circle", "samples": 80, "noise": 0.5, "test_fraction": 0.5},
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
    """Four hidden layers of 16 units on the circle, with ReLU (he init) or sigmoid (xavier)."""
    return {
        "seed": 1,
        "dataset": {"name": "circle", "samples": 500, "noise": 0.1, "test_fraction": 0.3},
        "layers": [{"type": "dense", "units": 16, "activation": activation} for _ in range(4)]
        + [{"type": "dense", "units": 1, "activation": "tanh"}],
        "loss": "mse",
        "optimizer": {"name": "sgd", "learning_rate": 0.1},
        "batch_size": 10,
        "init": "he" if activation == "relu" else "xavier",
    }


def cnn_glyphs(noise: float = 0.2) -> dict[str, Any]:
    """conv-pool-conv-pool-dense on the 16x16 glyph images."""
    return {
        "seed": 0,
        "dataset": {"name": "glyphs", "samples": 600, "noise": noise, "test_fraction": 0.3},
        "layers": [
            {"type": "conv2d", "filters": 8, "kernel_size": 3, "activation": "relu"},
            {"type": "maxpool2d", "size": 2},
            {"type": "conv2d", "filters": 16, "kernel_size": 3, "activation": "relu"},
            {"type": "maxpool2d", "size": 2},
            {"type": "flatten"},
            {"type": "dense", "units": 5, "activation": "softmax"},
        ],
        "loss": "cross_entropy",
        "optimizer": {"name": "adam", "learning_rate": 0.005},
        "batch_size": 32,
    }


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


def _xor_step() -> dict[str, Any]:
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


LESSONS: list[dict[str, Any]] = [
    {
        "id": "how-a-step-works",
        "title": "How a step works",
        "explanation": (
            "A training step has four parts. The forward pass feeds a sample through the layers: "
            "each neuron adds up its weighted inputs plus a bias (z) and squashes the sum with its "
            "activation (a = f(z)). The loss measures how wrong the output is. The backward pass "
            "sends the error back: each neuron's delta is its activation's slope times the "
            "weighted deltas of the layer above (the chain rule). Finally every weight moves a "
            "little against its gradient, which is its input activation times the delta it feeds."
        ),
        "formulas": [
            "z_j = sum_i w_ij a_i + b_j,   a_j = f(z_j)",
            "E = 1/n * sum (y_pred - y_true)^2",
            "delta_j = dE/dz_j = f'(z_j) * sum_k w_jk delta_k",
            "dE/dw_ij = a_i * delta_j",
            "w = w - eta * dE/dw",
        ],
        "watch": (
            "Open 'explain this step' and walk through forward, loss, backward and update; hover "
            "an edge to see a_i * delta_j with the real numbers."
        ),
        "try": {
            "change": "Press 'step' a few times and reopen the explainer.",
            "expect": "The loss for the same sample shrinks as the weights move.",
        },
        "mode": "explain",
        "config": _xor_step(),
    },
    {
        "id": "learning-rate",
        "title": "Learning rate",
        "explanation": (
            "The learning rate eta scales every update. Too small and the network crawls: each "
            "step changes almost nothing. Too large and the steps overshoot: here, at 3, the tanh "
            "units saturate at once and the loss stays stuck high. In between, the loss falls "
            "steadily. The three runs below are the same spiral run at 0.003, 0.03 and 3."
        ),
        "formulas": ["w = w - eta * dE/dw"],
        "watch": "The loss curves of the three runs side by side (compare view).",
        "try": {
            "change": "Set the learning rate to 0.3 while the run trains.",
            "expect": "The loss becomes noisy; drop it back to 0.03 and it settles again.",
            "config": _spiral(0.3),
        },
        "config": _spiral(0.03),
        "compare": [
            {"label": "eta = 0.003", "config": _spiral(0.003)},
            {"label": "eta = 0.03", "config": _spiral(0.03)},
            {"label": "eta = 3", "config": _spiral(3.0)},
        ],
    },
    {
        "id": "vanishing-gradients",
        "title": "Vanishing gradients",
        "explanation": (
            "This net has nine hidden sigmoid layers. The sigmoid's slope is at most 0.25, and "
            "the backward pass multiplies one such slope per layer, so the delta shrinks on its "
            "way to the input. The first layers barely learn while the last ones do: the "
            "per-layer gradient bars fade from right to left by orders of magnitude, and the "
            "loss soon stalls near 1, the loss of predicting 0 everywhere."
        ),
        "formulas": [
            "sigma'(x) = sigma(x) * (1 - sigma(x)) <= 0.25",
            "delta_1 ~ product over layers of (w * sigma'(z))",
        ],
        "watch": "The gradient-norm bars beside each layer and the per-layer gradient chart.",
        "try": {
            "change": "Switch every hidden layer to relu and the init to he.",
            "expect": "The first layer's gradient is within an order of magnitude of the last.",
            "config": deep_sigmoid(activation="relu", init="he"),
        },
        "config": deep_sigmoid(),
    },
    {
        "id": "exploding-gradients",
        "title": "Exploding gradients",
        "explanation": (
            "Here eight ReLU layers start with weights drawn too large (std 0.6, where he init "
            "would use 0.35). Each layer multiplies the signal and the delta by more than one, so "
            "the output and the gradients are huge from the first step. The update overshoots, "
            "the loss blows up, and Backprop Lens pauses the run as diverged, keeping the last "
            "good weights and saying which layer went non-finite first."
        ),
        "formulas": ["||dE/dW_1|| ~ product over layers of ||W_l|| * f'(z_l)"],
        "watch": "The divergence banner, the max-gradient-norm line and the layer bars.",
        "try": {
            "change": "Turn on gradient clipping by norm with threshold 1.",
            "expect": "The same run trains: the loss falls instead of blowing up.",
            "config": exploding({"kind": "norm", "threshold": 1.0}),
        },
        "config": exploding(),
    },
    {
        "id": "gradient-clipping",
        "title": "Gradient clipping",
        "explanation": (
            "Clipping limits how far one step can go. By value, every gradient component is cut "
            "to [-c, c]. By norm, the whole gradient vector is scaled down when its length "
            "exceeds c, keeping its direction. This is the exploding run of the previous "
            "experiment with clipping by value at 0.1: it trains, and every clipped step is "
            "marked with how much was cut."
        ),
        "formulas": [
            "by value: g = clip(dE/dw, -c, c)",
            "by norm: g = g * min(1, c / ||g||)",
        ],
        "watch": "The clip markers on the loss chart and the 'clipped' flag on each layer.",
        "try": {
            "change": "Switch to clipping by norm with threshold 1.",
            "expect": "It also trains; the direction of each step is kept, only its length cut.",
            "config": exploding({"kind": "norm", "threshold": 1.0}),
        },
        "config": exploding({"kind": "value", "threshold": 0.1}),
    },
    {
        "id": "overfitting",
        "title": "Overfitting",
        "explanation": (
            "Eighty noisy points, half of them held out, and a network with over a thousand "
            "weights. The network memorises the training points, noise included: the training "
            "loss falls to almost zero while the test loss, after an early dip, climbs again. "
            "The gap between the two is what the network learned that is not true of new data."
        ),
        "formulas": ["gap = E_test - E_train"],
        "watch": "Train and test loss drifting apart in the loss chart; the jagged boundary.",
        "try": {
            "change": "Turn on early stopping (patience 10).",
            "expect": "Training stops near the test loss's low point, with a smaller gap.",
            "config": overfitting(early_stopping={"patience": 10, "eval_every": 50}),
        },
        "config": overfitting(),
    },
    {
        "id": "early-stopping",
        "title": "Early stopping",
        "explanation": (
            "Early stopping watches the test loss every 50 steps. When it has not improved for "
            "'patience' evaluations, training stops and the weights of the best step are put "
            "back. On this overfitting run it stops soon after the test loss bottoms out and "
            "keeps the network from that point."
        ),
        "formulas": ["stop when E_test has not improved by min_delta for patience evaluations"],
        "watch": "The best-step marker on the loss chart and the early-stop event.",
        "try": {
            "change": "Raise patience to 40.",
            "expect": "It trains longer past the best step, then restores the same best weights.",
            "config": overfitting(early_stopping={"patience": 40, "eval_every": 50}),
        },
        "config": overfitting(early_stopping={"patience": 10, "eval_every": 50}),
    },
    {
        "id": "relu-vs-sigmoid",
        "title": "ReLU vs sigmoid",
        "explanation": (
            "The same four-layer net with ReLU units. ReLU passes the gradient unchanged "
            "wherever a unit is active, so this net learns the circle quickly. The price: a "
            "unit whose input is negative for every sample passes no gradient at all and stops "
            "learning, a dead ReLU; the layer statistics count them. Switch to sigmoid and the "
            "same net only learns to predict about 0 everywhere in the same number of steps."
        ),
        "formulas": [
            "relu'(z) = 1 if z > 0 else 0",
            "sigma'(z) = sigma(z) * (1 - sigma(z)) <= 0.25",
        ],
        "watch": "The dead-ReLU fraction per layer and the loss chart.",
        "try": {
            "change": "Switch the hidden layers to sigmoid (xavier init).",
            "expect": "The loss stalls near 1 (predicting 0 everywhere); accuracy stays near 50 %.",
            "config": relu_net("sigmoid"),
        },
        "config": relu_net("relu"),
        "compare": [
            {"label": "relu", "config": relu_net("relu")},
            {"label": "sigmoid", "config": relu_net("sigmoid")},
        ],
    },
    {
        "id": "batch-normalization",
        "title": "Batch normalization",
        "explanation": (
            "The deep sigmoid net of the vanishing-gradient experiment, with a batch-norm layer "
            "after every hidden layer. Batch norm re-centres and re-scales each unit over the "
            "batch, then lets the network pick a new scale (gamma) and shift (beta). Signals and "
            "deltas keep a healthy size through all nine layers, and the net that stalled now "
            "learns the circle."
        ),
        "formulas": [
            "x_hat = (x - mu_B) / sqrt(sigma_B^2 + eps)",
            "y = gamma * x_hat + beta",
        ],
        "watch": "The live batch mean and variance of a batch-norm layer, and the loss chart.",
        "try": {
            "change": "Remove the batch-norm layers.",
            "expect": "The loss stalls near 1 again: the net predicts about 0 everywhere.",
            "config": deep_sigmoid(),
        },
        "config": deep_sigmoid(batchnorm=True),
        "compare": [
            {"label": "with batch norm", "config": deep_sigmoid(batchnorm=True)},
            {"label": "plain", "config": deep_sigmoid()},
        ],
    },
    {
        "id": "convolutional-network",
        "title": "Convolutional network",
        "explanation": (
            "Small 16x16 images of bars, crosses, circles, triangles and squares. A convolution "
            "slides each 3x3 filter over the image, so the same few weights look for the same "
            "pattern everywhere; pooling keeps the strongest response in each 2x2 patch. In the "
            "backward pass a filter's gradient is the correlation of its deltas with its input: "
            "every position where the filter fired contributes."
        ),
        "formulas": [
            "z[f, y, x] = sum_c,i,j W[f, c, i, j] * a[c, y+i, x+j] + b[f]",
            "dE/dW[f, c, i, j] = sum_y,x delta[f, y, x] * a[c, y+i, x+j]",
        ],
        "watch": "The filters as images, their per-filter gradient bars and the feature maps.",
        "try": {
            "change": "Raise the image noise to 0.6.",
            "expect": "Training takes longer and the test accuracy ends lower.",
            "config": cnn_glyphs(noise=0.6),
        },
        "config": cnn_glyphs(),
    },
    {
        "id": "optimizers",
        "title": "Optimizers",
        "explanation": (
            "Plain SGD moves each weight by its current gradient. Momentum keeps a running sum of "
            "past gradients, so steps build up speed along consistent directions. Adam divides "
            "each weight's step by a running size of its gradients, so every weight moves at a "
            "similar pace. On this spiral run, momentum and Adam reach a lower loss than plain "
            "SGD in the same number of steps."
        ),
        "formulas": [
            "momentum: v = mu * v + g,   w = w - eta * v",
            "adam: m = b1 m + (1-b1) g,  v = b2 v + (1-b2) g^2,  w = w - eta * m_hat / (sqrt(v_hat) + eps)",
        ],
        "watch": "The three loss curves side by side (compare view).",
        "try": {
            "change": "Give SGD momentum 0.9 with Nesterov on.",
            "expect": "It behaves much like momentum, a little smoother.",
            "config": _spiral(0.03, momentum=0.9, nesterov=True),
        },
        "config": _spiral(0.03, "adam"),
        "compare": [
            {"label": "sgd", "config": _spiral(0.03)},
            {"label": "momentum 0.9", "config": _spiral(0.03, momentum=0.9)},
            {"label": "adam", "config": _spiral(0.03, "adam")},
        ],
    },
    {
        "id": "your-own-data",
        "title": "Your own data",
        "explanation": (
            "Draw points on the plane with the mouse (left click one class, shift-click the "
            "other), or upload a CSV with numeric columns and a target column. The network "
            "trains on exactly your points. The decision boundary shows what it made of them, "
            "including where it has to guess because you drew nothing there."
        ),
        "formulas": ["the same step: forward, loss, backward, update"],
        "watch": "The data view: your points over the output heatmap.",
        "try": {
            "change": "Add a few points of one class inside the other's region.",
            "expect": "The boundary bends around them; with many such points, it overfits.",
        },
        "mode": "draw",
        "config": {
            "seed": 1,
            "dataset": {"name": "points", "points": DRAWN_POINTS, "test_fraction": 0.0},
            "layers": [
                {"type": "dense", "units": 8, "activation": "tanh"},
                {"type": "dense", "units": 1, "activation": "tanh"},
            ],
            "loss": "mse",
            "optimizer": {"name": "sgd", "learning_rate": 0.03},
            "batch_size": 4,
        },
    },
]

BASIC: list[dict[str, Any]] = [
    {
        "id": "xor",
        "title": "XOR",
        "explanation": "The classic: two inputs, one hidden layer of four tanh units.",
        "config": _xor_step(),
    },
    {
        "id": "spiral",
        "title": "Spiral",
        "explanation": "Two interleaved spirals with two hidden layers of eight tanh units.",
        "config": _spiral(0.01, "adam"),
    },
    {
        "id": "circle",
        "title": "Circle",
        "explanation": "One class inside a ring of the other.",
        "config": {**_spiral(0.03), "dataset": {"name": "circle", "samples": 500, "noise": 0.1}},
    },
    {
        "id": "deep-sigmoid",
        "title": "Deep sigmoid",
        "explanation": "Nine hidden sigmoid layers: watch the gradients vanish.",
        "config": deep_sigmoid(),
    },
    {
        "id": "cnn-glyphs",
        "title": "CNN on glyphs",
        "explanation": "conv-pool-conv-pool-dense on 16x16 images of five shapes.",
        "config": cnn_glyphs(),
    },
    {
        "id": "regression-plane",
        "title": "Regression: plane",
        "explanation": "Fit a tilted plane with a linear output.",
        "config": {
            **_spiral(0.01, "adam"),
            "dataset": {"name": "plane", "samples": 500, "noise": 0.1},
            "layers": [
                {"type": "dense", "units": 8, "activation": "tanh"},
                {"type": "dense", "units": 1, "activation": "linear"},
            ],
        },
    },
    {
        "id": "spiral3-softmax",
        "title": "Three spirals: softmax",
        "explanation": (
            "Three spiral arms, three classes: the output layer has one softmax unit per class, "
            "trained with cross-entropy. Each point of the plane takes the colour of its most "
            "likely class, paler where the network is unsure."
        ),
        "config": {
            "seed": 1,
            "dataset": {"name": "spiral3", "samples": 500, "noise": 0.1, "test_fraction": 0.3},
            "features": ["x1", "x2"],
            "layers": [
                {"type": "dense", "units": 16, "activation": "tanh"},
                {"type": "dense", "units": 16, "activation": "tanh"},
                {"type": "dense", "units": 3, "activation": "softmax"},
            ],
            "loss": "cross_entropy",
            "optimizer": {"name": "adam", "learning_rate": 0.01},
            "batch_size": 32,
        },
    },
    {
        "id": "digits-dense",
        "title": "Digits: dense",
        "explanation": (
            "Real 8x8 handwritten digits, flattened to 64 inputs, one hidden layer of 32 relu "
            "units and a softmax over the ten digits."
        ),
        "config": {
            "seed": 0,
            "dataset": {"name": "digits", "samples": 1797, "noise": 0.0, "test_fraction": 0.3},
            "layers": [
                {"type": "flatten"},
                {"type": "dense", "units": 32, "activation": "relu"},
                {"type": "dense", "units": 10, "activation": "softmax"},
            ],
            "loss": "cross_entropy",
            "optimizer": {"name": "adam", "learning_rate": 0.005},
            "batch_size": 32,
            "init": "he",
        },
    },
    {
        "id": "digits-cnn",
        "title": "Digits: CNN",
        "explanation": (
            "The same digits through conv-pool-conv-pool-dense; 'same' padding keeps the small "
            "8x8 images from shrinking away before the pooling."
        ),
        "config": {
            "seed": 0,
            "dataset": {"name": "digits", "samples": 1797, "noise": 0.0, "test_fraction": 0.3},
            "layers": [
                {"type": "conv2d", "filters": 8, "kernel_size": 3, "padding": "same"},
                {"type": "maxpool2d", "size": 2},
                {"type": "conv2d", "filters": 16, "kernel_size": 3, "padding": "same"},
                {"type": "maxpool2d", "size": 2},
                {"type": "flatten"},
                {"type": "dense", "units": 10, "activation": "softmax"},
            ],
            "loss": "cross_entropy",
            "optimizer": {"name": "adam", "learning_rate": 0.005},
            "batch_size": 32,
            "init": "he",
        },
    },
]


def all_presets() -> list[dict[str, Any]]:
    """Every preset, guided experiments first (numbered), each with a validated config."""
    out = []
    for number, lesson in enumerate(LESSONS, start=1):
        out.append({"lesson": number, "kind": "lesson", **copy.deepcopy(lesson)})
    for preset in BASIC:
        out.append({"lesson": None, "kind": "basic", **copy.deepcopy(preset)})
    for preset in out:
        parse_config(preset["config"])  # a preset that does not validate is a bug, found early
        for run in [*preset.get("compare", []), preset.get("try", {})]:
            if "config" in run:
                parse_config(run["config"])
    return out


def get_preset(preset_id: str) -> dict[str, Any]:
    """One preset by id; KeyError names the known ids."""
    for preset in all_presets():
        if preset["id"] == preset_id:
            return preset
    known = ", ".join(p["id"] for p in all_presets())
    raise KeyError(f"unknown preset {preset_id!r}; known: {known}")
