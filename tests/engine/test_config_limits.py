"""Every limit of a run is engine.config's: a value past it is refused with the field's name, one
at its edge is taken, and the live updates (PATCH) share the run configuration's limits.

The layers, optimizers, schedules and clipping trust the config's values and no longer check
them a second time; these are the checks that stand for theirs. Before, they had drifted: a
Dropout layer took rate 1 and a BatchNorm layer momentum 0, an optimizer any momentum or
learning rate >= 0, while the config refused all four.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from engine.config import ConfigError, HyperparameterUpdate, OptimizerConfig, RunConfig
from engine.config import parse_config as parse
from engine.trainer import Trainer

BASE: dict[str, Any] = {
    "seed": 0,
    "dataset": {"name": "xor", "samples": 40},
    "layers": [
        {"type": "dense", "units": 4, "activation": "tanh"},
        {"type": "batchnorm"},
        {"type": "dropout", "rate": 0.5},
        {"type": "dense", "units": 1, "activation": "tanh"},
    ],
}
IMAGES: dict[str, Any] = {
    "seed": 0,
    "dataset": {"name": "glyphs", "samples": 40},
    "layers": [
        {"type": "conv2d", "filters": 2},
        {"type": "maxpool2d"},
        {"type": "avgpool2d"},
        {"type": "flatten"},
        {"type": "dense", "units": 5, "activation": "softmax"},
    ],
    "loss": "cross_entropy",
}


def with_value(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of base with the field at a dotted path ("layers.2.rate") set to value."""
    out = copy.deepcopy(base)
    *parents, last = path.split(".")
    node: Any = out
    for part in parents:
        node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
    node[int(last) if last.isdigit() else last] = value
    return out


# (config, dotted path, a value past the limit, a value at its edge, the field named, words)
LIMITS = [
    (BASE, "layers.2.rate", 1.0, 0.0, "layers[2].rate", "< 1"),  # the layer took 1
    (BASE, "layers.2.rate", -0.1, 0.99, "layers[2].rate", ">= 0"),
    (BASE, "layers.1.momentum", 0.0, 1.0, "layers[1].momentum", "> 0"),  # the layer took 0
    (BASE, "layers.1.eps", 0.0, 1.0, "layers[1].eps", "> 0"),
    (BASE, "layers.1.eps", 1.5, 1e-9, "layers[1].eps", "<= 1"),
    (BASE, "layers.0.units", 0, 1, "layers[0].units", ">= 1"),
    (BASE, "layers.0.units", 4097, 4096, "layers[0].units", "<= 4096"),
    (IMAGES, "layers.0.filters", 0, 1, "layers[0].filters", ">= 1"),
    (IMAGES, "layers.0.kernel_size", 0, 1, "layers[0].kernel_size", ">= 1"),
    (IMAGES, "layers.0.stride", 0, 1, "layers[0].stride", ">= 1"),
    (IMAGES, "layers.0.padding", "full", "same", "layers[0].padding", "'valid'"),
    (IMAGES, "layers.1.size", 0, 1, "layers[1].size", ">= 1"),
    (IMAGES, "layers.2.size", 9, 1, "layers[2].size", "<= 8"),
    (BASE, "optimizer.learning_rate", 0.0, 100.0, "optimizer.learning_rate", "> 0"),
    (BASE, "optimizer.momentum", 1.0, 0.0, "optimizer.momentum", "< 1"),  # the optimizer took 1
    (BASE, "optimizer.beta1", 1.0, 0.0, "optimizer.beta1", "< 1"),
    (BASE, "optimizer.beta2", -0.1, 0.0, "optimizer.beta2", ">= 0"),
    (BASE, "optimizer.eps", 0.0, 1.0, "optimizer.eps", "> 0"),  # the optimizer took 0
    (BASE, "optimizer.alpha", 1.0, 0.0, "optimizer.alpha", "< 1"),  # the optimizer took 1
    (BASE, "optimizer.schedule.step_size", 0, 1, "optimizer.schedule.step_size", ">= 1"),
    (BASE, "optimizer.schedule.total_steps", 0, 1, "optimizer.schedule.total_steps", ">= 1"),
    (BASE, "optimizer.schedule.gamma", 0.0, 1.0, "optimizer.schedule.gamma", "> 0"),
    (BASE, "optimizer.schedule.min_lr", -0.1, 0.0, "optimizer.schedule.min_lr", ">= 0"),
    (BASE, "gradient_clip.threshold", 0.0, 1e6, "gradient_clip.threshold", "> 0"),
    (BASE, "init.std", 0.0, 100.0, "init.std", "> 0"),
    (BASE, "init.range", 101.0, 100.0, "init.range", "<= 100"),
    (BASE, "batch_size", 0, 1, "batch_size", ">= 1"),
    (BASE, "batch_size", 4097, 4096, "batch_size", "<= 4096"),
    (BASE, "dataset.samples", 3, 4, "dataset.samples", ">= 4"),
    (BASE, "dataset.test_fraction", 0.95, 0.9, "dataset.test_fraction", "<= 0.9"),
    (BASE, "dataset.noise", 1.5, 1.0, "dataset.noise", "<= 1"),
]


@pytest.mark.parametrize(
    ("base", "path", "bad", "edge", "field", "words"),
    LIMITS,
    ids=[f"{case[1]}={case[2]}" for case in LIMITS],
)
def test_a_value_past_a_limit_is_refused_with_its_field_and_the_edge_is_taken(
    base: dict[str, Any], path: str, bad: Any, edge: Any, field: str, words: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        Trainer(with_value(base, path, bad))
    assert [e["field"] for e in caught.value.errors] == [field], caught.value.errors
    assert words in caught.value.errors[0]["message"], caught.value.errors[0]["message"]
    parse(with_value(base, path, edge))  # the edge itself is inside


@pytest.mark.parametrize(
    ("update", "field", "words"),
    [
        ({"learning_rate": 0.0}, "learning_rate", "> 0"),
        ({"learning_rate": 101.0}, "learning_rate", "<= 100"),
        ({"batch_size": 0}, "batch_size", ">= 1"),
        ({"momentum": 1.0}, "momentum", "< 1"),
        ({"beta1": 1.0}, "beta1", "< 1"),
        ({"beta2": -0.5}, "beta2", ">= 0"),
        ({"eps": 0.0}, "eps", "> 0"),
        ({"alpha": 1.0}, "alpha", "< 1"),
        ({"gradient_clip": {"kind": "norm", "threshold": 0.0}}, "gradient_clip.threshold", "> 0"),
        ({"regularization": {"kind": "l2", "rate": 11.0}}, "regularization.rate", "<= 10"),
    ],
)
def test_a_live_update_past_a_limit_is_refused_with_its_field(
    update: dict[str, Any], field: str, words: str
) -> None:
    trainer = Trainer(BASE)
    with pytest.raises(ConfigError) as caught:
        trainer.update_hyperparameters(update)
    assert [e["field"] for e in caught.value.errors] == [field], caught.value.errors
    assert words in caught.value.errors[0]["message"]
    assert trainer.config == parse(BASE)  # nothing of a refused update is applied


def test_live_updates_have_the_run_configurations_limits() -> None:
    # the PATCH model and the run configuration take each limit from one definition: the JSON
    # Schema of every hot field, but for its null, is the configuration's own
    patch = HyperparameterUpdate.model_json_schema()
    run = RunConfig.model_json_schema()
    optimizer = OptimizerConfig.model_json_schema()
    compared = 0
    for name, schema in patch["properties"].items():
        if name in ("regularization", "gradient_clip"):
            continue  # the same nested models ($ref), not numbers with limits
        (value,) = [s for s in schema["anyOf"] if s.get("type") != "null"]
        own = optimizer["properties"].get(name) or run["properties"][name]
        limits = {k: v for k, v in own.items() if k not in ("default", "description", "title")}
        assert value == limits, name
        compared += 1
    assert compared == 8


# What the layers' and optimizers' constructors refused before the limits moved here, with the
# same values: each is now the config's refusal, naming the field with its config path.
REFUSED_BY_THE_CONSTRUCTORS = [
    (BASE, "layers.0.units", 0, "layers[0].units: must be an integer >= 1, got 0"),
    (IMAGES, "layers.0.filters", 0, "layers[0].filters: must be an integer >= 1, got 0"),
    (IMAGES, "layers.0.kernel_size", 0, "layers[0].kernel_size: must be an integer >= 1, got 0"),
    (IMAGES, "layers.0.stride", -1, "layers[0].stride: must be an integer >= 1, got -1"),
    (IMAGES, "layers.1.size", 0, "layers[1].size: must be an integer >= 1, got 0"),
    (IMAGES, "layers.2.size", 1.5, "layers[2].size: must be an integer, got 1.5"),
    (
        BASE,
        "optimizer.learning_rate",
        -1.0,
        "optimizer.learning_rate: must be a number > 0.0, got -1.0",
    ),
    (BASE, "optimizer.momentum", -0.5, "optimizer.momentum: must be a number >= 0.0, got -0.5"),
    (BASE, "optimizer.alpha", 1.5, "optimizer.alpha: must be a number < 1.0, got 1.5"),
    (BASE, "optimizer.eps", -1e-8, "optimizer.eps: must be a number > 0.0, got -1e-08"),
    (BASE, "optimizer.beta1", 1.0, "optimizer.beta1: must be a number < 1.0, got 1.0"),
    (BASE, "optimizer.beta2", 1.0, "optimizer.beta2: must be a number < 1.0, got 1.0"),
    (BASE, "optimizer.eps", -1.0, "optimizer.eps: must be a number > 0.0, got -1.0"),
    (
        BASE,
        "optimizer.schedule.total_steps",
        0,
        "optimizer.schedule.total_steps: must be an integer >= 1, got 0",
    ),
]


@pytest.mark.parametrize(
    ("base", "path", "bad", "message"),
    REFUSED_BY_THE_CONSTRUCTORS,
    ids=[f"{case[1]}={case[2]}" for case in REFUSED_BY_THE_CONSTRUCTORS],
)
def test_what_a_constructor_refused_the_config_refuses_with_the_whole_message(
    base: dict[str, Any], path: str, bad: Any, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        Trainer(with_value(base, path, bad))
    assert str(caught.value) == message
