"""Ready-made runs: the basic presets and the guided experiments, one concept each.

Every preset is a real run configuration (validated like any other) plus the words the page shows:
a plain-language explanation, the formulas it is about, what to watch and a change to try. The
texts claim only what the engine demonstrably does; tests/engine/test_presets.py checks each claim.
"""

from __future__ import annotations

import copy
from typing import Any

from engine.config import parse_config

# tests/engine/test_presets.py checks each lesson's claims for a minute at the lesson's pace, and at
# least for 40,000 steps: a person watches for a while, and the page keeps training
HORIZON_STEPS = 40_000
HORIZON_SECONDS = 60

_TANH_2_8_8_1 = [
    {"type": "dense", "units": 8, "activation": "tanh"},
    {"type": "dense", "units": 8, "activation": "tanh"},
    {"type": "dense", "units": 1, "activation": "tanh"},
]


def _spiral(learning_rate: float = 0.03, optimizer: str = "sgd", **extra: Any) -> dict[str, Any]:
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
    config = _spiral(learning_rate, optimizer, **extra)
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


def horizon(lesson: dict[str, Any]) -> int:
    """How many steps a lesson's claims must hold for: a minute at its pace, at least 40,000."""
    return max(HORIZON_SECONDS * int(lesson["pace"]), HORIZON_STEPS)


# A lesson may have `fixes`: for each of the divergence banner's buttons ("lr", "clip", "bn"),
# whether it makes the lesson's diverging run train, and a note the banner shows beside it.
# Every lesson has `pace`, the steps per second the page runs it (its single run, its "try" setup
# and its side-by-side runs alike), chosen so that its point unfolds within 10-60 s of watching,
# and `log_steps`: True when the point is in the early steps, so the loss chart's step axis is
# logarithmic.
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
            "change": (
                "Press 'step' a few times (or 'step 10') and reopen the explainer on the same point."
            ),
            "expect": (
                "The average loss falls from the first steps. One point's loss can go up or down "
                "for a while, since each step follows a batch of ten points; once the net has "
                "learned XOR (on most seeds within a few thousand steps) it has shrunk for most "
                "points. Until then the net can sit at a loss near 1, predicting about 0 "
                "everywhere, on some seeds for good: try a new seed."
            ),
        },
        "mode": "explain",
        "pace": 50,
        "log_steps": True,
        "config": _xor_step(),
    },
    {
        "id": "learning-rate",
        "title": "Learning rate",
        "explanation": (
            "The learning rate eta scales every update. Too small and the network crawls: each "
            "step changes almost nothing. Too large and the steps overshoot: here, at 3, the tanh "
            "units saturate within a few steps and the loss stays stuck near or above 1, no "
            "better than predicting 0 everywhere. In between, the loss falls steadily. The three runs below "
            "are the same circle run at 0.003, 0.03 and 3; the one at 0.003 gets there too, about "
            "ten times later."
        ),
        "formulas": ["w = w - eta * dE/dw"],
        "watch": "The loss curves of the three runs side by side (compare view).",
        "try": {
            "change": "While the 0.03 run trains, set its learning rate to 0.3, then back to 0.03.",
            "expect": (
                "At 0.3 the loss jumps up and down. Back at 0.03 the jumping stops within a few "
                "hundred steps and the loss falls again; after a big jump it can take thousands "
                "of steps to get back to where it was."
            ),
        },
        "pace": 200,
        "log_steps": True,
        "config": circle_run(0.03),
        "compare": [
            {"label": "eta = 0.003", "config": circle_run(0.003)},
            {"label": "eta = 0.03", "config": circle_run(0.03)},
            {"label": "eta = 3", "config": circle_run(3.0)},
        ],
    },
    {
        "id": "vanishing-gradients",
        "title": "Vanishing gradients",
        "explanation": (
            "This net has nine hidden sigmoid layers. The sigmoid's slope is at most 0.25, and "
            "the backward pass multiplies one such slope per layer, so the delta shrinks on its "
            "way to the input. The first layers barely learn while the last ones do: the "
            "per-layer gradient bars fade from right to left, the first layer's typically 10,000 "
            "to 10 million times smaller than the output layer's, and the loss stalls near 1, the "
            "loss of predicting 0 everywhere."
        ),
        "formulas": [
            "sigma'(x) = sigma(x) * (1 - sigma(x)) <= 0.25",
            "delta_1 ~ product over layers of (w * sigma'(z))",
        ],
        "watch": "The gradient-norm bars beside each layer and the per-layer gradient chart.",
        "try": {
            "change": "Switch every hidden layer to relu and the init to he.",
            "expect": (
                "The bars stop fading: the first layer's gradient typically stays within a factor "
                "of 20 of the output layer's (with sigmoid it is about a million times smaller)."
            ),
            "config": deep_sigmoid(activation="relu", init="he", learning_rate=0.03),
        },
        "pace": 100,
        "log_steps": False,
        "config": deep_sigmoid(learning_rate=0.03),
    },
    {
        "id": "exploding-gradients",
        "title": "Exploding gradients",
        "explanation": (
            "Here eight ReLU layers of 32 units start with weights drawn too large (std 0.5, "
            "where he init would use 0.25). Each layer multiplies the signal and the delta by more "
            "than one, so the output and the gradients are huge from the first step. The update "
            "overshoots, the loss blows up within a few steps, and Backprop Lens pauses the run "
            "as diverged, keeping the last good weights and saying which layer went non-finite "
            "first. A smaller learning rate does not rescue this run: at a tenth of it, it still "
            "diverges."
        ),
        "formulas": ["||dE/dW_1|| ~ product over layers of ||W_l|| * f'(z_l)"],
        "watch": "The divergence banner, the max-gradient-norm line and the layer bars.",
        "try": {
            "change": "Turn on gradient clipping by norm with threshold 1.",
            "expect": (
                "The same run trains: it never diverges, and its loss falls from its huge start "
                "by a factor of a thousand and more, slowly and with bumps, since no step can move "
                "the weights further than the learning rate times 1."
            ),
            "config": exploding({"kind": "norm", "threshold": 1.0}),
        },
        "pace": 500,
        "log_steps": True,
        "config": exploding(),
        # what each of the divergence banner's fixes does to this run (tests/engine/test_presets.py
        # runs all three), so the banner can say which one trains here
        "fixes": {
            "lr": {"works": False, "note": "still diverges here"},
            "clip": {"works": True, "note": "trains here"},
            "bn": {"works": True, "note": "trains here"},
        },
    },
    {
        "id": "gradient-clipping",
        "title": "Gradient clipping",
        "explanation": (
            "Clipping limits how far one step can go. By value, every gradient component is cut "
            "to [-c, c]. By norm, the whole gradient vector is scaled down when its length "
            "exceeds c, keeping its direction. This is the exploding run of the previous "
            "experiment with clipping by value at 0.1: it never diverges, its loss falls by a "
            "factor of ten thousand and more, and every clipped step is marked with how much was "
            "cut."
        ),
        "formulas": [
            "by value: g = clip(dE/dw, -c, c)",
            "by norm: g = g * min(1, c / ||g||)",
        ],
        "watch": "The clip markers on the loss chart and the 'clipped' flag on each layer.",
        "try": {
            "change": "Switch to clipping by norm with threshold 1.",
            "expect": (
                "It also trains, more slowly here: the direction of each step is kept and only "
                "its length is cut to 1, so from step 3,000 to at least step 20,000 its loss stays "
                "above the value-clipped run's."
            ),
            "config": exploding({"kind": "norm", "threshold": 1.0}),
        },
        "pace": 500,
        "log_steps": True,
        "config": exploding({"kind": "value", "threshold": 0.1}),
    },
    {
        "id": "overfitting",
        "title": "Overfitting",
        "explanation": (
            "Eighty very noisy points (many labels lie on the wrong side of the ring), half of "
            "them held out, and a network with over a thousand weights. The network memorises the "
            "training points, noise included: the training loss falls close to zero (a point or "
            "two may stay wrong) while the test loss reaches its lowest early on and then climbs "
            "and stays up. The gap between the two is "
            "what the network learned that is not true of new data."
        ),
        "formulas": ["gap = E_test - E_train"],
        "watch": "Train and test loss drifting apart in the loss chart; the jagged boundary.",
        "try": {
            "change": "Turn on early stopping (patience 10).",
            "expect": "Training stops near the test loss's low point, with a smaller gap.",
            "config": overfitting(early_stopping={"patience": 10, "eval_every": 10}),
        },
        "pace": 100,
        "log_steps": True,
        "config": overfitting(),
    },
    {
        "id": "early-stopping",
        "title": "Early stopping",
        "explanation": (
            "Early stopping watches the test loss every 10 steps. When it has not improved for "
            "'patience' evaluations, training stops and the weights of the best step are put "
            "back. On this overfitting run it stops soon after the test loss bottoms out and "
            "keeps the network from that point."
        ),
        "formulas": ["stop when E_test has not improved by min_delta for patience evaluations"],
        "watch": "The best-step marker on the loss chart and the early-stop event.",
        "try": {
            "change": "Raise patience to 40.",
            "expect": (
                "It trains 400 steps past its best step instead of 100, then restores the best "
                "weights it saw: the same ones, or better ones if the test loss found a new low "
                "meanwhile."
            ),
            "config": overfitting(early_stopping={"patience": 40, "eval_every": 10}),
        },
        "pace": 100,
        "log_steps": True,
        "config": overfitting(early_stopping={"patience": 10, "eval_every": 10}),
    },
    {
        "id": "relu-vs-sigmoid",
        "title": "ReLU vs sigmoid",
        "explanation": (
            "The same four-layer net with ReLU units or with sigmoid units, both with xavier "
            "init. ReLU passes the gradient unchanged wherever a unit is active, so this net "
            "learns the circle within a few hundred steps. The price: a unit whose input is "
            "negative for every sample passes no gradient at all and stops learning, a dead ReLU; "
            "the layer statistics count them. The sigmoid net sits on a plateau near loss 1 "
            "(predicting about 0 everywhere) for more than ten thousand steps before it learns, "
            "often for the whole run."
        ),
        "formulas": [
            "relu'(z) = 1 if z > 0 else 0",
            "sigma'(z) = sigma(z) * (1 - sigma(z)) <= 0.25",
        ],
        "watch": "The dead-ReLU fraction per layer and the loss chart.",
        "try": {
            "change": "Switch the hidden layers to sigmoid.",
            "expect": (
                "The loss sits near 1 for more than ten thousand steps, where relu needed a few "
                "hundred, and never gets visibly below relu's."
            ),
            "config": relu_net("sigmoid"),
        },
        "pace": 500,
        "log_steps": True,
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
            "The nine-layer sigmoid net of the vanishing-gradient experiment with a batch-norm "
            "layer after every hidden layer; here every step uses all 140 training points as its "
            "batch, with momentum 0.9. Batch norm re-centres and re-scales each unit over the batch, then lets the "
            "network pick a new scale (gamma) and shift (beta). Signals and deltas keep a healthy "
            "size through all nine layers: after its loss jumps about for a few dozen steps, the "
            "batch-norm net learns the circle within a few hundred steps and stays near 0, while "
            "the plain net stays stalled near 1. Evaluation uses running averages of the batch "
            "statistics; "
            "with small batches they drift away from what training sees, and this net's evaluated "
            "loss turns unstable after some thousand steps, which is why the batch here is the "
            "whole training set."
        ),
        "formulas": [
            "x_hat = (x - mu_B) / sqrt(sigma_B^2 + eps)",
            "y = gamma * x_hat + beta",
        ],
        "watch": "The live batch mean and variance of a batch-norm layer, and the loss chart.",
        "try": {
            "change": "Remove the batch-norm layers.",
            "expect": "The loss stalls near 1 again: the net predicts about 0 everywhere.",
            "config": full_batch_deep_sigmoid(batchnorm=False),
        },
        "pace": 25,
        "log_steps": True,
        "config": full_batch_deep_sigmoid(batchnorm=True),
        "compare": [
            {"label": "with batch norm", "config": full_batch_deep_sigmoid(batchnorm=True)},
            {"label": "plain", "config": full_batch_deep_sigmoid(batchnorm=False)},
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
            "every position where the filter fired contributes. This net reaches 90 % test "
            "accuracy within a few hundred steps."
        ),
        "formulas": [
            "z[f, y, x] = sum_c,i,j W[f, c, i, j] * a[c, y+i, x+j] + b[f]",
            "dE/dW[f, c, i, j] = sum_y,x delta[f, y, x] * a[c, y+i, x+j]",
        ],
        "watch": "The filters as images, their per-filter gradient bars and the feature maps.",
        "try": {
            "change": "Raise the image noise to 0.8.",
            "expect": (
                "Training takes longer and the test accuracy stays a few points lower throughout."
            ),
            "config": lesson_cnn(noise=0.8),
        },
        "pace": 20,
        "log_steps": True,
        "config": lesson_cnn(),
    },
    {
        "id": "optimizers",
        "title": "Optimizers",
        "explanation": (
            "Plain SGD moves each weight by its current gradient. Momentum keeps a running sum of "
            "past gradients, so steps build up speed along consistent directions: with mu = 0.9 a "
            "steady gradient moves a weight about ten times as far per step. Adam divides each "
            "weight's step by a running size of its gradients, so every weight moves at a similar "
            "pace. Here all three train the circle run of the learning-rate experiment at the "
            "same learning rate, 0.001: momentum and Adam bring the loss down many times sooner "
            "than plain SGD, which gets there eventually too."
        ),
        "formulas": [
            "momentum: v = mu * v + g,   w = w - eta * v",
            "adam: m = b1 m + (1-b1) g,  v = b2 v + (1-b2) g^2,  w = w - eta * m_hat / (sqrt(v_hat) + eps)",
        ],
        "watch": "The three loss curves side by side (compare view).",
        "try": {
            "change": "Give plain SGD ten times the learning rate, 0.01, and no momentum.",
            "expect": (
                "After momentum's first few dozen steps of building up speed, it keeps pace with "
                "momentum 0.9 at 0.001: for a steady gradient, momentum 0.9 amounts to a ten "
                "times larger step."
            ),
            "config": circle_run(0.01),
        },
        "pace": 200,
        "log_steps": True,
        "config": circle_run(0.001, "adam"),
        "compare": [
            {"label": "sgd", "config": circle_run(0.001)},
            {"label": "momentum 0.9", "config": circle_run(0.001, momentum=0.9)},
            {"label": "adam", "config": circle_run(0.001, "adam")},
        ],
    },
    {
        "id": "your-own-data",
        "title": "Your own data",
        "explanation": (
            "Draw points in the data view: click adds a blue point, shift-click an orange one and "
            "alt-click removes the nearest. Or use 'Upload CSV/NPZ' in the Data section of the "
            "Build panel: a file with numeric input columns and a target column. The network "
            "trains on exactly your points. The decision boundary shows what it made of them, "
            "including where it has to guess because you drew nothing there."
        ),
        "formulas": ["the same step: forward, loss, backward, update"],
        "watch": "The data view: your points over the output heatmap.",
        "try": {
            "change": (
                "Shift-click a few orange points in among the blue ones (or click blue ones in "
                "among the orange)."
            ),
            "expect": (
                "Training starts again on the new points, and this time the loss stays far above "
                "the first drawing's and falls far more slowly: the boundary has to bend around "
                "your new points, which takes thousands of steps, and points close to the other "
                "class can stay on the wrong side for a long time."
            ),
        },
        "mode": "draw",
        "pace": 300,
        "log_steps": False,
        "config": drawn_points(),
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
