"""The cost estimate (engine/cost.py): exact sizes of the networks it describes, limits enforced
before any array exists, and memory peaks (measured with tracemalloc, which sees every NumPy
allocation) that stay within the estimate and the evaluation budget."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from engine import cost, introspect
from engine.config import ConfigError, parse_config
from engine.data import DATASETS
from engine.trainer import Trainer

OUT5 = {"type": "dense", "units": 5, "activation": "softmax"}
SMALL = 8 * 1024 * 1024  # bookkeeping and first-use imports, far below any array refused here
CONV_512_15 = [{"type": "conv2d", "filters": 512, "kernel_size": 15, "padding": "same"}, OUT5]


def glyphs(layers: list[dict[str, Any]], samples: int = 300, **overrides: Any) -> dict[str, Any]:
    config = {
        "dataset": {"name": "glyphs", "samples": samples, "noise": 0.1},
        "layers": layers,
        "loss": "cross_entropy",
        "batch_size": 16,
    }
    config.update(overrides)
    return config


def plane(layers: list[dict[str, Any]], name: str = "spiral", **overrides: Any) -> dict[str, Any]:
    config = {"dataset": {"name": name, "samples": 200}, "layers": layers, "loss": "mse"}
    config.update(overrides)
    return config


def dense(*units: int, activation: str = "tanh") -> list[dict[str, Any]]:
    return [{"type": "dense", "units": u, "activation": activation} for u in units]


CONFIGS = {  # name -> config: every layer type, both conv paths, flattening, dtypes, batch > data
    "dense on five features": plane(
        dense(8, 8, 1), features=["x1", "x2", "x1*x2", "sin(x1)", "x2^2"], batch_size=4096
    ),
    "sine, default features": plane(dense(16, 1), name="sine"),
    "sine, two features": plane(dense(16, 1), name="sine", features=["x1", "sin(x1)"]),
    "drawn points": {
        "dataset": {"name": "points", "points": [[i % 5, i % 3, i % 2] for i in range(30)]},
        "layers": dense(4, 1, activation="sigmoid"),
        "loss": "bce",
    },
    "spiral3 softmax, batchnorm": plane(
        [*dense(16), {"type": "batchnorm"}, {"type": "dropout", "rate": 0.2}, OUT5 | {"units": 3}],
        name="spiral3",
        loss="cross_entropy",
    ),
    "every image layer": glyphs(
        [
            {"type": "conv2d", "filters": 6, "kernel_size": 3, "padding": "same"},
            {"type": "maxpool2d", "size": 2},
            {"type": "conv2d", "filters": 8, "kernel_size": 5, "stride": 2, "activation": "tanh"},
            {"type": "batchnorm"},
            {"type": "avgpool2d", "size": 2},
            {"type": "dropout", "rate": 0.3},
            {"type": "flatten"},
            *dense(12),
            {"type": "batchnorm"},
            OUT5,
        ],
        optimizer={"name": "adam"},
    ),
    "strided conv output flattened": glyphs(
        [
            {
                "type": "conv2d",
                "filters": 16,
                "kernel_size": 7,
                "padding": "same",
                "activation": "linear",
            },
            {"type": "conv2d", "filters": 4, "kernel_size": 3, "activation": "sigmoid"},
            {"type": "conv2d", "filters": 4, "kernel_size": 3, "activation": "linear"},
            OUT5 | {"activation": "linear"},
        ],
        optimizer={"name": "sgd", "momentum": 0.9},
    ),
    "digits float64": {
        "dataset": {"name": "digits", "samples": 400},
        "layers": [
            {"type": "conv2d", "filters": 4, "kernel_size": 5},
            {"type": "flatten"},
            OUT5 | {"units": 10},
        ],
        "loss": "cross_entropy",
        "dtype": "float64",
        "optimizer": {"name": "rmsprop"},
        "early_stopping": {"patience": 3},
    },
}


def peak_bytes(action: Callable[[], Any]) -> tuple[Any, int]:
    """(what action returned, the highest traced memory while it ran, above where it started)."""
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        result = action()
        return result, tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()


# ----------------------------------------------------------------------------- exact sizes


@pytest.mark.parametrize("name", CONFIGS)
def test_estimate_is_exactly_the_built_networks_size_and_work(name: str) -> None:
    trainer = Trainer(CONFIGS[name])
    net, estimate = trainer.network, trainer.cost
    assert estimate.complete
    assert estimate.parameters == net.param_count() == sum(p.data.size for p in net.parameters())
    buffers = sum(a.size for layer in net.layers for a in layer.buffers.values())
    assert estimate.buffers == buffers
    assert estimate.flops_per_sample == net.flops_per_sample()
    batch = min(trainer.config.batch_size, len(trainer.x_train))
    assert estimate.batch == batch
    assert estimate.flops_per_step == 3 * net.flops_per_sample() * batch
    samples = len(trainer.x_train) + len(trainer.x_test)
    assert estimate.flops_per_evaluation == net.flops_per_sample() * samples
    shapes = [(list(e.input_shape), list(e.output_shape)) for e in estimate.layers]
    assert shapes == [(d["input_shape"], d["output_shape"]) for d in net.describe()]


@pytest.mark.parametrize("name", CONFIGS)
def test_the_config_alone_gives_the_trainers_data_shape(name: str) -> None:
    config = parse_config(CONFIGS[name])
    trainer = Trainer(config)
    expected = (trainer.x_train.shape[1:], len(trainer.x_train), len(trainer.x_test))
    shape = cost.data_shape(config)
    assert (shape.input_shape, shape.train, shape.test) == expected
    assert cost.data_shape(config, trainer.dataset) == shape  # from the generated data too
    assert cost.estimate(config, shape).to_dict() == trainer.cost.to_dict()


@pytest.mark.parametrize(
    "info", [i for i in DATASETS if i.name != "points"], ids=lambda info: info.name
)
@pytest.mark.parametrize(("samples", "fraction"), [(4, 0.9), (7, 0.5), (333, 0.3), (1000, 0.05)])
def test_every_builtin_datasets_split_is_known_from_the_config(
    info: Any, samples: int, fraction: float
) -> None:
    layers = dense(3, 1) if info.input_kind != "image" else [{"type": "flatten"}, OUT5]
    config = {
        "dataset": {"name": info.name, "samples": samples, "test_fraction": fraction},
        "layers": layers,
        "loss": "mse",
    }
    if info.task != "regression":
        units = info.num_classes
        config["layers"][-1] = OUT5 | {"units": units}
        config["loss"] = "cross_entropy"
    trainer = Trainer(config)
    shape = cost.data_shape(trainer.config)
    assert (shape.input_shape, shape.train, shape.test) == (
        trainer.x_train.shape[1:],
        len(trainer.x_train),
        len(trainer.x_test),
    )


# ----------------------------------------------------------------------------- limits


def test_63_layers_of_4096_units_are_refused_with_the_count_before_any_array() -> None:
    config = plane([*dense(*[4096] * 63), *dense(1)])

    def build() -> ConfigError:
        with pytest.raises(ConfigError) as caught:
            Trainer(config)
        return caught.value

    error, peak = peak_bytes(build)
    assert error.errors == [
        {
            "field": "layers",
            "message": "the network has 1,040,457,729 parameters, at most 10,000,000 are allowed",
        }
    ]
    assert isinstance(error, cost.CostError) and error.estimate.parameters == 1_040_457_729
    assert peak < SMALL  # no weight, no data: not 12 GB


def test_a_network_just_over_the_parameter_limit_builds_nothing() -> None:
    # 10.9 million parameters: dropping the check would build ~130 MB of arrays first
    config = plane(dense(*[1100] * 10, 1))
    _, peak = peak_bytes(lambda: pytest.raises(ConfigError, Trainer, config))
    assert peak < SMALL


def test_an_uploads_config_is_checked_once_its_shape_is_known_before_the_network() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 2)), np.arange(40) % 2  # (40, 2) points, two classes
    config = plane(dense(*[1100] * 10, 1), name="upload:abc")  # 10.9 million parameters
    assert cost.data_shape(parse_config(config)) is None  # the config alone cannot tell
    error, peak = peak_bytes(
        lambda: pytest.raises(ConfigError, Trainer, config, uploads=lambda _id: (x, y)).value
    )
    assert error.errors[0]["message"] == (
        "the network has 10,904,301 parameters, at most 10,000,000 are allowed"
    )
    assert peak < SMALL  # ~130 MB of weights were never drawn


def test_a_costly_conv_on_100000_glyphs_is_refused_before_the_data_is_drawn() -> None:
    config = glyphs(CONV_512_15, 100_000)
    error, peak = peak_bytes(lambda: pytest.raises(ConfigError, Trainer, config).value)
    assert error.errors[0]["field"] == "dataset.samples"  # 100,000 x 30.3M per evaluation
    assert peak < SMALL  # the 100,000 images (200 MB) were never drawn


def test_the_step_limit_names_the_largest_batch_that_fits() -> None:
    over = cost.estimate(parse_config(glyphs(CONV_512_15, 1000, batch_size=111)), _shape(1000))
    error = cost.first_problem(over)
    assert error == {
        "field": "batch_size",
        "message": "a training step costs about 10,082,453,121 multiply-adds (111 samples x "
        "90,832,911), at most 10,000,000,000 are allowed; use batch_size 110 or less",
    }
    fits = cost.estimate(parse_config(glyphs(CONV_512_15, 1000, batch_size=110)), _shape(1000))
    assert cost.first_problem(fits) is None and fits.flops_per_step <= cost.MAX_FLOPS_PER_STEP


def test_the_evaluation_limit_names_the_most_samples_that_fit() -> None:
    over = cost.estimate(parse_config(glyphs(CONV_512_15, 5000)), _shape(5000))
    assert cost.first_problem(over) == {
        "field": "dataset.samples",
        "message": "evaluating all 5,000 samples costs about 151,388,185,000 multiply-adds, at "
        "most 100,000,000,000 are allowed; use at most 3,302 samples",
    }
    assert (
        cost.first_problem(cost.estimate(parse_config(glyphs(CONV_512_15, 3302)), _shape(3302)))
        is None
    )
    assert cost.first_problem(cost.estimate(parse_config(glyphs(CONV_512_15, 3303)), _shape(3303)))


def test_the_memory_limit_names_the_largest_batch_that_fits() -> None:
    layers = [{"type": "conv2d", "filters": 512, "kernel_size": 1}, OUT5]  # cheap, 3.5 MB a sample
    over = cost.estimate(parse_config(glyphs(layers, 1000, batch_size=700)), _shape(1000))
    error = cost.first_problem(over)
    assert error["field"] == "batch_size"
    assert error["message"].startswith("the run needs about 2.7 GiB of memory (")
    assert error["message"].endswith(
        "at most 2 GiB are allowed per session; use batch_size 500 or less"
    )
    for batch, fits in ((500, True), (501, False)):
        estimate = cost.estimate(parse_config(glyphs(layers, 1000, batch_size=batch)), _shape(1000))
        assert (estimate.memory_bytes <= cost.MAX_SESSION_BYTES) is fits
        assert (cost.first_problem(estimate) is None) is fits


def test_a_patch_of_the_batch_size_is_held_to_the_step_limit() -> None:
    trainer = Trainer(glyphs(CONV_512_15, 200, batch_size=8))
    with pytest.raises(ConfigError) as caught:
        trainer.update_hyperparameters({"batch_size": 4096})  # 140 samples x 90.8M x 3
    assert caught.value.errors[0]["field"] == "batch_size"
    assert "use batch_size 110 or less" in caught.value.errors[0]["message"]
    assert trainer.config.batch_size == 8 and trainer.cost.batch == 8
    trainer.update_hyperparameters({"batch_size": 100})
    assert trainer.cost.batch == 100 and trainer.flops_per_step() == 3 * 100 * 30_277_637


def _shape(samples: int) -> cost.DataShape:
    """Glyphs with the default 30 % test split."""
    test = cost.test_count(samples, 0.3)
    return cost.DataShape((1, 16, 16), 256, samples - test, test)


# ----------------------------------------------------------------------------- memory


@pytest.mark.parametrize("name", ["every image layer", "strided conv output flattened"])
def test_measured_peaks_stay_within_the_estimate(name: str) -> None:
    config = CONFIGS[name] | {"batch_size": 64}

    def run() -> Trainer:
        trainer = Trainer(config)
        trainer.train(4, on_report=[].append)  # steps, an update measured, evaluation, report
        trainer.checkpoint()
        return trainer

    trainer, peak = peak_bytes(run)
    estimate = trainer.cost
    assert peak <= estimate.memory_bytes
    assert estimate.memory_bytes <= 3 * peak  # an estimate, not a refusal of everything


def test_evaluation_runs_in_chunks_that_fit_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    config = glyphs([{"type": "conv2d", "filters": 64, "kernel_size": 1}, OUT5], 1000)
    whole = Trainer(config)  # 700 + 300 samples of 128 KB each: one chunk would be 90 MB
    assert whole.cost.eval_chunk == 1000
    monkeypatch.setattr(cost, "EVAL_MEMORY_BYTES", 8 * 1024 * 1024)
    chunked = Trainer(config)
    assert chunked.cost.eval_chunk == 8 * 1024 * 1024 // (
        chunked.cost.eval_bytes // chunked.cost.eval_chunk
    )
    assert 30 < chunked.cost.eval_chunk < 100
    chunked.train_step()
    whole.train_step()
    result, peak = peak_bytes(chunked.evaluate)
    assert peak <= chunked.cost.eval_bytes <= 8 * 1024 * 1024
    expected = whole.evaluate()
    assert result["accuracy"] == expected["accuracy"]
    assert result["test_accuracy"] == expected["test_accuracy"]
    assert result["loss"] == pytest.approx(expected["loss"], rel=1e-6)
    assert result["test_loss"] == pytest.approx(expected["test_loss"], rel=1e-6)
    images = whole.dataset.x_test  # (300, 1, 16, 16)
    outputs, peak = peak_bytes(lambda: chunked.predict(images))
    assert peak <= chunked.cost.eval_bytes + outputs.nbytes
    np.testing.assert_allclose(outputs, whole.predict(images), rtol=1e-5, atol=1e-7)


def compact_grid(trainer: Trainer, chunk: int | None) -> dict[str, Any]:
    """The 200 x 200 boundary grid as /boundary builds it, with float32 maps, in `chunk` points
    per forward pass (None: all at once)."""
    data = trainer.dataset
    assert data.domain is not None
    plane = introspect.Plane(data.domain, trainer.features, trainer.encoding.inputs)
    return introspect.grid(trainer.network, plane, 200, 800_000, compact=True, chunk=chunk)


def test_the_decision_grid_runs_in_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    config = plane(dense(256, 256, 1))
    whole = Trainer(config)
    monkeypatch.setattr(cost, "EVAL_MEMORY_BYTES", 4 * 1024 * 1024)
    chunked = Trainer(config)
    assert chunked.cost.eval_chunk < 2048
    # one pass over 200 x 200 points would hold 40,000 x 512 x 2 values: 160 MB
    grid, peak = peak_bytes(lambda: compact_grid(chunked, chunked.cost.eval_chunk))
    assert peak < 24 * 1024 * 1024
    assert grid["neuron_resolution"] == int((800_000 / 512) ** 0.5) == 39
    full = compact_grid(whole, None)
    np.testing.assert_allclose(grid["output"], full["output"], atol=1e-4)
    for name in ("0", "1"):
        np.testing.assert_allclose(grid["neurons"][name], full["neurons"][name], atol=1e-4)


def test_neuron_maps_never_pass_their_budget() -> None:
    trainer = Trainer(plane(dense(2048, 1)))
    grid = trainer.grid(100, neuron_budget=60_000)
    maps = np.array(grid["neurons"]["0"])  # (2048, n, n)
    assert maps.shape == (2048, 5, 5) and maps.size <= 60_000


# ----------------------------------------------------------------------------- snapshots


def test_snapshot_weights_share_one_budget_first_come_first_served() -> None:
    trainer = Trainer(plane(dense(*[100] * 30, 1)))  # 29 layers of 10,100 weights
    trainer.train_step()
    snapshot = trainer.snapshot(grid_resolution=None)
    shown = sorted({int(name.split(".")[0]) for name in snapshot["weights"]})
    # 300 + 19 x 10,100 = 192,200 of 200,000; the 1-unit output layer (101) still fits after
    assert shown == [*range(20), 30]
    sizes = [layer.param_count() for layer in trainer.network.layers]
    assert sum(sizes[i] for i in shown) <= introspect.SNAPSHOT_WEIGHT_VALUES
    assert set(snapshot["grads"]) == set(snapshot["weights"])


def test_snapshot_conv_maps_share_one_budget() -> None:
    trainer = Trainer(glyphs([{"type": "conv2d", "filters": 512, "padding": "same"}, OUT5], 60))
    trainer.train_step()
    conv = trainer.snapshot(grid_resolution=None)["conv"]["0"]
    layer = trainer.network.layers[0]
    assert np.array(conv["input"]).shape == (1, 16, 16)
    maps = np.array(conv["feature_maps"])  # what is left of 65,536 after the input's 256
    assert maps.shape == ((introspect.SNAPSHOT_MAP_VALUES - 256) // 256, 16, 16) == (255, 16, 16)
    np.testing.assert_allclose(maps, np.round(layer.output[0][:255], 4), atol=1e-6)
    assert len(conv["filters"]) == 512  # 4,608 weights: within the per-layer limit
    big = Trainer(glyphs(CONV_512_15, 60))  # 115,200 weights: left out, as weights are
    big.train_step()
    assert big.snapshot(grid_resolution=None)["conv"]["0"]["filters"] is None
