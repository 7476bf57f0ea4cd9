"""A layer's gradient norm before and after clipping, by hand, for steps of the clipping lesson.

The lesson "gradient-clipping" is the exploding run (eight ReLU layers of 32, weights drawn with
std 0.5) clipped by value at 0.1; its "try" clips the same run by norm at 1. Two steps of each, in
float64 on the whole training set (so the batch is known), against the same steps written out in
NumPy: the per-layer norms of dL/dW and dL/db before clipping (`grad_norm`; `max_grad_norm`, the
largest of the report's steps), after clipping (`grad_norm_after_clip`), which layers clipping
changed, the global norms of the report and its clip event, and the update the optimizer made
with the clipped gradient.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import pytest

from engine.presets import get_preset
from engine.trainer import Trainer

LESSON = get_preset("gradient-clipping")


def one_batch(config: dict[str, Any]) -> Trainer:
    """The lesson's run in float64, each step on the whole training set."""
    out = copy.deepcopy(config)
    out["dtype"] = "float64"
    out["batch_size"] = out["dataset"]["samples"]  # more than the training set: all of it
    return Trainer(out)


def gradients_by_hand(trainer: Trainer) -> dict[str, np.ndarray]:
    """dL/dW and dL/db of every layer: relu MLP, linear output, mse over the training set."""
    w = trainer.get_weights()
    layers = trainer.config.layers
    a, inputs, pre = trainer.x_train, [], []
    for i, layer in enumerate(layers):
        inputs.append(a)
        z = a @ w[f"{i}.W"] + w[f"{i}.b"]  # (n, units)
        pre.append(z)
        a = np.maximum(z, 0.0) if layer.activation == "relu" else z
    grad = 2.0 * (a - trainer.y_train) / a.size  # dL/d(output), mse's mean over all values
    grads = {}
    for i in reversed(range(len(layers))):
        delta = grad * (pre[i] > 0) if layers[i].activation == "relu" else grad  # dL/dz
        grads[f"{i}.W"] = inputs[i].T @ delta
        grads[f"{i}.b"] = delta.sum(axis=0)
        grad = delta @ w[f"{i}.W"].T
    return grads


def layer_norm(grads: dict[str, np.ndarray], index: int) -> float:
    return math.sqrt(sum(float(np.sum(grads[f"{index}.{k}"] ** 2)) for k in ("W", "b")))


def clipped_by_hand(
    grads: dict[str, np.ndarray], clip: dict[str, Any], count: int
) -> tuple[dict[str, np.ndarray], list[bool]]:
    """The gradients as clipping leaves them, and which layers it changed."""
    if clip["kind"] == "value":
        c = clip["threshold"]
        changed = [
            bool(max(np.abs(grads[f"{i}.{k}"]).max() for k in ("W", "b")) > c) for i in range(count)
        ]
        return {name: np.clip(g, -c, c) for name, g in grads.items()}, changed
    total = math.sqrt(sum(layer_norm(grads, i) ** 2 for i in range(count)))
    scale = clip["threshold"] / (total + 1e-6)  # torch's clip_grad_norm_ rule
    assert scale < 1
    return {name: g * scale for name, g in grads.items()}, [True] * count


@pytest.mark.parametrize("run", ["lesson", "try"])
def test_two_clipped_steps_of_the_clipping_lesson_by_hand(run: str) -> None:
    # two steps in one report: `max_grad_norm` is the larger of the two steps' norms before
    # clipping (the interval samples its first step), the other norms are the last step's
    config = LESSON["config"] if run == "lesson" else LESSON["try"]["config"]
    clip = config["gradient_clip"]
    expected_clip = ("value", 0.1) if run == "lesson" else ("norm", 1.0)
    assert (clip["kind"], clip["threshold"]) == expected_clip
    trainer = one_batch(config)
    count = len(trainer.config.layers)
    lr = trainer.config.optimizer.learning_rate
    steps = []
    for _ in range(2):
        weights = trainer.get_weights()
        grads = gradients_by_hand(trainer)
        clipped, changed = clipped_by_hand(grads, clip, count)
        before = [layer_norm(grads, i) for i in range(count)]
        after = [layer_norm(clipped, i) for i in range(count)]
        result = trainer.train_step()
        assert result.diverged is None and result.clipped
        total = math.sqrt(sum(n * n for n in before))
        assert result.grad_norm == pytest.approx(total, rel=1e-10)
        for name, value in trainer.get_weights().items():  # sgd: lr times the clipped gradient
            expected = weights[name] - lr * clipped[name]
            np.testing.assert_allclose(value, expected, rtol=1e-10, atol=1e-13, err_msg=name)
        steps.append((total, before, after, changed))
    (total1, before1, after1, _), (total2, before2, after2, changed2) = steps
    assert total1 > 1e3 * clip["threshold"]  # the exploding run: clipping cuts it a lot
    # the case tells the two norms apart: a layer whose first-step norm, before clipping, is
    # above both its second-step norm and its first-step norm after clipping
    assert any(b1 > max(b2, a1) for b1, b2, a1 in zip(before1, before2, after1, strict=True))

    report = trainer.report()
    assert report.max_grad_norm == pytest.approx(max(total1, total2), rel=1e-10)
    assert report.clip_count == 2
    (event,) = report.events  # one clip event per report, of its first clipped step
    assert event["norm_before"] == pytest.approx(total1, rel=1e-10)
    assert event["norm_after"] == pytest.approx(math.hypot(*after1), rel=1e-10)
    for index, layer in enumerate(report.layers):
        most = max(before1[index], before2[index])
        assert layer["max_grad_norm"] == pytest.approx(most, rel=1e-10), index
        assert layer["grad_norm"] == pytest.approx(before2[index], rel=1e-10), index
        assert layer["grad_norm_after_clip"] == pytest.approx(after2[index], rel=1e-10), index
        assert layer["clipped"] is changed2[index], index


def test_without_clipping_the_norm_after_is_the_norm_before() -> None:
    trainer = one_batch(LESSON["config"] | {"gradient_clip": None})
    grads = gradients_by_hand(trainer)
    trainer.train_step()
    for index, layer in enumerate(trainer.report().layers):
        assert layer["clipped"] is False
        assert layer["grad_norm"] == pytest.approx(layer_norm(grads, index), rel=1e-10)
        assert layer["grad_norm_after_clip"] == pytest.approx(layer["grad_norm"], rel=1e-15)
