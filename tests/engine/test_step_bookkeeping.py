"""What a training step records besides the update: the numbers a report merges (batch loss,
largest gradient norm, clip count and events, per-layer maxima, update ratios), the epoch count,
the divergence message and rollback, and the early-stopping check.

Small float64 networks trained on the whole training set per step, so every number can be
written out by hand; a single linear unit where a gradient norm has to be set on purpose.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pytest

from engine.trainer import DIVERGENCE_UPDATE, StepResult, Trainer

DIVERGED_TAIL = (
    ". The last good weights (step 0) are kept and the optimizer state is cleared. "
    "Try a lower learning rate, gradient clipping or batch norm."
)


def config(**overrides: Any) -> dict[str, Any]:
    """A 2-5-1 tanh net on 20 xor points, float64, one full batch per step."""
    base: dict[str, Any] = {
        "seed": 3,
        "dtype": "float64",
        "dataset": {"name": "xor", "samples": 40, "noise": 0.2, "test_fraction": 0.5},
        "features": ["x1", "x2"],
        "layers": [
            {"type": "dense", "units": 5, "activation": "tanh"},
            {"type": "dense", "units": 1, "activation": "tanh"},
        ],
        "loss": "mse",
        "optimizer": {"name": "sgd", "learning_rate": 0.1},
        "batch_size": 20,
    }
    base.update(overrides)
    return base


def linear_unit(learning_rate: float = 0.1) -> Trainer:
    """One linear unit (W (2, 1), b) under mse: its gradient is the global gradient."""
    return Trainer(
        config(
            layers=[{"type": "dense", "units": 1, "activation": "linear"}],
            optimizer={"name": "sgd", "learning_rate": learning_rate},
        )
    )


def mse_gradient(trainer: Trainer) -> tuple[float, float]:
    """(loss, gradient norm) of a linear unit's mse on the whole training set, by hand."""
    w = trainer.get_weights()
    x, y = trainer.x_train, trainer.y_train
    error = x @ w["0.W"] + w["0.b"] - y  # (n, 1)
    grad_pred = 2.0 * error / len(x)
    grad_w, grad_b = x.T @ grad_pred, grad_pred.sum()
    return float(np.mean(error**2)), math.sqrt(float(np.sum(grad_w**2)) + float(grad_b) ** 2)


# ----------------------------------------------------------------------------- one interval


def test_a_report_merges_the_steps_since_the_previous_one() -> None:
    trainer = Trainer(
        config(
            regularization={"kind": "l2", "rate": 0.05},
            gradient_clip={"kind": "value", "threshold": 0.02},
        )
    )
    results = [trainer.train_step() for _ in range(3)]
    assert [r.step for r in results] == [1, 2, 3]
    assert all(r.clipped for r in results) and all(r.loss > r.data_loss for r in results)
    report = trainer.report()
    assert report.batch_loss == pytest.approx(sum(r.loss for r in results) / 3, rel=1e-15)
    assert report.max_grad_norm == max(r.grad_norm for r in results)
    assert report.clip_count == 3
    (event,) = report.events  # one clip event per interval, of its first clipped step
    first = results[0]
    assert event == {
        "type": "clip",
        "step": 1,
        "kind": "value",
        "threshold": 0.02,
        "norm_before": first.grad_norm,
        "norm_after": event["norm_after"],
        "fraction": first.clip_fraction,
        "message": f"gradient clipped by value: norm {first.grad_norm:.3g} -> "
        f"{event['norm_after']:.3g}",
    }
    assert 0 < event["norm_after"] < first.grad_norm
    empty = trainer.report()  # the next interval starts empty
    assert (empty.batch_loss, empty.max_grad_norm, empty.clip_count, empty.events) == (
        None,
        0.0,
        0,
        [],
    )


def test_clipping_by_value_flags_only_the_layers_it_changed() -> None:
    trainer = Trainer(config(gradient_clip={"kind": "value", "threshold": 1.0}))
    trainer.train_step()
    grads = [  # the layers' own gradients, before clipping (the step clips a flat copy)
        max(float(np.abs(p.grad).max()) for p in layer.params.values())
        for layer in trainer.network.layers
    ]
    assert grads[0] > 1.0 > grads[1]  # 1.77 and 0.80: only layer 0 has values to clip
    assert [layer["clipped"] for layer in trainer.report().layers] == [True, False]


def test_clipping_by_norm_flags_every_layer() -> None:
    trainer = Trainer(config(gradient_clip={"kind": "norm", "threshold": 0.05}))
    assert trainer.train_step().clipped
    assert [layer["clipped"] for layer in trainer.report().layers] == [True, True]


def test_the_largest_layer_norm_samples_the_first_and_every_eighth_step() -> None:
    # One linear unit, set before each step to the least-squares fit plus an offset d of its
    # bias: the residual is then orthogonal to x and 1, so the gradient norm is
    # 2 |d| sqrt(1 + |mean x|^2), any value asked for. The report's per-layer maximum folds in
    # steps 1, 9, 17, ... of its interval (and the last step's gradient): a norm on steps 2-8
    # must not show, one on step 9 must.
    trainer = linear_unit()
    x, y = trainer.x_train, trainer.y_train
    fit, *_ = np.linalg.lstsq(np.hstack([x, np.ones((len(x), 1))]), y, rcond=None)
    per_unit = 2.0 * math.sqrt(1.0 + float(np.sum(x.mean(axis=0) ** 2)))

    def interval(norms: list[float]) -> tuple[float, list[float]]:
        seen = []
        for norm in norms:
            bias = fit[2] + norm / per_unit
            trainer.set_weights({"0.W": fit[:2].copy(), "0.b": np.array(bias)})
            seen.append(trainer.train_step().grad_norm)
        (layer,) = trainer.report().layers
        return layer["max_grad_norm"], seen

    # norms below 1, step 9 above step 1 by less than a factor sqrt 2: only a square compares
    got, seen = interval([0.5, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 0.6, 0.1])
    np.testing.assert_allclose(seen, [0.5, *[2.0] * 7, 0.6, 0.1], rtol=1e-9)
    assert got == pytest.approx(seen[8], rel=1e-12)
    # norms above 1, the same pattern
    got, seen = interval([2.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 2.5, 0.1])
    np.testing.assert_allclose(seen, [2.0, *[5.0] * 7, 2.5, 0.1], rtol=1e-9)
    assert got == pytest.approx(seen[8], rel=1e-12)


def test_a_clip_setting_that_clips_nothing_counts_no_clip() -> None:
    trainer = Trainer(config(gradient_clip={"kind": "norm", "threshold": 1e6}))
    results = [trainer.train_step() for _ in range(3)]
    assert not any(r.clipped for r in results) and all(0 < r.grad_norm < 1e6 for r in results)
    report = trainer.report()
    assert (report.clip_count, report.events) == (0, [])
    assert [layer["clipped"] for layer in report.layers] == [False, False]


# ----------------------------------------------------------------------------- update ratio


def test_only_the_steps_asked_to_measure_their_update_do() -> None:
    trainer = Trainer(config())
    for _ in range(3):
        trainer.train_step()  # bare steps measure nothing
    assert [layer["update_ratio"] for layer in trainer.report().layers] == [None, None]
    trainer.train(1)
    w1 = trainer.get_weights()
    trainer.train(1)  # a bounded run measures its last step's update
    w2 = trainer.get_weights()
    trainer.train_step()  # and the step after it measures nothing again
    w3 = trainer.get_weights()
    for index, layer in enumerate(trainer.report().layers):
        names = (f"{index}.W", f"{index}.b")
        update = math.sqrt(sum(float(np.sum((w2[n] - w1[n]) ** 2)) for n in names))
        weight = math.sqrt(sum(float(np.sum(w3[n] ** 2)) for n in names))
        assert layer["update_ratio"] == pytest.approx(update / weight, rel=1e-12)


# ----------------------------------------------------------------------------- epochs


def test_a_full_batch_step_is_one_epoch() -> None:
    trainer = Trainer(config())
    epochs = []
    for _ in range(3):
        trainer.train_step()
        epochs.append(trainer.epoch)
    assert epochs == [0, 1, 2]  # an epoch is counted when the next one starts


# ----------------------------------------------------------------------------- regularization


def test_l1_pushes_no_weight_that_is_exactly_zero() -> None:
    plain = Trainer(config())
    weights = plain.get_weights()
    weights["0.W"][0, 0] = 0.0  # sign(0) = 0: the penalty has no slope there
    plain.set_weights(weights)
    l1 = Trainer(config(regularization={"kind": "l1", "rate": 0.5}))
    l1.set_weights(weights)
    plain.train_step()
    l1.train_step()
    assert l1.get_weights()["0.W"][0, 0] == plain.get_weights()["0.W"][0, 0]
    assert l1.get_weights()["0.W"][0, 1] != plain.get_weights()["0.W"][0, 1]


@pytest.mark.parametrize("rate", [0.0, 1.0])
def test_l2_penalty_at_rate_zero_and_one(rate: float) -> None:
    trainer = Trainer(config(regularization={"kind": "l2", "rate": rate}))
    w = trainer.get_weights()
    result = trainer.train_step()
    penalty = 0.5 * rate * sum(float(np.sum(w[n] ** 2)) for n in ("0.W", "1.W"))
    assert result.loss - result.data_loss == pytest.approx(penalty, rel=1e-12, abs=0.0)


def test_no_regularization_adds_nothing_whatever_its_rate() -> None:
    # kind "none" with a rate: the config takes it (a rate has no meaning without a kind)
    plain = Trainer(config())
    off = Trainer(config(regularization={"kind": "none", "rate": 0.5}))
    for _ in range(2):
        a, b = plain.train_step(), off.train_step()
        assert b.loss == b.data_loss == a.loss
    for name, value in plain.get_weights().items():
        np.testing.assert_array_equal(off.get_weights()[name], value)


# ----------------------------------------------------------------------------- divergence


def test_an_exploding_gradient_stops_the_step_and_says_how_large_it_was() -> None:
    # lr 10 and a gradient norm of ~6.5e29: lr * norm is past 1e30, while norm / lr is not
    trainer = linear_unit(learning_rate=10.0)
    trainer.set_weights({"0.b": np.array([2.5e29])}, partial=True)
    before = trainer.get_weights()
    loss, norm = mse_gradient(trainer)
    assert norm * 10.0 > 1e30 > norm / 10.0
    trainer.evaluate()
    result = trainer.train_step()
    where = "layer 0 (dense) (5e+29)"  # the largest |gradient|: the bias's, 2 * 2.5e29
    message = (
        f"the gradient norm exploded to {norm:.3g} at step 1; {where} had the largest gradient"
    )
    assert result == StepResult(
        0, loss, loss, result.grad_norm, False, 0.0, message + DIVERGED_TAIL
    )
    assert result.grad_norm == pytest.approx(norm, rel=1e-12)
    assert trainer.diverged == result.diverged and trainer.step == 0
    for name, value in trainer.get_weights().items():
        np.testing.assert_array_equal(value, before[name])
    report = trainer.report()  # evaluated again: the numbers are the kept weights'
    assert report.eval_step == 0 and report.loss == pytest.approx(loss, rel=1e-12)
    assert report.events == [
        {"type": "diverged", "step": 0, "layer": where, "message": trainer.diverged}
    ]


def test_an_update_of_exactly_the_divergence_bound_is_still_a_step() -> None:
    # DIVERGENCE_UPDATE bounds lr * |g| from above: an update of exactly 1e30 is taken, one a
    # rounding step larger is an explosion. The norm is the trainer's own (a probe step at
    # lr 10 diverges and reports it); the rates are the floats around 1e30 / norm.
    def unit(learning_rate: float) -> Trainer:
        trainer = linear_unit(learning_rate)
        trainer.set_weights({"0.b": np.array([2.5e29])}, partial=True)
        return trainer

    norm = unit(10.0).train_step().grad_norm
    assert norm == pytest.approx(mse_gradient(unit(10.0))[1], rel=1e-12)
    rates = [1e30 / norm]
    for _ in range(4):
        rates += [math.nextafter(rates[0], 0.0), math.nextafter(rates[-1], math.inf)]
    exact = min((lr for lr in rates if lr * norm == DIVERGENCE_UPDATE), default=None)
    assert exact is not None, "no float rate makes lr * norm exactly 1e30"
    above = math.nextafter(exact, math.inf)
    while above * norm == DIVERGENCE_UPDATE:
        above = math.nextafter(above, math.inf)

    at_bound = unit(exact)
    before = at_bound.get_weights()["0.b"]
    result = at_bound.train_step()
    assert result.diverged is None and at_bound.step == 1 and at_bound.diverged is None
    assert result.grad_norm == norm
    assert at_bound.get_weights()["0.b"][0] < before[0] - 1e29  # the step moved the bias

    past = unit(above).train_step()
    assert past.diverged is not None and past.diverged.startswith(
        f"the gradient norm exploded to {norm:.3g} at step 1;"
    )


def test_a_cosine_schedule_rising_to_a_huge_rate_explodes_a_small_gradient() -> None:
    # min_lr has no upper bound, so a cosine "decay" towards 1e31 raises the rate to 1e31 at
    # step 2; the divergence check uses the scheduled rate, and a gradient norm below 1 is
    # reported as what exploded, like a large one. The unit starts at the least-squares fit
    # with its bias 0.1 off, a gradient norm well below 1. (Step 1's rate, 1e31 + (0.1 - 1e31),
    # rounds to 0 at this scale: the weights do not move before step 2.)
    trainer = Trainer(
        config(
            layers=[{"type": "dense", "units": 1, "activation": "linear"}],
            optimizer={
                "name": "sgd",
                "learning_rate": 0.1,
                "schedule": {"kind": "cosine", "total_steps": 1, "min_lr": 1e31},
            },
        )
    )
    x, y = trainer.x_train, trainer.y_train
    fit, *_ = np.linalg.lstsq(np.hstack([x, np.ones((len(x), 1))]), y, rcond=None)
    trainer.set_weights({"0.W": fit[:2].copy(), "0.b": fit[2] + 0.1})
    assert trainer.train_step().diverged is None
    np.testing.assert_array_equal(trainer.get_weights()["0.b"], fit[2] + 0.1)  # rate 0
    loss, norm = mse_gradient(trainer)
    result = trainer.train_step()
    assert 0.0 < result.grad_norm < 1.0
    assert result.grad_norm == pytest.approx(norm, rel=1e-12)
    assert result.diverged is not None
    assert re.fullmatch(
        re.escape(f"the gradient norm exploded to {result.grad_norm:.3g} at step 2; ")
        + r"layer 0 \(dense\) \(\S+\) had the largest gradient"
        + re.escape(DIVERGED_TAIL),
        result.diverged,
    ), result.diverged
    assert result.data_loss == pytest.approx(loss, rel=1e-12) and trainer.step == 1


def test_a_non_finite_loss_names_the_layer_that_went_non_finite_first() -> None:
    trainer = linear_unit()
    trainer.set_weights({"0.W": np.full((2, 1), 1e308), "0.b": np.array([1e308])})
    with np.errstate(all="ignore"):  # as train() does: overflow is caught, not warned about
        result = trainer.train_step()
    assert result.diverged == (
        "the loss became inf at step 1; layer 0 (dense) preactivation went non-finite first"
        + DIVERGED_TAIL
    )
    assert result.data_loss == result.loss == math.inf


def test_an_infinite_loss_with_finite_gradients_stops_the_step() -> None:
    # logits +-1e308: softmax cross-entropy of the class at -1e308 is inf, while its gradient
    # (softmax - onehot) / batch stays finite
    trainer = Trainer(
        config(
            dataset={"name": "spiral3", "samples": 40, "noise": 0.1, "test_fraction": 0.5},
            layers=[
                {"type": "dense", "units": 4, "activation": "tanh"},
                {"type": "dense", "units": 3, "activation": "softmax"},
            ],
            loss="cross_entropy",
        )
    )
    trainer.set_weights(
        {"1.W": np.zeros((4, 3)), "1.b": np.array([1e308, -1e308, 0.0])}, partial=True
    )
    with np.errstate(all="ignore"):
        result = trainer.train_step()
    assert math.isfinite(result.grad_norm) and result.data_loss == math.inf
    assert re.fullmatch(
        r"the loss became inf at step 1; layer 1 \(dense\) \(\S+\) had the largest gradient"
        + re.escape(DIVERGED_TAIL),
        result.diverged or "",
    ), result.diverged


# ----------------------------------------------------------------------------- early stopping


def still(**early_stopping: Any) -> Trainer:
    """A run whose weights cannot move (lr 1e-300): every evaluation sees the same loss."""
    return Trainer(
        config(
            optimizer={"name": "sgd", "learning_rate": 1e-300},
            early_stopping={"patience": 2, "eval_every": 3, **early_stopping},
        )
    )


@pytest.mark.parametrize("min_delta", [0.0, 0.01])
def test_early_stopping_counts_evaluations_without_improvement(min_delta: float) -> None:
    trainer = still(min_delta=min_delta)
    stops = [trainer.train_step().early_stopped for _ in range(9)]
    # evaluations at steps 3, 6 and 9: the first is the best, the next two do not improve
    assert stops == [False] * 8 + [True]
    assert trainer.stopped_early is True and trainer.best_step == 3
    report = trainer.report()
    assert report.test_loss == trainer.best_loss  # the restored weights, evaluated again
    (event,) = report.events
    assert event == {
        "type": "early_stop",
        "step": 9,
        "best_step": 3,
        "best_loss": trainer.best_loss,
        "restored": True,
        "message": "no improvement of the test loss for 2 evaluations; "
        f"best step 3 (loss {trainer.best_loss:.4g}); its weights were restored",
    }


def test_early_stopping_without_restoring_says_so() -> None:
    trainer = still(restore_best=False)
    for _ in range(9):
        trainer.train_step()
    (event,) = trainer.report().events
    assert event["restored"] is False
    assert event["message"] == (
        "no improvement of the test loss for 2 evaluations; "
        f"best step 3 (loss {trainer.best_loss:.4g})"
    )


def test_early_stopping_without_a_test_set_watches_the_training_loss() -> None:
    trainer = Trainer(
        config(
            dataset={"name": "xor", "samples": 20, "noise": 0.2, "test_fraction": 0.0},
            early_stopping={"patience": 2, "eval_every": 1},
        )
    )
    trainer.train_step()
    assert trainer.best_step == 1 and trainer.best_loss == trainer.evaluate()["loss"]
