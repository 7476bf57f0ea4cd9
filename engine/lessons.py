"""The guided experiments: one concept each, with the words the page shows beside its runs.

A lesson is a real run configuration (validated like any other, built by engine.recipes) plus a
plain-language explanation, the formulas it is about, what to watch and a change to try. The
texts claim only what the engine demonstrably does: tests/engine/test_presets.py checks each claim
for `horizon(lesson)` steps on several seeds.
"""

from __future__ import annotations

from typing import Any

from engine.recipes import (
    circle_run,
    deep_sigmoid,
    drawn_points,
    exploding,
    full_batch_deep_sigmoid,
    lesson_cnn,
    overfitting,
    relu_net,
    xor_run,
)

# tests/engine/test_presets.py checks each lesson's claims for a minute at the lesson's pace, and at
# least for 40,000 steps: a person watches for a while, and the page keeps training
HORIZON_STEPS = 40_000
HORIZON_SECONDS = 60


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
        "config": xor_run(),
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
