"""The recorder's boundary and state (engine/recorder.py): non-finite numbers become None once, in
Report.to_dict, and neither the trainer nor the recorder grows an attribute after construction.
The numbers a report merges are checked in test_step_bookkeeping.py and test_observing.py."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from engine.layers import Dense
from engine.recorder import Report, finite
from engine.stats import layer_statistics
from engine.trainer import Trainer

XOR: dict[str, Any] = {
    "seed": 3,
    "dtype": "float64",
    "dataset": {"name": "xor", "samples": 40, "noise": 0.2, "test_fraction": 0.5},
    "layers": [
        {"type": "dense", "units": 4, "activation": "tanh"},
        {"type": "batchnorm"},
        {"type": "dense", "units": 1, "activation": "tanh"},
    ],
    "batch_size": 20,
}


def report_with(**values: Any) -> Report:
    fields: dict[str, Any] = {
        "step": 3,
        "epoch": 1,
        "loss": 0.5,
        "test_loss": 0.6,
        "accuracy": 0.75,
        "test_accuracy": 0.5,
        "batch_loss": 0.4,
        "learning_rate": 0.1,
        "batch_size": 20,
        "steps_per_second": 120.0,
        "eval_step": 3,
        "max_grad_norm": 2.0,
        "clip_count": 0,
        "best_step": None,
    }
    fields.update(values)
    return Report(**fields)


def test_to_dict_turns_every_non_finite_number_into_none_and_nothing_else() -> None:
    layer = {"name": "0", "grad_norm": math.inf, "weight_norm": 1.5, "batch_mean": [math.nan, 2.0]}
    event = {"type": "diverged", "step": 3, "value": -math.inf, "layer": None, "message": "m"}
    report = report_with(loss=math.nan, max_grad_norm=math.inf, layers=[layer], events=[event])
    out = report.to_dict()
    assert out["loss"] is None and out["max_grad_norm"] is None
    assert out["test_loss"] == 0.6 and out["clip_count"] == 0 and out["best_step"] is None
    assert out["batch_size"] == 20 and out["eval_step"] == 3
    assert out["layers"] == [
        {"name": "0", "grad_norm": None, "weight_norm": 1.5, "batch_mean": [None, 2.0]}
    ]
    assert out["events"] == [
        {"type": "diverged", "step": 3, "value": None, "layer": None, "message": "m"}
    ]
    # the report itself keeps its numbers: the conversion is a copy, at the boundary
    assert math.isnan(report.loss or 0.0) and report.layers[0]["grad_norm"] == math.inf
    assert finite({"a": [1.0, (math.inf,)], "b": True}) == {"a": [1.0, (math.inf,)], "b": True}


def test_a_non_finite_layer_statistic_leaves_the_engine_as_none() -> None:
    trainer = Trainer(XOR)
    trainer.train_step()
    trainer.network.layers[0].params["W"].grad = np.full((2, 4), math.inf)
    report = trainer.report()
    assert report.layers[0]["grad_norm"] == math.inf  # inside the engine: the number itself
    assert report.to_dict()["layers"][0]["grad_norm"] is None  # outside: JSON's null


def test_a_layer_statistic_of_an_infinite_gradient_is_none_in_the_report_only() -> None:
    # one linear unit, W 1 and b 0, whose weight gradient is inf: engine.stats keeps the numbers
    # as they are (tests/engine/test_stats.py), Report.to_dict turns them into None
    layer = Dense(1, "linear")
    layer.build((1,), np.random.default_rng(0), "xavier", np.float64)
    layer.params["W"].data[...] = 1.0
    layer.params["b"].data[...] = 0.0
    layer.forward(np.array([[1.0]]))
    layer.params["W"].grad = np.array([[math.inf]])
    (got,) = report_with(layers=[layer_statistics(layer)]).to_dict()["layers"]
    assert got["grad_norm"] is None and got["grad_max_abs"] is None
    assert got["weight_norm"] == 1.0


def test_no_attribute_appears_after_construction() -> None:
    # every attribute is set, with its doc comment, in __init__: none is created lazily later
    trainer = Trainer({**XOR, "early_stopping": {"patience": 2, "eval_every": 2}})
    owners = {
        "trainer": trainer,
        "recorder": trainer.recorder,
        "network": trainer.network,
        "optimizer": trainer.optimizer,
        "encoding": trainer.encoding,
    }
    before = {name: set(vars(obj)) for name, obj in owners.items()}
    trainer.train(7, on_report=lambda report: None)
    trainer.recorder.measure_update = True
    trainer.train_step()
    trainer.report()
    trainer.snapshot()
    trainer.trace([[0.5, -1.0]], [1])
    trainer.update_hyperparameters({"learning_rate": 0.2, "momentum": 0.5})
    trainer.restore(trainer.checkpoint())
    trainer.reset()
    after = {name: set(vars(obj)) for name, obj in owners.items()}
    assert after == before
