"""Each guided experiment's claim, shown to happen in the engine (small budgets, fixed seeds)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.config import parse_config
from engine.presets import all_presets, get_preset
from engine.trainer import Trainer


def lesson(preset_id: str) -> dict:
    return get_preset(preset_id)


def losses(config: dict, steps: int, every: int) -> list[tuple[float, float | None]]:
    trainer = Trainer(config)
    out = []
    for _ in range(steps // every):
        if trainer.train(every) != "steps":
            break
        ev = trainer.evaluate()
        out.append((ev["loss"], ev["test_loss"]))
    return out


def test_every_preset_is_complete_and_valid() -> None:
    presets = all_presets()
    ids = [p["id"] for p in presets]
    assert len(ids) == len(set(ids))
    for required in ("xor", "spiral", "deep-sigmoid", "cnn-glyphs"):
        assert required in ids
    lessons = [p for p in presets if p["kind"] == "lesson"]
    assert [p["lesson"] for p in lessons] == list(range(1, 13))
    for p in lessons:
        sentences = [s for s in p["explanation"].split(". ") if s.strip()]
        assert 3 <= len(sentences) <= 6, (p["id"], len(sentences))
        assert p["formulas"] and p["watch"] and p["try"]["change"] and p["try"]["expect"]
        parse_config(p["config"])


def test_how_a_step_works_one_step_lowers_the_sample_loss() -> None:
    config = lesson("how-a-step-works")["config"]
    assert [layer["units"] for layer in config["layers"]] == [4, 1]
    trainer = Trainer(config)
    before = trainer.trace([[3.0, 3.0]], [1])["loss"]
    trainer.train(200)
    assert trainer.trace([[3.0, 3.0]], [1])["loss"] < before


def test_learning_rate_middle_converges_fastest_large_does_not_settle() -> None:
    runs = {run["label"]: run["config"] for run in lesson("learning-rate")["compare"]}
    final = {}
    for label, config in runs.items():
        curve = losses(config, 2000, 250)
        final[label] = curve[-1][0] if curve else float("inf")
        if label == "eta = 3":
            start = curve[0][0] if curve else float("inf")
            # stuck: no real progress from its first evaluation to its last (or diverged)
            assert not curve or final[label] > 0.9 * start
    assert final["eta = 0.03"] < final["eta = 0.003"]
    assert final["eta = 0.03"] < final["eta = 3"]


def first_over_last(config: dict) -> float:
    trainer = Trainer(config)
    trainer.train(1)
    norms = [layer["grad_norm"] for layer in trainer.report().layers]
    return norms[0] / norms[-1]


def test_vanishing_gradients_sigmoid_fades_relu_he_does_not() -> None:
    preset = lesson("vanishing-gradients")
    assert first_over_last(preset["config"]) < 1e-2
    assert first_over_last(preset["try"]["config"]) > 1e-1


def test_exploding_gradients_diverge_without_clipping_and_train_with_it() -> None:
    preset = lesson("exploding-gradients")
    trainer = Trainer(preset["config"])
    reports: list = []
    reason = trainer.train(300, on_report=reports.append)
    max_norm = max(r.max_grad_norm for r in reports)
    assert reason == "diverged" or max_norm > 1e3
    assert trainer.diverged and "Try a lower learning rate" in trainer.diverged
    clipped = Trainer(preset["try"]["config"])
    start = clipped.evaluate()["loss"]
    assert clipped.train(300) == "steps"
    assert clipped.evaluate()["loss"] < 0.1 * start


def test_gradient_clipping_marks_clipped_steps_and_trains() -> None:
    preset = lesson("gradient-clipping")
    trainer = Trainer(preset["config"])
    start = trainer.evaluate()["loss"]
    reports: list = []
    assert trainer.train(300, on_report=reports.append, report_interval=0.0) == "steps"
    assert sum(r.clip_count for r in reports) > 0
    events = [e for r in reports for e in r.events if e["type"] == "clip"]
    assert events and events[0]["kind"] == "value" and 0 < events[0]["fraction"] <= 1
    assert any(layer["clipped"] for r in reports for layer in r.layers)
    assert trainer.evaluate()["loss"] < 0.1 * start


def test_overfitting_train_falls_test_rises_and_early_stopping_shrinks_the_gap() -> None:
    preset = lesson("overfitting")
    curve = losses(preset["config"], 3000, 250)
    train_losses = [c[0] for c in curve]
    test_losses = [c[1] for c in curve]
    assert train_losses[-1] < 0.1 * train_losses[0]
    assert test_losses[-1] > min(test_losses) * 1.1  # test loss rose after its low point
    plain_gap = test_losses[-1] - train_losses[-1]
    stopped = Trainer(preset["try"]["config"])
    assert stopped.train(3000) == "early_stopped"
    ev = stopped.evaluate()
    assert ev["test_loss"] - ev["loss"] < plain_gap


def test_overfitting_l2_shrinks_the_gap() -> None:
    config = dict(lesson("overfitting")["config"])
    plain = Trainer(config)
    plain.train(2000)
    config["regularization"] = {"kind": "l2", "rate": 0.01}
    regularized = Trainer(config)
    regularized.train(2000)
    gap = [t.evaluate()["test_loss"] - t.evaluate()["loss"] for t in (plain, regularized)]
    assert gap[1] < gap[0]


def test_early_stopping_marks_best_step_and_restores_it() -> None:
    trainer = Trainer(lesson("early-stopping")["config"])
    reports: list = []
    assert trainer.train(5000, on_report=reports.append) == "early_stopped"
    assert trainer.best_step is not None and trainer.best_step < trainer.step
    assert reports[-1].best_step == trainer.best_step
    assert trainer.evaluate()["test_loss"] == pytest.approx(trainer.best_loss, rel=1e-5)


def test_relu_learns_faster_than_sigmoid_and_dead_units_are_counted() -> None:
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


def test_batch_normalization_trains_where_the_plain_deep_net_stalls() -> None:
    preset = lesson("batch-normalization")
    runs = {run["label"]: run["config"] for run in preset["compare"]}
    end = {}
    for label, config in runs.items():
        trainer = Trainer(config)
        trainer.train(600)
        end[label] = trainer.evaluate()["loss"]
    assert end["with batch norm"] < 0.5 * end["plain"]
    assert end["plain"] > 0.9  # the plain net stalls near "predict 0 everywhere"
    trainer = Trainer(preset["config"])
    trainer.train(3)
    bn = [layer for layer in trainer.report().layers if layer["type"] == "batchnorm"]
    assert bn and len(bn[0]["batch_mean"]) == 8 and len(bn[0]["batch_var"]) == 8
    # the statistics of the batch the layer normalised last: its own input, feature by feature
    layer = next(layer for layer in trainer.network.layers if layer.kind == "batchnorm")
    seen = layer.input.astype(np.float64)  # (batch, 8)
    np.testing.assert_allclose(bn[0]["batch_mean"], seen.mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn[0]["batch_var"], seen.var(axis=0), rtol=1e-4, atol=1e-6)


def test_convolutional_network_learns_and_shows_per_filter_gradients() -> None:
    trainer = Trainer(lesson("convolutional-network")["config"])
    filters_before = np.array(trainer.snapshot()["conv"]["0"]["filters"])
    trainer.train(150)
    snap = trainer.snapshot()
    assert trainer.evaluate()["test_accuracy"] >= 0.9
    assert not np.allclose(np.array(snap["conv"]["0"]["filters"]), filters_before)
    assert len(snap["conv"]["0"]["filter_grad_norm"]) == 8
    grad_w = trainer.network.layers[0].params["W"].grad.astype(np.float64)  # (8, 1, 3, 3)
    np.testing.assert_allclose(
        snap["conv"]["0"]["filter_grad_norm"], np.sqrt((grad_w**2).sum(axis=(1, 2, 3))), rtol=1e-6
    )


def test_optimizers_momentum_and_adam_beat_plain_sgd() -> None:
    runs = {run["label"]: run["config"] for run in lesson("optimizers")["compare"]}
    end = {}
    for label, config in runs.items():
        trainer = Trainer(config)
        trainer.train(2000)
        end[label] = trainer.evaluate()["loss"]
    assert end["adam"] < end["sgd"]
    assert end["momentum 0.9"] < end["sgd"]


def test_your_own_data_trains_on_drawn_points() -> None:
    trainer = Trainer(lesson("your-own-data")["config"])
    trainer.train(1000)
    assert trainer.evaluate()["accuracy"] == 1.0
    assert len(trainer.x_train) == 16
