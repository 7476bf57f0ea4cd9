"""Each guided experiment's claims, checked along whole runs, on several seeds.

A lesson's text must stay true for as long as a person watches it: the page runs a lesson at its
`pace` (steps per second) and keeps training, and the "new seed" button can give any seed. So every
claim is checked on the lesson's own seed and at least two others, at checkpoints from the first
steps to `horizon(lesson)` (a minute at the lesson's pace, at least 40,000 steps), on the numbers
the page draws: `Trainer.evaluate()` over the whole train and test sets, and the per-layer gradient
norms of `Trainer.report()`. Side-by-side runs are compared at equal steps, as the page steps them
in lockstep.

The runs are computed once per module in worker processes (one per CPU, started by the `runs`
fixture), identical runs once; each test waits only for the runs it reads, and asking for them
moves them to the front of the queue. How they are run, and the readers of their curves, are in
tests/engine/lesson_runs.py.

What "visible" means. The loss chart spans 0..1 on about 160 pixels (the compare view's height), so:
  - a difference of at most VISIBLE = 0.02 (3 px) is invisible: "never visibly worse";
  - CLEARLY = 0.2 (32 px) is unmistakable: "clearly better";
  - a rise of JUMP = 0.05 (8 px) above the lowest loss so far is a jump a person notices;
  - "stalled near 1" is within STALL = 0.15 of 1, the loss of predicting 0 everywhere (a stalled
    net's loss wobbles up to about 1.11 while its output drifts around 0).
Regression losses that start near 10^5 are read on a log scale, where a factor of 10 (a decade) is
the visible unit.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import statistics
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import pytest

from engine.config import parse_config
from engine.lessons import LESSONS, horizon
from engine.presets import all_presets
from engine.trainer import Trainer
from tests.engine.lesson_runs import (
    Runs,
    completed,
    largest_factor,
    largest_rise,
    lesson,
    losses,
    seeds,
)

# The tests run in any order (pytest-randomly) and share one pool of runs, so the first test may
# wait for nearly all of them (about 3 minutes on 2 cores): a longer timeout than the suite's 120 s.
pytestmark = pytest.mark.timeout(900)

VISIBLE = 0.02
CLEARLY = 0.2
JUMP = 0.05
STALL = 0.15


@pytest.fixture(scope="module")
def runs() -> Iterator[Runs]:
    workers = os.cpu_count() or 1
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    started = Runs(pool, workers)
    try:
        yield started
    finally:
        started.stop()
        pool.shutdown(cancel_futures=True)


# ---------------------------------------------------------------------------------- structure


def test_every_preset_is_complete_and_valid() -> None:
    presets = all_presets()
    ids = [p["id"] for p in presets]
    assert len(ids) == len(set(ids))
    for required in ("xor", "spiral", "deep-sigmoid", "cnn-glyphs"):
        assert required in ids
    lessons = [p for p in presets if p["kind"] == "lesson"]
    assert [p["lesson"] for p in lessons] == list(range(1, 13))
    assert [p["id"] for p in lessons] == [p["id"] for p in LESSONS]
    for p in lessons:
        sentences = [s for s in p["explanation"].split(". ") if s.strip()]
        assert 3 <= len(sentences) <= 6, (p["id"], len(sentences))
        assert p["formulas"] and p["watch"] and p["try"]["change"] and p["try"]["expect"]
        assert isinstance(p["pace"], int) and 1 <= p["pace"] <= 1500, p["id"]
        assert isinstance(p["log_steps"], bool), p["id"]
        assert horizon(p) == max(60 * p["pace"], 40_000)
        parse_config(p["config"])


def test_horizon_is_a_minute_at_the_pace_and_at_least_40000_steps() -> None:
    assert horizon({"pace": 20}) == 40_000
    assert horizon({"pace": 1500}) == 90_000


# ----------------------------------------------------------------------- 1. how a step works


def test_how_a_step_works_average_falls_and_points_improve_once_learned(runs: Runs) -> None:
    # From the first step: the average loss is below its start and never visibly rises again.
    # Wherever the net has learned XOR (training accuracy >= 95 %), most points (more than half)
    # have a lower loss than at step 0. Each seed either learns XOR by the end or sits within
    # STALL of loss 1 from step 3,000 to the end ("for good"); most tested seeds learn it by step
    # 3,000, and one (55555) sits for good: both cases of the text happen.
    config = lesson("how-a-step-works")["config"]
    assert [layer["units"] for layer in config["layers"]] == [4, 1]
    learned_by_3000, stuck = 0, 0
    for seed in seeds("how-a-step-works"):
        points = runs.get("how-a-step-works", "samples", seed)
        assert points[-1]["step"] == horizon(lesson("how-a-step-works"))
        first = np.array(points[0]["samples"])
        previous = points[0]["loss"]
        for p in points[1:]:
            assert p["loss"] < points[0]["loss"], (seed, p["step"], p["loss"])
            assert p["loss"] <= previous + VISIBLE, (seed, p["step"], previous, p["loss"])
            previous = p["loss"]
            if p["accuracy"] >= 0.95:
                improved = float(np.mean(np.array(p["samples"]) < first))
                assert improved > 0.5, (seed, p["step"], improved)
        late = [p for p in points if p["step"] >= 3000]
        if points[-1]["accuracy"] < 0.95:
            stuck += 1
            assert all(abs(p["loss"] - 1.0) <= STALL for p in late), (seed, late)
        learned_by_3000 += late[0]["accuracy"] >= 0.95
    assert learned_by_3000 > len(seeds("how-a-step-works")) / 2 and stuck >= 1


# --------------------------------------------------------------------------- 2. learning rate


def test_learning_rate_middle_below_small_and_large_never_settles(runs: Runs) -> None:
    # From step 10 (the first checkpoint where a run has moved) 0.03 is never visibly above 0.003,
    # and clearly below it from step 100 to 1,000 (0.003 gets there about ten times later); 3
    # stays above 1 - STALL (near or above 1, the loss of predicting 0 everywhere) from step 10
    # to the end.
    preset = lesson("learning-rate")
    assert [r["label"] for r in preset["compare"]] == ["eta = 0.003", "eta = 0.03", "eta = 3"]
    for seed in seeds("learning-rate"):
        small, middle, large = (
            losses(runs.get("learning-rate", r["label"], seed), start=10) for r in preset["compare"]
        )
        assert len(small) == len(middle) == len(large) and max(middle) == horizon(preset)
        for step in middle:
            assert middle[step] <= small[step] + VISIBLE, (seed, step, middle[step], small[step])
            if 100 <= step <= 1000:
                assert small[step] - middle[step] >= CLEARLY, (seed, step, small[step])
            assert large[step] > 1.0 - STALL, (seed, step, large[step])


def test_learning_rate_try_jumps_at_0_3_and_settles_back_at_0_03(runs: Runs) -> None:
    # Whenever the student switches (steps 300, 3,000, 10,000, 40,000): within 1,000 steps at 0.3
    # the loss jumps visibly above its lowest value; from 500 steps after going back to 0.03 it
    # never rises visibly again, and 2,000 steps back it is at least JUMP below the highest loss
    # it reached at 0.3 (it falls again, though not always back to where it was).
    for seed in seeds("learning-rate"):
        switches = runs.get("learning-rate", "switch", seed)
        for step, s in switches.items():
            rise = largest_rise(s["high"], s["before"])
            assert rise >= JUMP, (seed, step, s["before"], s["high"])
            settled = s["back"][10:]  # evaluated every 50 steps: from 500 steps after the switch
            assert largest_rise(settled) <= VISIBLE, (seed, step, settled)
            assert s["back"][-1] <= max(s["high"]) - JUMP, (seed, step, s["high"], s["back"][-1])


# --------------------------------------------------------------------- 3. vanishing gradients


def rolling_medians(values: list[float], width: int = 9) -> list[float]:
    """Medians of every `width` consecutive values: what a person reads off a jittery line."""
    return [statistics.median(values[i : i + width]) for i in range(len(values) - width + 1)]


def test_vanishing_gradients_fade_and_the_loss_stalls(runs: Runs) -> None:
    # From the first step: the first layer's gradient norm is always more than 20x smaller than
    # the output layer's, and typically (rolling median of 9 checkpoints) 10^4x or more; from
    # step 30 (after its first-steps wobble) the loss stays within STALL of 1.
    for seed in seeds("vanishing-gradients"):
        points = runs.get("vanishing-gradients", "lesson", seed)
        assert completed(points, horizon(lesson("vanishing-gradients")))
        ratios = [p["grads"][0] / p["grads"][-1] for p in points[1:]]
        assert max(ratios) < 0.05, (seed, max(ratios))
        assert max(rolling_medians(ratios)) <= 1e-4, (seed, max(rolling_medians(ratios)))
        for step, loss in losses(points, start=30).items():
            assert abs(loss - 1.0) <= STALL, (seed, step, loss)


def test_vanishing_gradients_try_relu_he_keeps_the_first_layer_gradient(runs: Runs) -> None:
    # From the first step to the end, the first layer's gradient is typically (rolling median of
    # 9 checkpoints) within a factor of 20 of the output layer's: at least 1/20 of it.
    for seed in seeds("vanishing-gradients"):
        points = runs.get("vanishing-gradients", "try", seed)
        assert completed(points, horizon(lesson("vanishing-gradients")))
        ratios = [p["grads"][0] / p["grads"][-1] for p in points[1:]]
        assert min(rolling_medians(ratios)) >= 0.05, (seed, min(rolling_medians(ratios)))


# --------------------------------------------------------------------- 4. exploding gradients


def test_exploding_gradients_diverge_on_every_seed_even_at_a_tenth_of_the_rate(
    runs: Runs,
) -> None:
    # The run (and the banner's "learning rate / 10" fix) diverges within a few steps: the page
    # shows the divergence banner almost at once, so this is checked to step 100. The banner
    # says so beside its "learning rate / 10" button (the lesson's `fixes`).
    assert lesson("exploding-gradients")["fixes"]["lr"]["works"] is False
    for seed in seeds("exploding-gradients"):
        for run in ("lesson", "lr / 10"):
            result = runs.get("exploding-gradients", run, seed)
            assert result["status"] == "diverged" and result["step"] <= 5, (seed, run, result)
            norms = result["max_grad_norms"]
            assert any(n > 1e3 or not math.isfinite(n) for n in norms), (seed, run, norms)
            assert "Try a lower learning rate" in result["message"]


def test_exploding_gradients_try_clipping_by_norm_trains(runs: Runs) -> None:
    # To the horizon: never diverges, never blows up (its bumps stay below 100x, two decades on
    # the log scale, above its lowest loss so far), and ends at least 1,000x below its start.
    # This is also the banner's "clip gradients (norm 1)" fix, which the banner marks as working.
    preset = lesson("exploding-gradients")
    assert preset["try"]["config"]["gradient_clip"] == {"kind": "norm", "threshold": 1.0}
    assert preset["fixes"]["clip"]["works"] is True
    for seed in seeds("exploding-gradients"):
        points = runs.get("exploding-gradients", "try", seed)
        assert completed(points, horizon(preset)), (seed, points[-1])
        values = list(losses(points).values())
        assert largest_factor(values) < 100, (seed, largest_factor(values))
        assert values[-1] <= 1e-3 * values[0], (seed, values[0], values[-1])


def test_exploding_gradients_batch_norm_fix_trains(runs: Runs) -> None:
    # The banner's "add batch norm" fix on this run: never diverges; from step 1,000 the loss is
    # below 0.1 (the plane's targets vary by about 0.17 around their mean) and never jumps. The
    # banner marks it as working.
    assert lesson("exploding-gradients")["fixes"]["bn"]["works"] is True
    for seed in seeds("exploding-gradients"):
        points = runs.get("exploding-gradients", "+ batch norm", seed)
        assert completed(points, horizon(lesson("exploding-gradients"))), (seed, points[-1])
        late = list(losses(points, start=1000).values())
        assert max(late) < 0.1 and largest_rise(late) <= VISIBLE, (seed, late)


# ------------------------------------------------------------------------ 5. gradient clipping


def test_gradient_clipping_marks_clipped_steps() -> None:
    trainer = Trainer(lesson("gradient-clipping")["config"])
    reports: list = []
    assert trainer.train(300, on_report=reports.append, report_interval=0.0) == "steps"
    assert sum(r.clip_count for r in reports) > 0
    events = [e for r in reports for e in r.events if e["type"] == "clip"]
    assert events and events[0]["kind"] == "value" and 0 < events[0]["fraction"] <= 1
    assert any(layer["clipped"] for r in reports for layer in r.layers)


def test_gradient_clipping_by_value_trains_and_by_norm_trains_slower(runs: Runs) -> None:
    # By value, to the horizon: never diverges, never jumps by a decade, ends at least 10^4x
    # below its start. The try (by norm) trains too (checked above) and from step 3,000 (before
    # that the two runs take turns) to step 20,000 (later both can reach the floor of the data's
    # noise) its loss is above the value-clipped run's.
    preset = lesson("gradient-clipping")
    for seed in seeds("gradient-clipping"):
        by_value = runs.get("gradient-clipping", "lesson", seed)
        assert completed(by_value, horizon(preset)), (seed, by_value[-1])
        values = list(losses(by_value).values())
        assert largest_factor(values) < 10, (seed, largest_factor(values))
        assert values[-1] <= 1e-4 * values[0], (seed, values[0], values[-1])
        by_norm = losses(runs.get("gradient-clipping", "try", seed), start=3000)
        assert by_norm.keys() == losses(by_value, start=3000).keys()
        for step, loss in losses(by_value, start=3000).items():
            if step <= 20_000:
                assert by_norm[step] > loss, (seed, step, by_norm[step], loss)


# ----------------------------------------------------------------------------- 6. overfitting


def test_overfitting_train_falls_and_test_climbs_after_an_early_dip(runs: Runs) -> None:
    # The test loss has its lowest value by step 1,500 (on some seeds hardly below its start);
    # from step 5,000 to the end it stays more than CLEARLY above that low. From step 3,000 the
    # gap (test - train) is more than CLEARLY at every checkpoint, and the training loss is
    # typically (median) at most 0.2: close to zero, a point or two of the forty wrong at most
    # (a point's error is (1 - (-1))^2 = 4, so one point is 0.1).
    preset = lesson("overfitting")
    for seed in seeds("overfitting"):
        points = runs.get("overfitting", "lesson", seed)
        assert completed(points, horizon(preset))
        test = losses(points, "test_loss")
        low_step = min(test, key=test.get)
        assert low_step <= 1500, (seed, low_step, test)
        for step, value in test.items():
            if step >= 5000:
                assert value > test[low_step] + CLEARLY, (seed, step, value, test[low_step])
        late = [p for p in points if p["step"] >= 3000]
        for p in late:
            assert p["test_loss"] - p["loss"] > CLEARLY, (seed, p["step"], p)
        assert statistics.median(p["loss"] for p in late) <= 0.2, seed


def test_overfitting_try_early_stopping_stops_near_the_low_with_a_smaller_gap(
    runs: Runs,
) -> None:
    # Early stopping (patience 10) ends the run by step 2,500, keeps weights whose test loss is
    # within JUMP of the plain run's lowest test loss, and its gap (test - train) is below the
    # plain run's at every checkpoint from 5,000 (where the plain run has climbed) to the end.
    for seed in seeds("overfitting"):
        stopped = runs.get("overfitting", "try", seed)
        assert stopped[-1]["status"] == "early_stopped" and stopped[-1]["step"] <= 2500, seed
        plain = runs.get("overfitting", "lesson", seed)
        lowest = min(p["test_loss"] for p in plain)
        kept = stopped[-1]
        assert kept["test_loss"] <= lowest + JUMP, (seed, kept["test_loss"], lowest)
        gap = kept["test_loss"] - kept["loss"]
        for p in plain:
            if p["step"] >= 5000:
                assert gap < p["test_loss"] - p["loss"], (seed, p["step"], gap)


# -------------------------------------------------------------------------- 7. early stopping


def test_early_stopping_stops_after_the_low_and_restores_it(runs: Runs) -> None:
    # Stops 10 evaluations (100 steps) after its best step, keeps the best step's weights, and
    # that best test loss is within JUMP of the lowest the plain run ever reaches.
    for seed in seeds("early-stopping"):
        result = runs.get("early-stopping", "lesson", seed)
        assert result["status"] == "early_stopped", (seed, result)
        assert result["step"] - result["best_step"] == 100, (seed, result)
        assert result["test_loss"] == pytest.approx(result["best_loss"], rel=1e-5)
        plain = runs.get("overfitting", "lesson", seed)
        assert result["best_loss"] <= min(p["test_loss"] for p in plain) + JUMP, (seed, result)


def test_early_stopping_try_patience_40_trains_longer_and_keeps_the_best(runs: Runs) -> None:
    for seed in seeds("early-stopping"):
        p10 = runs.get("early-stopping", "lesson", seed)
        p40 = runs.get("early-stopping", "try", seed)
        assert p40["status"] == "early_stopped", (seed, p40)
        assert p40["step"] - p40["best_step"] == 400, (seed, p40)
        assert p40["best_loss"] <= p10["best_loss"], (seed, p40, p10)
        assert p40["test_loss"] == pytest.approx(p40["best_loss"], rel=1e-5)


# ------------------------------------------------------------------------- 8. relu vs sigmoid


def test_relu_below_sigmoid_throughout(runs: Runs) -> None:
    # From step 100 relu is never visibly above sigmoid (before it, neither has learned and the
    # two sit at their random initial losses, relu's sometimes the higher). Relu is below 0.1
    # from step 1,000 on; sigmoid stays within STALL of 1 from step 30 to 10,000 ("more than ten
    # thousand steps"): clearly apart there.
    preset = lesson("relu-vs-sigmoid")
    assert [r["label"] for r in preset["compare"]] == ["relu", "sigmoid"]
    assert preset["try"]["config"] == preset["compare"][1]["config"]
    for seed in seeds("relu-vs-sigmoid"):
        relu = runs.get("relu-vs-sigmoid", "relu", seed)
        sigmoid = runs.get("relu-vs-sigmoid", "sigmoid", seed)
        assert completed(relu, horizon(preset)) and completed(sigmoid, horizon(preset))
        relu_loss, sigmoid_loss = losses(relu, start=30), losses(sigmoid, start=30)
        for step, value in relu_loss.items():
            if step >= 100:
                assert value <= sigmoid_loss[step] + VISIBLE, (
                    seed,
                    step,
                    value,
                    sigmoid_loss[step],
                )
            if step >= 1000:
                assert value < 0.1, (seed, step, value)
            if step <= 10_000:
                assert abs(sigmoid_loss[step] - 1.0) <= STALL, (seed, step, sigmoid_loss[step])


def test_relu_and_sigmoid_layer_statistics_match_the_layers_outputs() -> None:
    runs = {run["label"]: run["config"] for run in lesson("relu-vs-sigmoid")["compare"]}
    results = {}
    for label, config in runs.items():
        trainer = Trainer(config)
        start = trainer.evaluate()["loss"]
        trainer.train(1500)
        reports: list = []
        trainer.train(1, on_report=reports.append)
        ev = trainer.evaluate()
        # what each hidden layer's last batch looked like, from the layers' own outputs
        by_hand = [
            (dead_share(layer.output), saturated_share(layer.output, layer.activation.name))
            for layer in trainer.network.layers[:-1]
        ]
        results[label] = (start, ev["loss"], ev["accuracy"], reports[-1].layers, by_hand)
    relu_start, relu_end, relu_accuracy, relu_layers, relu_hand = results["relu"]
    _, sig_end, sig_accuracy, sig_layers, sig_hand = results["sigmoid"]
    assert relu_end < 0.2 * relu_start and relu_accuracy > 0.9
    assert sig_end > 0.9 and sig_accuracy < 0.65  # stalled near "predict 0 everywhere"
    assert relu_end < sig_end
    for layers, hand in ((relu_layers, relu_hand), (sig_layers, sig_hand)):
        for layer, (dead, saturated) in zip(layers[:-1], hand, strict=True):
            assert layer["dead_fraction"] == pytest.approx(dead, abs=1e-12), layer["name"]
            assert layer["saturated_fraction"] == pytest.approx(saturated, abs=1e-12)
    assert max(layer["dead_fraction"] for layer in relu_layers) > 0  # some units did die
    assert all(layer["saturated_fraction"] == 0.0 for layer in relu_layers[:-1])
    assert all(layer["dead_fraction"] == 0.0 for layer in sig_layers)


def dead_share(output: np.ndarray) -> float:
    """Share of units that are zero for every sample of the batch (batch, units)."""
    return float(np.mean(~(output != 0).any(axis=0)))


def saturated_share(output: np.ndarray, activation: str) -> float:
    """Share of outputs within 0.01 of a sigmoid's 0 or 1 (0 for other activations)."""
    if activation != "sigmoid":
        return 0.0
    return float(np.mean((output < 0.01) | (output > 0.99)))


# --------------------------------------------------------------------- 9. batch normalization


def test_batch_norm_learns_never_turns_unstable_and_plain_stalls(runs: Runs) -> None:
    # Checked every 100 steps. The plain net: within STALL of 1 from step 30 (after its first
    # steps' wobble) to the end. The batch-norm net, which the text says jumps about for a few
    # dozen steps and learns within a few hundred: from step 500 below 0.25 and clearly below the
    # plain net; from step 1,000 below JUMP and never rising visibly (with batches of 32 this net
    # rose to 1.5-1.9 after ~10,000 steps; with plain SGD at 0.1, to 0.5-1.4 for a moment).
    preset = lesson("batch-normalization")
    assert preset["try"]["config"] == preset["compare"][1]["config"]
    for seed in seeds("batch-normalization"):
        bn = runs.get("batch-normalization", "with batch norm", seed)
        plain = runs.get("batch-normalization", "plain", seed)
        assert completed(bn, horizon(preset)) and completed(plain, horizon(preset))
        plain_loss = losses(plain, start=30)
        assert all(abs(v - 1.0) <= STALL for v in plain_loss.values()), (seed, plain_loss)
        for step, value in losses(bn, start=500).items():
            assert value < 0.25 and value < plain_loss[step] - CLEARLY, (seed, step, value)
        late = list(losses(bn, start=1000).values())
        assert max(late) < JUMP and largest_rise(late) <= VISIBLE, (seed, max(late))


def test_batch_norm_layers_report_batch_statistics() -> None:
    trainer = Trainer(lesson("batch-normalization")["config"])
    trainer.train(3)
    bn = [layer for layer in trainer.report().layers if layer["type"] == "batchnorm"]
    assert len(bn) == 9
    assert all(len(layer["batch_mean"]) == 8 and len(layer["batch_var"]) == 8 for layer in bn)
    # the statistics of the batch the layer normalised last: its own input, feature by feature
    layer = next(layer for layer in trainer.network.layers if layer.kind == "batchnorm")
    seen = layer.input.astype(np.float64)  # (batch, 8)
    np.testing.assert_allclose(bn[0]["batch_mean"], seen.mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn[0]["batch_var"], seen.var(axis=0), rtol=1e-4, atol=1e-6)


# -------------------------------------------------------------------- 10. convolutional network


def first_step_at(points: list[dict[str, Any]], key: str, level: float) -> float:
    return next((p["step"] for p in points if p[key] >= level), math.inf)


def test_convolutional_network_learns_and_noise_keeps_it_lower(runs: Runs) -> None:
    # The lesson's net: test accuracy at least 90 % from step 300 to the end (95 % from 1,000).
    # The try (noise 0.8): from step 30 (before that both guess) its test accuracy is at least a
    # point below at every checkpoint, a few points (2 on average) from step 1,000, and it
    # reaches 90 % no sooner (if at all).
    preset = lesson("convolutional-network")
    for seed in seeds("convolutional-network"):
        clean = runs.get("convolutional-network", "lesson", seed)
        noisy = runs.get("convolutional-network", "try", seed)
        assert completed(clean, horizon(preset)) and completed(noisy, horizon(preset))
        clean_acc = losses(clean, "test_accuracy", start=30)
        noisy_acc = losses(noisy, "test_accuracy", start=30)
        for step, value in clean_acc.items():
            if step >= 300:
                assert value >= (0.95 if step >= 1000 else 0.9), (seed, step, value)
            assert noisy_acc[step] <= value - 0.01, (seed, step, noisy_acc[step], value)
        late = [clean_acc[s] - noisy_acc[s] for s in clean_acc if s >= 1000]
        assert statistics.mean(late) >= 0.02, (seed, statistics.mean(late))
        reached = first_step_at(clean, "test_accuracy", 0.9)
        assert first_step_at(noisy, "test_accuracy", 0.9) >= reached, seed


def test_convolutional_network_shows_per_filter_gradients() -> None:
    trainer = Trainer(lesson("convolutional-network")["config"])
    filters_before = np.array(trainer.snapshot()["conv"]["0"]["filters"])
    trainer.train(20)
    snap = trainer.snapshot()
    assert not np.allclose(np.array(snap["conv"]["0"]["filters"]), filters_before)
    assert len(snap["conv"]["0"]["filter_grad_norm"]) == 8
    grad_w = trainer.network.layers[0].params["W"].grad.astype(np.float64)  # (8, 1, 3, 3)
    np.testing.assert_allclose(
        snap["conv"]["0"]["filter_grad_norm"], np.sqrt((grad_w**2).sum(axis=(1, 2, 3))), rtol=1e-6
    )


# ------------------------------------------------------------------------------ 11. optimizers


def test_optimizers_momentum_and_adam_never_worse_and_clearly_better_early(runs: Runs) -> None:
    # From step 10, momentum and Adam are never visibly above plain SGD; from step 1,000 to
    # 3,000 both are clearly below it. (SGD catches up later, as the text says.)
    preset = lesson("optimizers")
    assert [r["label"] for r in preset["compare"]] == ["sgd", "momentum 0.9", "adam"]
    rates = {r["config"]["optimizer"]["learning_rate"] for r in preset["compare"]}
    assert rates == {0.001}
    for seed in seeds("optimizers"):
        sgd = losses(runs.get("optimizers", "sgd", seed), start=10)
        assert max(sgd) == horizon(preset)
        for label in ("momentum 0.9", "adam"):
            other = losses(runs.get("optimizers", label, seed), start=10)
            for step, value in other.items():
                assert value <= sgd[step] + VISIBLE, (seed, label, step, value, sgd[step])
                if 1000 <= step <= 3000:
                    assert sgd[step] - value >= CLEARLY, (seed, label, step, value, sgd[step])


def test_optimizers_try_sgd_at_ten_times_the_rate_keeps_pace_with_momentum(runs: Runs) -> None:
    # From step 100 (momentum builds up speed over its first few dozen steps) to the end, SGD at
    # 0.01 is within JUMP of momentum 0.9 at 0.001: the curves nearly overlap (their largest gaps
    # are where both fall steeply, so that a few steps' lag shows as a height difference).
    preset = lesson("optimizers")
    assert preset["try"]["config"]["optimizer"] == {"name": "sgd", "learning_rate": 0.01}
    for seed in seeds("optimizers"):
        fast = losses(runs.get("optimizers", "try", seed), start=100)
        momentum = losses(runs.get("optimizers", "momentum 0.9", seed), start=100)
        assert fast.keys() == momentum.keys()
        for step, value in fast.items():
            assert abs(value - momentum[step]) <= JUMP, (seed, step, value, momentum[step])


# --------------------------------------------------------------------------- 12. your own data


def test_your_own_data_text_names_the_page_controls() -> None:
    text = lesson("your-own-data")["explanation"]
    for control in ("click", "shift-click", "alt-click", "Upload CSV/NPZ", "Build panel"):
        assert control in text, control


def test_your_own_data_fits_the_drawn_points_throughout(runs: Runs) -> None:
    # Every drawn point is classified right from step 100 to the end.
    preset = lesson("your-own-data")
    for seed in seeds("your-own-data"):
        points = runs.get("your-own-data", "lesson", seed)
        assert completed(points, horizon(preset))
        for step, accuracy in losses(points, "accuracy", start=100).items():
            assert accuracy == 1.0, (seed, step, accuracy)


def test_your_own_data_try_points_among_the_other_class(runs: Runs) -> None:
    # Three blue points drawn among the orange ones (the page restarts training on the new
    # points): from step 100 (both runs start from similar losses) the loss stays at least 10x
    # the first drawing's; it falls (ends below its value at step 1,000); and some point is still
    # on the wrong side at a checkpoint after step 1,000.
    preset = lesson("your-own-data")
    for seed in seeds("your-own-data"):
        plain = losses(runs.get("your-own-data", "lesson", seed), start=100)
        points = runs.get("your-own-data", "try", seed)
        assert completed(points, horizon(preset))
        extra = losses(points, start=100)
        for step, value in extra.items():
            assert value >= 10 * plain[step], (seed, step, value, plain[step])
        assert extra[max(extra)] < extra[1000], (seed, extra[1000], extra[max(extra)])
        assert any(p["accuracy"] < 1.0 for p in points if p["step"] > 1000), seed
