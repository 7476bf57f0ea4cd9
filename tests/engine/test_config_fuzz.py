"""Property tests of the config validator: any document gets a config or field-named errors."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.config import ConfigError, parse_config
from engine.trainer import Trainer

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**12), max_value=10**12)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)

layer = st.fixed_dictionaries(
    {"type": st.sampled_from(["dense", "conv2d", "flatten", "batchnorm", "dropout", "x"])},
    optional={
        "units": st.one_of(st.integers(-2, 20), st.floats(allow_nan=True), st.text(max_size=3)),
        "activation": st.sampled_from(
            ["linear", "sigmoid", "tanh", "relu", "leaky_relu", "softmax", "gelu"]
        ),
        "rate": st.floats(-1, 2),
        "filters": st.integers(-1, 4),
    },
)

near_valid = st.fixed_dictionaries(
    {
        "dataset": st.fixed_dictionaries(
            {"name": st.sampled_from(["xor", "circle", "spiral", "sine", "plane", "nope"])},
            optional={
                "samples": st.integers(-5, 300),
                "noise": st.floats(-0.5, 1.5) | st.just(float("nan")),
                "test_fraction": st.floats(-0.5, 1.5),
            },
        ),
        "layers": st.lists(layer, min_size=0, max_size=4),
    },
    optional={
        "loss": st.sampled_from(["mse", "bce", "cross_entropy", "hinge"]),
        "batch_size": st.integers(-3, 5000),
        "seed": st.integers(-3, 2**33),
        "features": st.lists(st.sampled_from(["x1", "x2", "x1^2", "sin(x2)", "zz"]), max_size=4),
        "optimizer": st.fixed_dictionaries(
            {},
            optional={
                "name": st.sampled_from(["sgd", "adam", "rmsprop", "newton"]),
                "learning_rate": st.floats(-1, 200) | st.sampled_from([float("nan"), float("inf")]),
                "momentum": st.floats(-1, 2),
                "nesterov": st.booleans(),
            },
        ),
        "gradient_clip": st.none()
        | st.fixed_dictionaries(
            {"kind": st.sampled_from(["norm", "value", "max"]), "threshold": st.floats(-1, 10)}
        ),
        "init": st.sampled_from(["xavier", "he", "zeros", "magic"]) | json_values,
    },
)


def check_errors(error: ConfigError) -> None:
    assert error.errors
    for item in error.errors:
        assert isinstance(item["field"], str) and isinstance(item["message"], str)
        assert item["message"]
    json.dumps(error.errors)  # JSON-able as it is


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_any_json_value_is_a_config_error_or_a_config(document: object) -> None:
    try:
        parse_config(document)
    except ConfigError as error:
        check_errors(error)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(near_valid)
def test_near_valid_documents_build_or_name_their_field(document: dict) -> None:
    try:
        config = parse_config(document)
    except ConfigError as error:
        check_errors(error)
        return
    try:
        trainer = Trainer(config)
    except ConfigError as error:
        check_errors(error)
        return
    trainer.train(3)  # whatever validates also trains without crashing
