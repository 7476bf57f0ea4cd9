"""The trainer end to end: determinism, convergence, faults, weights, hyperparameters, configs.

What the trainer shows of a run is in test_observing.py; its run loop (pace, the last report of a
bounded run, the age of the evaluation) in test_train_loop.py.
"""

from __future__ import annotations

import io
import math
import re

import numpy as np
import pytest

from engine.config import ConfigError, parse_config
from engine.trainer import Trainer, WeightsError
from tests.engine.configs import cnn_glyphs, tanh_net

# ----------------------------------------------------------------------------- determinism


def test_same_config_and_seed_give_bit_identical_weights() -> None:
    a, b = Trainer(tanh_net()), Trainer(tanh_net())
    a.train(500)
    b.train(500)
    for name, value in a.get_weights().items():
        assert np.array_equal(value, b.get_weights()[name]), name


def test_other_seed_gives_other_weights() -> None:
    a, b = Trainer(tanh_net()), Trainer(tanh_net(seed=43))
    assert not np.array_equal(a.get_weights()["0.W"], b.get_weights()["0.W"])


def test_reset_returns_to_the_first_weights_and_step_zero() -> None:
    trainer = Trainer(tanh_net())
    first = trainer.get_weights()
    trainer.train(50)
    trainer.reset()
    assert trainer.step == 0 and trainer.epoch == 0
    for name, value in first.items():
        assert np.array_equal(value, trainer.get_weights()[name])


def test_checkpoint_restore_continues_the_exact_trajectory() -> None:
    config = tanh_net(
        optimizer={"name": "adam", "learning_rate": 0.01},
        layers=[
            {"type": "dense", "units": 8, "activation": "relu"},
            {"type": "batchnorm"},
            {"type": "dropout", "rate": 0.2},
            {"type": "dense", "units": 1, "activation": "tanh"},
        ],
    )
    straight = Trainer(config)
    straight.train(300)
    resumed = Trainer(config)
    resumed.train(137)
    blob = resumed.checkpoint()
    fresh = Trainer(config)
    fresh.restore(blob)
    assert fresh.step == 137
    fresh.train(163)
    for name, value in straight.get_weights().items():
        assert np.array_equal(value, fresh.get_weights()[name]), name


# ----------------------------------------------------------------------------- convergence
# Step budgets (documented in the README): xor and circle 3,000 SGD steps at lr 0.03, batch 10;
# spiral 6,000 Adam steps at lr 0.02, batch 16, seed 1; the CNN 150 Adam steps of batch 32.


@pytest.mark.parametrize("dataset", ["xor", "circle"])
def test_two_class_datasets_reach_95_percent(dataset: str) -> None:
    trainer = Trainer(tanh_net(dataset))
    trainer.train(3000)
    assert trainer.evaluate()["test_accuracy"] >= 0.95


def test_spiral_reaches_90_percent_with_two_hidden_layers_of_8_tanh() -> None:
    # x1, x2 only; some seeds settle in a poorer minimum (seed 42 stays near 83 %), seed 1 does not
    config = tanh_net(seed=1, optimizer={"name": "adam", "learning_rate": 0.02}, batch_size=16)
    trainer = Trainer(config)
    trainer.train(6000)
    assert trainer.evaluate()["test_accuracy"] >= 0.90


def test_cnn_on_glyphs_reaches_90_percent() -> None:
    trainer = Trainer(cnn_glyphs())
    trainer.train(150)
    assert trainer.evaluate()["test_accuracy"] >= 0.90


def test_regression_on_sine_fits() -> None:
    config = tanh_net(
        "sine",
        layers=[
            {"type": "dense", "units": 16, "activation": "tanh"},
            {"type": "dense", "units": 1, "activation": "linear"},
        ],
        optimizer={"name": "adam", "learning_rate": 0.01},
    )
    config.pop("features")
    trainer = Trainer(config)
    before = trainer.evaluate()["test_loss"]
    trainer.train(3000)
    after = trainer.evaluate()
    assert after["accuracy"] is None
    assert after["test_loss"] < 0.1 * before


# ----------------------------------------------------------------------------- vanishing


def deep(activation: str, init: str) -> Trainer:
    layers = [{"type": "dense", "units": 16, "activation": activation} for _ in range(9)]
    layers.append({"type": "dense", "units": 1, "activation": "sigmoid"})
    return Trainer(
        tanh_net("circle", layers=layers, init=init, loss="bce", batch_size=64, dtype="float64")
    )


def first_last_ratio(trainer: Trainer) -> float:
    trainer.train(1)
    norms = [layer["grad_norm"] for layer in trainer.report().layers]
    return norms[0] / norms[-1]


def test_deep_sigmoid_gradients_vanish_towards_the_input() -> None:
    assert first_last_ratio(deep("sigmoid", "xavier")) < 1e-2


def test_relu_with_he_init_keeps_gradients_alive() -> None:
    assert first_last_ratio(deep("relu", "he")) > 1e-1


# ----------------------------------------------------------------------------- divergence


def test_divergence_stops_with_a_reason_and_keeps_finite_weights() -> None:
    config = tanh_net(
        layers=[
            {"type": "dense", "units": 32, "activation": "relu"},
            {"type": "dense", "units": 32, "activation": "relu"},
            {"type": "dense", "units": 1, "activation": "linear"},
        ],
        optimizer={"name": "sgd", "learning_rate": 50.0},
        init={"kind": "normal", "std": 1.0},
    )
    first = Trainer(config).get_weights()
    trainer = Trainer(config)
    reports: list = []
    assert trainer.train(10_000, on_report=reports.append) == "diverged"
    assert trainer.diverged and "step" in trainer.diverged
    assert "learning rate" in trainer.diverged
    assert trainer.step >= 1 and "last good weights (step 0)" in trainer.diverged
    for name, value in trainer.get_weights().items():
        assert np.all(np.isfinite(value)), name
        np.testing.assert_array_equal(value, first[name], err_msg=name)  # rolled back to step 0
    events = [e for r in reports for e in r.events if e["type"] == "diverged"]
    assert len(events) == 1 and events[0]["message"] == trainer.diverged
    # resuming after lowering the learning rate trains again
    trainer.update_hyperparameters({"learning_rate": 1e-4})
    assert trainer.train(20) == "steps"
    assert trainer.diverged is None


def test_divergence_rolls_back_to_the_last_good_weights_and_clears_the_optimizer() -> None:
    config = tanh_net(
        layers=[
            {"type": "dense", "units": 32, "activation": "relu"},
            {"type": "dense", "units": 32, "activation": "relu"},
            {"type": "dense", "units": 1, "activation": "linear"},
        ],
        optimizer={"name": "sgd", "learning_rate": 0.001, "momentum": 0.9},
    )
    trainer = Trainer(config)
    assert trainer.train(300) == "steps"  # past step 256, where good weights are kept
    trainer.update_hyperparameters({"learning_rate": 100.0})
    assert trainer.train(2000) == "diverged"
    match = re.search(r"last good weights \(step (\d+)\)", trainer.diverged or "")
    assert match is not None, trainer.diverged
    good_step = int(match.group(1))
    assert 0 < good_step < 300 < trainer.step  # the rollback goes back past finite steps
    twin = Trainer(config)  # the same run, stopped at the last good step
    twin.train(good_step)
    for name, value in twin.get_weights().items():
        np.testing.assert_array_equal(trainer.get_weights()[name], value, err_msg=name)
    assert trainer.optimizer.state_dict().keys() == {"step"}  # no momentum left over
    assert trainer.optimizer.state_dict()["step"] == 0


def test_reports_never_carry_nan() -> None:
    config = tanh_net(optimizer={"name": "sgd", "learning_rate": 100.0})
    trainer = Trainer(config)
    reports: list = []
    trainer.train(2000, on_report=reports.append)

    def walk(value: object) -> None:
        if isinstance(value, float):
            assert math.isfinite(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for report in reports:
        walk(report.to_dict())


# ----------------------------------------------------------------------------- epochs


def test_every_epoch_visits_each_sample_once_in_a_new_order() -> None:
    # 12 training samples in batches of 4: three steps per epoch
    config = tanh_net(
        dataset={"name": "xor", "samples": 24, "noise": 0.0, "test_fraction": 0.5}, batch_size=4
    )
    trainer = Trainer(config)
    x = trainer.x_train
    assert len(x) == 12
    orders = []
    for _ in range(4):
        order: list[int] = []
        for _ in range(3):
            trainer.train_step()
            # the first layer's inputs of the batch just trained on, sample by sample
            batch = trainer.snapshot(grid_resolution=None)["nodes"]["0"]["samples"]["a"]
            for row in batch:
                (index,) = np.flatnonzero((x == np.asarray(row)).all(axis=1))
                order.append(int(index))
        assert sorted(order) == list(range(12)), order  # every sample once per epoch
        orders.append(order)
    assert trainer.epoch == 3
    for before, after in zip(orders, orders[1:], strict=False):
        assert before != after, "the samples were not reshuffled between epochs"


# ----------------------------------------------------------------------------- early stopping


def test_early_stopping_remembers_and_restores_the_best_step() -> None:
    config = tanh_net(
        dataset={"name": "circle", "samples": 60, "noise": 0.6, "test_fraction": 0.5},
        layers=[
            {"type": "dense", "units": 64, "activation": "tanh"},
            {"type": "dense", "units": 64, "activation": "tanh"},
            {"type": "dense", "units": 1, "activation": "tanh"},
        ],
        optimizer={"name": "adam", "learning_rate": 0.01},
        early_stopping={"patience": 5, "eval_every": 20},
    )
    trainer = Trainer(config)
    reports: list = []
    assert trainer.train(20_000, on_report=reports.append) == "early_stopped"
    assert trainer.best_step is not None and trainer.best_step < trainer.step
    assert trainer.evaluate()["test_loss"] == pytest.approx(trainer.best_loss, rel=1e-5)
    events = [e for r in reports for e in r.events if e["type"] == "early_stop"]
    assert events and events[0]["best_step"] == trainer.best_step and events[0]["restored"]


# ----------------------------------------------------------------------------- weights


def test_weights_round_trip_through_npz() -> None:
    a = Trainer(tanh_net())
    a.train(30)
    buffer = io.BytesIO()
    a.save_weights(buffer)
    b = Trainer(tanh_net(seed=7))
    buffer.seek(0)
    b.load_weights(buffer)
    for name, value in a.get_weights().items():
        assert np.array_equal(value, b.get_weights()[name])


def test_set_weights_names_the_array_on_a_shape_mismatch() -> None:
    trainer = Trainer(tanh_net())
    weights = trainer.get_weights()
    weights["1.W"] = np.zeros((3, 8))
    with pytest.raises(WeightsError, match=r"1\.W: expected shape \(8, 8\), got \(3, 8\)"):
        trainer.set_weights(weights)
    weights = trainer.get_weights()
    weights["0.b"] = [math.nan] * 8
    with pytest.raises(WeightsError, match="0.b"):
        trainer.set_weights(weights)
    with pytest.raises(WeightsError, match="9.W"):
        trainer.set_weights({"9.W": [[1.0]]}, partial=True)


# ----------------------------------------------------------------------------- hyperparameters


def test_hyperparameters_change_between_steps_without_rebuilding() -> None:
    trainer = Trainer(tanh_net(optimizer={"name": "sgd", "learning_rate": 0.03, "momentum": 0.5}))
    trainer.train(10)
    network = trainer.network
    changes = trainer.update_hyperparameters(
        {
            "learning_rate": 0.1,
            "batch_size": 25,
            "momentum": 0.9,
            "regularization": {"kind": "l2", "rate": 0.01},
            "gradient_clip": {"kind": "value", "threshold": 0.1},
        }
    )
    assert changes["learning_rate"] == {"old": 0.03, "new": 0.1}
    assert changes["batch_size"] == {"old": 10, "new": 25}
    assert trainer.network is network and trainer.optimizer.momentum == 0.9
    reports: list = []
    trainer.train(50, on_report=reports.append)
    assert trainer.config.optimizer.learning_rate == 0.1
    assert reports[-1].learning_rate == 0.1
    assert sum(r.clip_count for r in reports) > 0
    changes = trainer.update_hyperparameters({"gradient_clip": None})
    assert changes == {"gradient_clip": {"old": {"kind": "value", "threshold": 0.1}, "new": None}}


def test_l2_regularization_adds_its_gradient_and_shrinks_weights() -> None:
    plain = Trainer(tanh_net())
    reg = Trainer(tanh_net(regularization={"kind": "l2", "rate": 0.05}))
    plain.train(500)
    reg.train(500)
    assert np.linalg.norm(reg.get_weights()["0.W"]) < np.linalg.norm(plain.get_weights()["0.W"])


# ----------------------------------------------------------------------------- bad configs


@pytest.mark.parametrize(
    ("patch", "field", "words"),
    [
        ({"layers": [{"type": "dense", "units": 0}]}, "layers[0].units", "integer >= 1, got 0"),
        ({"dataset": {"name": "nope"}}, "dataset.name", "nope"),
        ({"dataset": {"name": "spiral", "samples": 2}}, "dataset.samples", ">= 4"),
        ({"features": ["x3"]}, "features[0]", "x3"),
        ({"loss": "hinge"}, "loss", "hinge"),
        ({"optimizer": {"name": "lbfgs"}}, "optimizer.name", "lbfgs"),
        ({"optimizer": {"learning_rate": 0}}, "optimizer.learning_rate", "> 0"),
        ({"batch_size": 0}, "batch_size", ">= 1"),
        ({"regularization": {"kind": "l3"}}, "regularization.kind", "l3"),
        ({"gradient_clip": {"kind": "norm", "threshold": -1}}, "gradient_clip.threshold", "> 0"),
        ({"init": "magic"}, "init.kind", "magic"),
        ({"early_stopping": {"patience": 0}}, "early_stopping.patience", ">= 1"),
        ({"seed": -1}, "seed", ">= 0"),
        ({"lr": 0.1}, "lr", "not a known field"),
        ({"layers": [{"type": "pool"}]}, "layers[0].type", "pool"),
        ({"loss": "bce"}, "layers[2].activation", "sigmoid"),
        (
            {
                "loss": "cross_entropy",
                "layers": [{"type": "dense", "units": 1, "activation": "softmax"}],
            },
            "layers[0].units",
            "one unit per class (2)",
        ),
        (
            {"layers": [{"type": "conv2d", "filters": 4}, {"type": "dense", "units": 1}]},
            "layers[0]",
            "image",
        ),
        ({"layers": [{"type": "dense", "units": 3}]}, "layers[0].units", "2 units"),
        (
            {"layers": [{"type": "dense", "units": 4000}] * 3 + [{"type": "dense", "units": 1}]},
            "layers",
            "parameters",
        ),
        ({"optimizer": {"learning_rate": math.inf}}, "optimizer.learning_rate", "finite"),
    ],
)
def test_bad_config_gets_a_field_named_error(patch: dict, field: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Trainer(tanh_net(**patch))
    fields = [e["field"] for e in caught.value.errors]
    assert field in fields, caught.value.errors
    message = next(e["message"] for e in caught.value.errors if e["field"] == field)
    assert words in message, message


def test_config_defaults_fill_everything_but_layers_and_dataset() -> None:
    config = parse_config({"dataset": {"name": "xor"}, "layers": [{"type": "dense", "units": 1}]})
    assert config.loss == "mse" and config.batch_size == 10 and config.init.kind == "xavier"
    assert config.optimizer.learning_rate == 0.03 and config.gradient_clip is None
    with pytest.raises(ConfigError) as caught:
        parse_config({})
    assert {e["field"] for e in caught.value.errors} == {"dataset", "layers"}
