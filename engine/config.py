"""The run configuration document: one JSON-able description of a run, validated once, up front.

The same pydantic models validate the engine's input and the REST API's bodies, so an error reads the
same wherever it is raised: ``layers[2].units: must be an integer >= 1, got 0``.

Every limit of a run is defined here, once. The engine's layers, optimizers, schedules and clipping
take the values of a validated config and do not check them again (checks repeated there had
drifted from these: a layer took dropout rate 1 and batch-norm momentum 0, an optimizer any
momentum or learning rate >= 0, while the config refused them).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    field_validator,
    model_validator,
)

Activation = Literal["linear", "sigmoid", "tanh", "relu", "leaky_relu", "softmax"]
LossName = Literal["mse", "bce", "cross_entropy"]
Feature = Literal["x1", "x2", "x1^2", "x2^2", "x1*x2", "sin(x1)", "sin(x2)"]
FEATURE_NAMES: tuple[str, ...] = get_args(Feature)  # the Playground features, Playground's order
MAX_UNITS = 4096
MAX_LAYERS = 64
MIN_SAMPLES = 4  # a dataset smaller than this cannot be split and batched
MAX_SAMPLES = 100_000
MAX_TEST_FRACTION = 0.9

# Numbers and booleans are strict, in the engine and every REST body alike: true is not a number,
# "16" is not an integer and neither is 2.0 (pydantic's lax mode took all three, as 1.0 and 16).
# A JSON integer is still a number (1 for a float field is 1.0).
Int = Annotated[int, Strict()]
Float = Annotated[float, Strict()]
Bool = Annotated[bool, Strict()]

# Limits shared by the run configuration and the live updates of a running session (PATCH).
LearningRate = Annotated[Float, Field(gt=0.0, le=100.0)]
BatchSize = Annotated[Int, Field(ge=1, le=4096)]
Momentum = Annotated[Float, Field(ge=0.0, lt=1.0)]
Beta = Annotated[Float, Field(ge=0.0, lt=1.0)]  # Adam's decay rates of m and v
Epsilon = Annotated[Float, Field(gt=0.0, le=1.0)]  # added to a denominator
Alpha = Annotated[Float, Field(ge=0.0, lt=1.0)]  # RMSprop's smoothing of g^2


class _Model(BaseModel):
    """Base of every config model: unknown fields are errors, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class DatasetConfig(_Model):
    """Which data to train on and how it is generated and split."""

    name: str = Field(min_length=1, max_length=80, description="built-in name or 'upload:<id>'")
    samples: Int = Field(
        500, ge=MIN_SAMPLES, le=MAX_SAMPLES, description="points generated (train + test)"
    )
    noise: Float = Field(0.0, ge=0.0, le=1.0, description="0..1 (Playground's 0..50 %)")
    test_fraction: Float = Field(
        0.3, ge=0.0, le=MAX_TEST_FRACTION, description="share held out for testing"
    )
    points: list[list[Float]] | None = Field(
        None, max_length=5000, description="for name 'points': [[x1, x2, label], ...]"
    )
    target: str | None = Field(None, max_length=200, description="CSV target column name")


InitKind = Literal["xavier", "he", "normal", "uniform", "zeros"]


class InitConfig(_Model):
    """How weights start: xavier (glorot uniform), he (kaiming normal), normal, uniform or zeros."""

    kind: InitKind = "xavier"
    std: Float = Field(0.1, gt=0.0, le=100.0, description="standard deviation for 'normal'")
    range: Float = Field(0.1, gt=0.0, le=100.0, description="U(-range, range) for 'uniform'")


class ScheduleConfig(_Model):
    """Learning rate over steps: lr_t = base * schedule(t)."""

    kind: Literal["constant", "step", "exponential", "cosine"] = "constant"
    step_size: Int = Field(1000, ge=1, description="'step': decay every step_size steps")
    gamma: Float = Field(0.5, gt=0.0, le=1.0, description="'step'/'exponential' decay factor")
    total_steps: Int = Field(10_000, ge=1, description="'cosine': steps to reach min_lr")
    min_lr: Float = Field(0.0, ge=0.0, description="'cosine': final learning rate")


class OptimizerConfig(_Model):
    """The update rule and its hyperparameters (PyTorch's definitions)."""

    name: Literal["sgd", "rmsprop", "adam"] = "sgd"
    learning_rate: LearningRate = 0.03
    momentum: Momentum = Field(0.0, description="sgd momentum")
    nesterov: Bool = Field(False, description="sgd: Nesterov momentum (needs momentum > 0)")
    beta1: Beta = Field(0.9, description="adam")
    beta2: Beta = Field(0.999, description="adam")
    eps: Epsilon = Field(1e-8, description="adam / rmsprop")
    alpha: Alpha = Field(0.99, description="rmsprop smoothing constant")
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self) -> OptimizerConfig:
        if self.nesterov and self.momentum <= 0.0:
            raise _FieldError("nesterov", "needs momentum > 0, got momentum 0")
        return self


class RegularizationConfig(_Model):
    """Weight penalty added to the training loss: l1 = rate*sum|w|, l2 = rate/2*sum w^2."""

    kind: Literal["none", "l1", "l2"] = "none"
    rate: Float = Field(0.0, ge=0.0, le=10.0)


class ClipConfig(_Model):
    """Gradient clipping: by value (clip(g, -c, c)) or by global L2 norm."""

    kind: Literal["value", "norm"] = "norm"
    threshold: Float = Field(1.0, gt=0.0, le=1e6)


class EarlyStoppingConfig(_Model):
    """Stop when the test loss has not improved by min_delta for `patience` evaluations."""

    patience: Int = Field(10, ge=1, le=100_000, description="evaluations without improvement")
    min_delta: Float = Field(0.0, ge=0.0)
    eval_every: Int = Field(25, ge=1, le=1_000_000, description="steps between evaluations")
    restore_best: Bool = Field(True, description="put back the best step's weights on stop")


class DenseLayer(_Model):
    """y = f(x @ W + b), W of shape (fan_in, units)."""

    type: Literal["dense"] = "dense"
    units: Int = Field(ge=1, le=MAX_UNITS)
    activation: Activation = "tanh"


class Conv2DLayer(_Model):
    """y = f(conv(x, W) + b), W of shape (filters, in_channels, kh, kw), NCHW."""

    type: Literal["conv2d"] = "conv2d"
    filters: Int = Field(ge=1, le=512)
    kernel_size: Int = Field(3, ge=1, le=15)
    stride: Int = Field(1, ge=1, le=8)
    padding: Literal["valid", "same"] = "valid"
    activation: Activation = "relu"


class MaxPool2DLayer(_Model):
    """Max over size x size windows, stride = size."""

    type: Literal["maxpool2d"] = "maxpool2d"
    size: Int = Field(2, ge=1, le=8)


class AvgPool2DLayer(_Model):
    """Mean over size x size windows, stride = size."""

    type: Literal["avgpool2d"] = "avgpool2d"
    size: Int = Field(2, ge=1, le=8)


class FlattenLayer(_Model):
    """(N, C, H, W) -> (N, C*H*W)."""

    type: Literal["flatten"] = "flatten"


class BatchNormLayer(_Model):
    """x_hat = (x - mu) / sqrt(var + eps); y = gamma * x_hat + beta."""

    type: Literal["batchnorm"] = "batchnorm"
    momentum: Float = Field(0.1, gt=0.0, le=1.0)
    eps: Float = Field(1e-5, gt=0.0, le=1.0)


class DropoutLayer(_Model):
    """Zero each value with probability `rate` while training (inverted dropout)."""

    type: Literal["dropout"] = "dropout"
    rate: Float = Field(0.5, ge=0.0, lt=1.0)


LayerConfig = Annotated[
    DenseLayer
    | Conv2DLayer
    | MaxPool2DLayer
    | AvgPool2DLayer
    | FlattenLayer
    | BatchNormLayer
    | DropoutLayer,
    Field(discriminator="type"),
]
LAYER_TYPES = ("dense", "conv2d", "maxpool2d", "avgpool2d", "flatten", "batchnorm", "dropout")


class RunConfig(_Model):
    """Everything that defines a run. Only `dataset` and `layers` are required."""

    seed: Int = Field(0, ge=0, le=2**32 - 1, description="seeds data, init, batches and dropout")
    dataset: DatasetConfig
    features: list[Feature] = Field(
        default_factory=lambda: ["x1", "x2"], min_length=1, max_length=7
    )
    layers: list[LayerConfig] = Field(min_length=1, max_length=MAX_LAYERS)
    loss: LossName = "mse"
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    batch_size: BatchSize = 10
    regularization: RegularizationConfig = Field(default_factory=RegularizationConfig)
    gradient_clip: ClipConfig | None = None
    init: InitConfig = Field(default_factory=InitConfig)
    early_stopping: EarlyStoppingConfig | None = None
    dtype: Literal["float32", "float64"] = "float32"

    # the JSON Schema offers the shorthand too, so a client generated from it takes the presets
    @field_validator("init", mode="before", json_schema_input_type=InitConfig | InitKind)
    @classmethod
    def _init_from_name(cls, value: Any) -> Any:
        """Accept "he" as shorthand for {"kind": "he"}."""
        return {"kind": value} if isinstance(value, str) else value

    @field_validator("features")
    @classmethod
    def _features_unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"must not repeat a feature, got {value}")
        return value

    @model_validator(mode="after")
    def _output_layer_fits_loss(self) -> RunConfig:
        last = self.layers[-1]
        where = f"layers[{len(self.layers) - 1}]"
        if not isinstance(last, DenseLayer):
            raise _FieldError(
                f"{where}.type", f"the output layer must be 'dense', got {last.type!r}"
            )
        if self.loss == "cross_entropy" and last.activation not in ("softmax", "linear"):
            raise _FieldError(
                f"{where}.activation",
                f"cross_entropy needs a 'softmax' (or 'linear' logits) output, "
                f"got {last.activation!r}",
            )
        if self.loss == "bce" and last.activation != "sigmoid":
            raise _FieldError(
                f"{where}.activation",
                f"bce needs a 'sigmoid' output (probabilities), got {last.activation!r}",
            )
        if self.loss != "cross_entropy" and last.activation == "softmax" and last.units == 1:
            raise _FieldError(
                f"{where}.activation", "softmax over one unit is always 1; use sigmoid or tanh"
            )
        return self


class HyperparameterUpdate(_Model):
    """What may change between steps of a running session (PATCH /api/sessions/{id})."""

    learning_rate: LearningRate | None = None
    batch_size: BatchSize | None = None
    regularization: RegularizationConfig | None = None
    gradient_clip: ClipConfig | None = Field(None, description="null switches clipping off")
    momentum: Momentum | None = None
    nesterov: Bool | None = None
    beta1: Beta | None = None
    beta2: Beta | None = None
    eps: Epsilon | None = None
    alpha: Alpha | None = None


# ----------------------------------------------------------------------------- errors


class FieldError(dict):  # type: ignore[type-arg]
    """One problem: {"field": "layers[2].units", "message": "must be an integer >= 1, got 0"}.

    `code` says what kind of mistake it is ("int_type", "greater_than_equal", ...; see
    `error_code`), an attribute rather than a key so the dict stays the engine's documented pair.
    """

    def __init__(self, field: str, message: str, code: str = "value_error") -> None:
        super().__init__(field=field, message=message)
        self.code = code

    def __str__(self) -> str:
        return f"{self['field']}: {self['message']}" if self["field"] else self["message"]


class ConfigError(ValueError):
    """A run configuration that cannot be used; `errors` lists every problem with its field."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("; ".join(str(e) for e in errors))

    @classmethod
    def single(cls, field: str, message: str) -> ConfigError:
        """One error for one field."""
        return cls([FieldError(field, message)])


class _FieldError(ValueError):
    """Raised inside a model validator to name a field other than the model's own location."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


def field_path(loc: tuple[int | str, ...]) -> str:
    """('layers', 2, 'dense', 'units') -> 'layers[2].units' (union tags dropped)."""
    out = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in LAYER_TYPES and i > 0 and isinstance(loc[i - 1], int):
            continue  # the discriminated-union tag pydantic inserts after the list index
        elif part in ("function-after", "function-before", "function-wrap"):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out


def _show(value: Any) -> str:
    """How a received value is quoted in a message."""
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return repr(value)
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _message(err: dict[str, Any]) -> str:
    """Pydantic's error -> 'must be ..., got ...'."""
    kind, ctx, got = err["type"], err.get("ctx") or {}, err.get("input")
    bounds = {
        "greater_than_equal": (">=", "ge"),
        "greater_than": (">", "gt"),
        "less_than_equal": ("<=", "le"),
        "less_than": ("<", "lt"),
    }
    if kind in bounds:
        op, key = bounds[kind]
        bound = ctx.get(key)
        noun = (
            "an integer" if isinstance(bound, int) and not isinstance(bound, bool) else "a number"
        )
        return f"must be {noun} {op} {ctx.get(key)}, got {_show(got)}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"must be an integer, got {_show(got)}"
    if kind in ("float_type", "float_parsing", "finite_number"):
        return f"must be a finite number, got {_show(got)}"
    if kind in ("bool_type", "bool_parsing"):
        return f"must be true or false, got {_show(got)}"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}, got {_show(got)}"
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return f"is not a known field (got {_show(got)})"
    if kind == "union_tag_invalid":
        return (
            f"must be one of {', '.join(repr(t) for t in LAYER_TYPES)}, got {_show(ctx.get('tag'))}"
        )
    if kind == "union_tag_not_found":
        return f"needs a 'type', one of {', '.join(repr(t) for t in LAYER_TYPES)}"
    if kind in ("too_short", "too_long"):
        bound = ctx.get("min_length") if kind == "too_short" else ctx.get("max_length")
        word = "at least" if kind == "too_short" else "at most"
        return f"must have {word} {bound} items, got {ctx.get('actual_length')}"
    if kind in ("string_too_short", "string_too_long"):
        bound = ctx.get("min_length") if kind == "string_too_short" else ctx.get("max_length")
        word = "at least" if kind == "string_too_short" else "at most"
        return f"must have {word} {bound} characters"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"must be an object, got {_show(got)}"
    if kind == "list_type":
        return f"must be a list, got {_show(got)}"
    if kind == "string_type":
        return f"must be a string, got {_show(got)}"
    message = str(err.get("msg", "is invalid"))
    return message.removeprefix("Value error, ")


# pydantic error types that are the same mistake as another one, by the name kept. Lax parsing
# ("abc" for an integer query parameter) and strict typing ("16" in a JSON body) both say "not an
# integer"; an unknown layer type is an unknown choice like any other.
_SAME_CODE = {
    "int_parsing": "int_type",
    "int_from_float": "int_type",
    "float_parsing": "float_type",
    "bool_parsing": "bool_type",
    "model_type": "dict_type",
    "model_attributes_type": "dict_type",
    "union_tag_invalid": "literal_error",
    "union_tag_not_found": "missing",
    "json_invalid": "invalid_json",
}


def error_code(kind: str) -> str:
    """The stable code of a pydantic error type (docs/errors.md lists them)."""
    return _SAME_CODE.get(kind, kind)


def errors_from_validation(exc: ValidationError, prefix: str = "") -> list[FieldError]:
    """Every pydantic error as a FieldError with a readable path and message."""
    out: list[FieldError] = []
    for err in exc.errors(include_url=False):
        path = field_path(tuple(err["loc"]))
        if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            path += ".type"
        raised = (err.get("ctx") or {}).get("error")
        if isinstance(raised, _FieldError):
            path = ".".join(p for p in (path, raised.field) if p)
            message = raised.message
        else:
            message = _message(err)
        code = error_code(err["type"])
        out.append(FieldError(".".join(p for p in (prefix, path) if p), message, code))
    return out


def parse_config(document: Any) -> RunConfig:
    """Validate a run configuration document; raise ConfigError listing every problem."""
    if isinstance(document, RunConfig):
        return document
    if not isinstance(document, dict):
        raise ConfigError.single(
            "", f"a run configuration must be an object, got {_show(document)}"
        )
    try:
        return RunConfig.model_validate(document)
    except ValidationError as exc:
        raise ConfigError(errors_from_validation(exc)) from None


def config_to_dict(config: RunConfig) -> dict[str, Any]:
    """The JSON-able document of a config (what GET /api/sessions/{id}/config returns). A run on
    an upload shows `features` only when they were asked for: its inputs are the file's columns,
    not Playground's x1 and x2."""
    doc = config.model_dump(mode="json")
    if config.dataset.name.startswith("upload:") and "features" not in config.model_fields_set:
        del doc["features"]
    return doc
