"""The cost of a run from its config alone: parameters, multiply-adds and memory, before any array.

`estimate` walks the layer configs with the per-sample shapes they will see, doing the arithmetic
the layers do when they are built (engine/layers.py) but allocating nothing, so a config asking
for a billion parameters is refused in microseconds instead of after building them. `check`
compares the estimate with the limits below and raises a `CostError` (a ConfigError naming the
field to change) with the estimate attached; the Trainer runs it before it generates data and
again, with the exact data shape, before it builds the network. The server answers the same
estimate at POST /api/sessions/estimate and in the 422 body of a refused config, so the page and
the API show one set of numbers.

Memory is counted in bytes of the run's dtype, per sample of a batch where it scales with the
batch: what a training step keeps (every layer's input, pre-activation, output and their
gradients, the im2col matrix of each convolution) plus the largest scratch array one layer makes
at a time. Evaluation and inference run in chunks of `eval_chunk` samples, as many as fit in
EVAL_MEMORY_BYTES, so the whole training set is never pushed through the network at once.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from engine.config import (
    AvgPool2DLayer,
    BatchNormLayer,
    ConfigError,
    Conv2DLayer,
    DenseLayer,
    DropoutLayer,
    FieldError,
    FlattenLayer,
    LayerConfig,
    MaxPool2DLayer,
    RunConfig,
)
from engine.data import DATASETS_BY_NAME, Dataset

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

MAX_PARAMETERS = 10_000_000  # a network larger than this is refused (memory of a laptop)
MAX_FLOPS_PER_SAMPLE = 200_000_000  # multiply-adds of one sample's forward pass
# Multiply-adds of one training step (forward + backward ~ 3 forward passes, times the batch):
# about a second of one laptop core, so a step always ends in time for /stop and the page.
MAX_FLOPS_PER_STEP = 10_000_000_000
# Everything a session holds while it trains: parameters, gradients, optimizer state and copies,
# the data, a training step's working memory and one evaluation chunk.
MAX_SESSION_BYTES = 2 * GiB
# Multiply-adds of one evaluation (every train and test sample once): reports evaluate about
# once a second, so an evaluation far longer than a step would leave no time for training.
MAX_FLOPS_PER_EVALUATION = 100_000_000_000
EVAL_MEMORY_BYTES = 256 * MiB  # working memory of one evaluation or inference chunk
MAX_EVAL_CHUNK = 2048  # samples per evaluation chunk when they fit (more is no faster)
MAX_GRID_RESOLUTION = 200  # points per side of a decision grid (GET /boundary, snapshots)

# Whole-parameter arrays a run holds, in units of the parameter count: the flat parameters, the
# flat gradient, each parameter's own gradient (and the new one a backward pass makes before the
# old is dropped), the last good weights and the copy that replaces them, the optimizer's
# gathered gradient and update scratch, and the weights before a measured update.
_PARAMETER_COPIES = 9
_UPDATE_MEASURE_BYTES = 8  # per parameter: the float64 update whose norm is measured
_OPTIMIZER_BUFFERS = {"sgd": 1, "rmsprop": 1, "adam": 2}  # state arrays (sgd: with momentum)
_CHECKPOINT_COPIES = 3  # a checkpoint's arrays in the zip buffer, its bytes, the pending write


@dataclass(frozen=True)
class DataShape:
    """What the cost needs to know about the data: sizes, not values."""

    input_shape: tuple[int, ...]  # per-sample network input, after the Playground features
    raw_values: int  # values of one raw sample, before the features
    train: int  # training samples
    test: int  # test samples

    @property
    def samples(self) -> int:
        return self.train + self.test


@dataclass(frozen=True)
class LayerCost:
    """One layer's shapes, size and per-sample costs (values of the run's dtype)."""

    index: int
    type: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    parameters: int  # trainable scalars
    buffers: int  # non-trainable saved scalars (batch-norm running statistics)
    flops: int  # multiply-adds of one sample's forward pass (as Layer.flops_per_sample)
    forward: int  # values per sample a training forward pass keeps until the next step
    backward: int  # values per sample a backward pass keeps until the next step
    evaluation: int  # values per sample an evaluation forward pass keeps until the next chunk
    forward_scratch: int  # values per sample of temporaries while the forward pass runs
    backward_scratch: int  # values per sample of temporaries while the backward pass runs
    weight_scratch: int  # values of weight-shaped temporaries per sample (conv backward)


_SHOWN_LAYER_FIELDS = ("index", "type", "input_shape", "output_shape", "parameters", "flops")


@dataclass
class Cost:
    """The estimate of one run; `to_dict` is what the API shows."""

    data: DataShape
    dtype_bytes: int
    batch: int  # samples per training step: min(batch_size, training samples)
    layers: list[LayerCost] = field(default_factory=list)
    complete: bool = True  # False: the walk stopped at a layer that cannot take its input
    parameters: int = 0
    buffers: int = 0
    flops_per_sample: int = 0  # forward multiply-adds of one sample
    flops_per_step: int = 0  # 3 x forward x batch
    flops_per_evaluation: int = 0  # forward over every train and test sample
    eval_chunk: int = 1  # samples per evaluation or inference forward pass
    state_bytes: int = 0  # parameters, gradients, optimizer state, copies and checkpoints
    data_bytes: int = 0  # raw data, network inputs, targets and the epoch's shuffled copy
    step_bytes: int = 0  # working memory of one training step
    eval_bytes: int = 0  # working memory of one evaluation chunk
    optimizer_buffers: int = 0

    @property
    def memory_bytes(self) -> int:
        """Everything the session holds at its peak: the numbers below added up."""
        return self.state_bytes + self.data_bytes + self.step_bytes + self.eval_bytes

    def step_bytes_per_sample(self) -> int:
        """Working memory of a training step per sample of the batch."""
        return self.dtype_bytes * _per_sample(self.layers, training=True)

    def eval_bytes_per_sample(self) -> int:
        """Working memory of an evaluation or inference pass per sample."""
        return self.dtype_bytes * _per_sample(self.layers, training=False)

    def trace_values(self, samples: int) -> int:
        """Numbers in a trace answer for `samples` inputs, at most: per layer its input,
        pre-activation, output, their two gradients and the derivative per sample, the targets
        (as wide as the output), plus W, b and their gradients once."""
        per_sample = sum(
            math.prod(layer.input_shape) + 5 * math.prod(layer.output_shape)
            for layer in self.layers
        )
        outputs = math.prod(self.layers[-1].output_shape) if self.layers else 0
        return samples * (per_sample + outputs) + 2 * self.parameters

    def to_dict(self) -> dict[str, Any]:
        """The estimate as JSON-able plain data, with the limits it is checked against."""
        return {
            "parameters": self.parameters,
            "buffers": self.buffers,
            "flops_per_sample": self.flops_per_sample,
            "flops_per_step": self.flops_per_step,
            "flops_per_evaluation": self.flops_per_evaluation,
            "batch": self.batch,
            "eval_chunk": self.eval_chunk,
            "memory_bytes": self.memory_bytes,
            "state_bytes": self.state_bytes,
            "data_bytes": self.data_bytes,
            "step_bytes": self.step_bytes,
            "eval_bytes": self.eval_bytes,
            "input_shape": list(self.data.input_shape),
            "train_samples": self.data.train,
            "test_samples": self.data.test,
            "complete": self.complete,
            "layers": [
                {
                    key: list(value) if isinstance(value, tuple) else value
                    for key, value in asdict(layer).items()
                    if key in _SHOWN_LAYER_FIELDS
                }
                for layer in self.layers
            ],
            "limits": limits(),
        }


OVER_LIMIT = "over_limit"  # the code of a field whose value puts the run over a cost limit


class CostError(ConfigError):
    """A config whose cost is over a limit; `estimate` is the Cost it was refused on."""

    def __init__(self, errors: list[FieldError], estimate: Cost) -> None:
        self.estimate = estimate
        for error in errors:  # one code for every limit, wherever the config meets it
            error.code = OVER_LIMIT
        super().__init__(errors)


def limits() -> dict[str, int]:
    """The limits `check` applies, by name (as GET answers and SECURITY.md lists them)."""
    return {
        "max_parameters": MAX_PARAMETERS,
        "max_flops_per_sample": MAX_FLOPS_PER_SAMPLE,
        "max_flops_per_step": MAX_FLOPS_PER_STEP,
        "max_flops_per_evaluation": MAX_FLOPS_PER_EVALUATION,
        "max_session_bytes": MAX_SESSION_BYTES,
        "eval_memory_bytes": EVAL_MEMORY_BYTES,
    }


# ----------------------------------------------------------------------------- the data


def data_shape(config: RunConfig, dataset: Dataset | None = None) -> DataShape | None:
    """The data's shape for a built-in dataset or drawn points, from the config alone; None
    for uploads and names the dataset module will refuse (their shape needs the data), unless
    the `dataset` is given."""
    if dataset is not None:
        return _shape_of(config, dataset)
    ds = config.dataset
    info = DATASETS_BY_NAME.get(ds.name)
    if info is None:
        return None
    if ds.name == "points":
        if not ds.points:
            return None
        samples = len(ds.points)
    else:
        samples = ds.samples
        spec = next((p for p in info.params if p.name == "samples"), None)
        if spec is not None:
            samples = min(samples, int(spec.max))
    if info.input_kind == "image" and info.input_shape is not None:
        input_shape, raw = info.input_shape, math.prod(info.input_shape)
    elif info.input_kind == "1d":
        chosen = config.features if "features" in config.model_fields_set else ["x1"]
        input_shape, raw = (len(chosen),), 1
    else:
        input_shape, raw = (len(config.features),), 2
    test = test_count(samples, ds.test_fraction)
    return DataShape(tuple(input_shape), raw, samples - test, test)


def _shape_of(config: RunConfig, dataset: Dataset) -> DataShape:
    """The shape of a generated or uploaded dataset with the config's features (the rule of
    engine.encoding: points and x values take them, images and tables do not)."""
    raw_shape = tuple(int(d) for d in dataset.x_train.shape[1:])
    if dataset.is_image or raw_shape[0] not in (1, 2):
        input_shape = raw_shape
    elif raw_shape[0] == 1 and "features" not in config.model_fields_set:
        input_shape = (1,)
    else:
        input_shape = (len(config.features),)
    return DataShape(input_shape, math.prod(raw_shape), len(dataset.x_train), len(dataset.x_test))


def test_count(samples: int, fraction: float) -> int:
    """Held-out samples: round(samples * fraction), leaving one for training (the split's rule
    in engine.data; tests compare the two on real datasets)."""
    return min(int(math.floor(samples * fraction + 0.5)), samples - 1)


# ----------------------------------------------------------------------------- the estimate


def estimate(config: RunConfig, data: DataShape) -> Cost:
    """The cost of training `config` on data of this shape; allocates no array."""
    dtype_bytes = 8 if config.dtype == "float64" else 4
    batch = max(1, min(config.batch_size, data.train))
    cost = Cost(data=data, dtype_bytes=dtype_bytes, batch=batch)
    shape = tuple(data.input_shape)
    strided = False  # the previous layer's output is a strided view (conv, linear activation)
    last = len(config.layers) - 1
    fused = config.loss == "cross_entropy"
    for index, layer_config in enumerate(config.layers):
        fitted = _layer_cost(
            index,
            layer_config,
            shape,
            needs_input_grad=index > 0,
            strided_input=strided,
            fused_output=fused and index == last,
        )
        if fitted is None:
            cost.complete = False
            break
        cost.layers.append(fitted)
        shape = fitted.output_shape
        strided = (
            isinstance(layer_config, Conv2DLayer)
            and layer_config.activation == "linear"
            and layer_config.stride == 1
        )
    cost.parameters = sum(layer.parameters for layer in cost.layers)
    cost.buffers = sum(layer.buffers for layer in cost.layers)
    cost.flops_per_sample = sum(layer.flops for layer in cost.layers)
    cost.flops_per_step = 3 * cost.flops_per_sample * batch
    cost.flops_per_evaluation = cost.flops_per_sample * data.samples
    outputs = math.prod(shape) if cost.layers else 0
    per_eval = max(1, cost.eval_bytes_per_sample() + 4 * outputs * 8)  # + loss, argmax
    cost.eval_chunk = max(1, min(MAX_EVAL_CHUNK, data.samples, EVAL_MEMORY_BYTES // per_eval))
    cost.eval_bytes = cost.eval_chunk * per_eval
    weight_scratch = max((layer.weight_scratch for layer in cost.layers), default=0)
    cost.step_bytes = batch * (
        cost.step_bytes_per_sample() + dtype_bytes * (weight_scratch + 4 * outputs)
    )
    optimizer = config.optimizer
    buffers = _OPTIMIZER_BUFFERS[optimizer.name]
    if optimizer.name == "sgd" and optimizer.momentum == 0.0:
        buffers = 0
    cost.optimizer_buffers = buffers
    copies = _PARAMETER_COPIES + buffers + (1 if config.early_stopping is not None else 0)
    arrays = cost.parameters + cost.buffers
    cost.state_bytes = (
        dtype_bytes * (copies * arrays + _CHECKPOINT_COPIES * (1 + buffers) * arrays)
        + _UPDATE_MEASURE_BYTES * cost.parameters
    )
    targets = max(outputs, 1)
    cost.data_bytes = (
        2 * 8 * data.raw_values * data.samples  # raw float64 data, and its copy while splitting
        + dtype_bytes
        * math.prod(data.input_shape)
        * (data.samples + data.train)  # inputs, shuffled
        + 8 * targets * (data.samples + data.train)  # labels or one-hot targets, shuffled
    )
    return cost


def check(cost: Cost) -> Cost:
    """Return `cost` if it is within every limit, else raise CostError naming the field to
    change, with a message that gives the estimate and the limit."""
    error = first_problem(cost)
    if error is not None:
        raise CostError([error], cost)
    return cost


def first_problem(cost: Cost) -> FieldError | None:
    """The first limit the estimate breaks, as the field to change and why."""
    if cost.parameters > MAX_PARAMETERS:
        return FieldError(
            "layers",
            f"the network has {cost.parameters:,} parameters, at most {MAX_PARAMETERS:,} "
            "are allowed",
        )
    if cost.flops_per_sample > MAX_FLOPS_PER_SAMPLE:
        return FieldError(
            "layers",
            f"one sample costs about {cost.flops_per_sample:,} multiply-adds, at most "
            f"{MAX_FLOPS_PER_SAMPLE:,} are allowed; use fewer units or filters",
        )
    if cost.flops_per_step > MAX_FLOPS_PER_STEP:
        fits = MAX_FLOPS_PER_STEP // (3 * cost.flops_per_sample)
        return FieldError(
            "batch_size",
            f"a training step costs about {cost.flops_per_step:,} multiply-adds "
            f"({cost.batch} samples x {3 * cost.flops_per_sample:,}), at most "
            f"{MAX_FLOPS_PER_STEP:,} are allowed; use batch_size {fits} or less",
        )
    if cost.flops_per_evaluation > MAX_FLOPS_PER_EVALUATION:
        return FieldError(
            "dataset.samples",
            f"evaluating all {cost.data.samples:,} samples costs about "
            f"{cost.flops_per_evaluation:,} multiply-adds, at most "
            f"{MAX_FLOPS_PER_EVALUATION:,} are allowed; use at most "
            f"{MAX_FLOPS_PER_EVALUATION // cost.flops_per_sample:,} samples",
        )
    total = cost.memory_bytes
    if total <= MAX_SESSION_BYTES:
        return None
    parts = (
        f"parameters and optimizer {format_bytes(cost.state_bytes)}, "
        f"data {format_bytes(cost.data_bytes)}, "
        f"a training step of {cost.batch} samples {format_bytes(cost.step_bytes)}, "
        f"evaluation {format_bytes(cost.eval_bytes)}"
    )
    message = (
        f"the run needs about {format_bytes(total)} of memory ({parts}), at most "
        f"{format_bytes(MAX_SESSION_BYTES)} are allowed per session"
    )
    room = MAX_SESSION_BYTES - (total - cost.step_bytes)
    per_sample = cost.step_bytes // cost.batch
    if cost.batch > 1 and room >= per_sample:
        return FieldError("batch_size", f"{message}; use batch_size {room // per_sample} or less")
    if cost.data_bytes > cost.state_bytes + cost.step_bytes:
        return FieldError("dataset.samples", f"{message}; use fewer samples")
    return FieldError("layers", f"{message}; use fewer units or filters")


def format_bytes(size: int) -> str:
    """A byte count for a message: 2147483648 -> '2 GiB', 3250000 -> '3.1 MiB'."""
    for unit, scale in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if size >= scale:
            value = size / scale
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{size} bytes"


# ----------------------------------------------------------------------------- per layer
# A layer's new arrays are made while the previous step's (or chunk's) are still referenced by the
# layer, so while it runs its own arrays exist twice: `_per_sample` adds one layer's kept arrays
# again on top of its scratch.


def _per_sample(layers: list[LayerCost], training: bool) -> int:
    """Values per sample: what every layer keeps plus, for the layer where it is largest, its
    arrays made anew and its scratch."""
    if training:
        kept = sum(layer.forward + layer.backward for layer in layers)
        peak = max(
            (
                max(layer.forward + layer.forward_scratch, layer.backward + layer.backward_scratch)
                for layer in layers
            ),
            default=0,
        )
    else:
        kept = sum(layer.evaluation for layer in layers)
        peak = max(
            (layer.evaluation + layer.forward_scratch for layer in layers),
            default=0,
        )
    return kept + peak


def _layer_cost(
    index: int,
    config: LayerConfig,
    shape: tuple[int, ...],
    *,
    needs_input_grad: bool,
    strided_input: bool,
    fused_output: bool,
) -> LayerCost | None:
    """One layer's cost for a per-sample input `shape`; None when it cannot take that shape
    (the network then says why when it is built)."""
    size_in = math.prod(shape)
    common = {"index": index, "type": config.type, "input_shape": shape}
    if isinstance(config, DenseLayer):
        units = config.units
        act = config.activation != "linear"
        copy = size_in if (len(shape) > 1 and strided_input) else 0  # flattening a strided view
        forward = copy + units * (2 if act else 1)  # (flat x,) z and a (a is z when linear)
        return LayerCost(
            **common | {"input_shape": (size_in,)},  # the network flattens a dense layer's input
            output_shape=(units,),
            parameters=size_in * units + units,
            buffers=0,
            flops=size_in * units + (units if act else 0),
            forward=forward,
            # dL/dz (dL/da itself when linear or fused: dL/da is the next layer's dL/dx, or the
            # loss gradient counted per network), dL/dx
            backward=(units if act and not fused_output else 0)
            + (size_in if needs_input_grad else 0),
            evaluation=forward,
            forward_scratch=2 * units,  # the activation's temporaries (sigmoid: exp, mask)
            backward_scratch=2 * units,  # the activation derivative's temporaries
            weight_scratch=0,
        )
    if isinstance(config, Conv2DLayer):
        if len(shape) != 3:
            return None
        channels, height, width = shape
        k, s, filters = config.kernel_size, config.stride, config.filters
        pad = k - 1 if config.padding == "same" else 0
        padded_h, padded_w = height + pad, width + pad
        out_h, out_w = (padded_h - k) // s + 1, (padded_w - k) // s + 1
        if out_h < 1 or out_w < 1:
            return None
        columns = (out_h - 1) * padded_w + out_w if s == 1 else out_h * out_w  # im2col width
        cols = channels * k * k * columns  # the im2col matrix, kept for backward
        out = filters * out_h * out_w
        act = config.activation != "linear"
        padded = channels * padded_h * padded_w
        weights = filters * channels * k * k
        forward = cols + filters * columns + (out if act else 0)  # cols, z, a
        wide = filters * out_h * padded_w if s == 1 else 0  # dL/dz widened to the row-flat layout
        return LayerCost(
            **common,
            output_shape=(filters, out_h, out_w),
            parameters=weights + filters,
            buffers=0,
            flops=weights * out_h * out_w + (out if act else 0),
            forward=forward,
            # dL/dz, dL/dx (col2im writes it in the padded shape)
            backward=(out if act else 0) + (padded if needs_input_grad else 0),
            evaluation=forward,
            # the padded copy of x (for "valid", a contiguous copy of a strided input)
            forward_scratch=padded if (pad or strided_input) else 0,
            # the widened dL/dz, dL/dcols, the activation derivative's boolean mask
            backward_scratch=wide + (cols if needs_input_grad else 0) + out,
            weight_scratch=weights,  # the per-sample weight gradients before they are summed
        )
    if isinstance(config, MaxPool2DLayer | AvgPool2DLayer):
        if len(shape) != 3 or shape[1] < config.size or shape[2] < config.size:
            return None
        out_shape = (shape[0], shape[1] // config.size, shape[2] // config.size)
        out = math.prod(out_shape)
        return LayerCost(
            **common,
            output_shape=out_shape,
            parameters=0,
            buffers=0,
            flops=size_in,
            forward=out,
            backward=size_in,  # dL/dx, made even for a first layer
            evaluation=out,
            forward_scratch=0,
            backward_scratch=out,  # max: two boolean masks; avg: the shared gradient
            weight_scratch=0,
        )
    if isinstance(config, FlattenLayer):
        copy = size_in if strided_input else 0  # a view, unless the input is strided
        return LayerCost(
            **common,
            output_shape=(size_in,),
            parameters=0,
            buffers=0,
            flops=0,
            forward=copy,
            backward=0,
            evaluation=copy,
            forward_scratch=0,
            backward_scratch=0,
            weight_scratch=0,
        )
    if isinstance(config, BatchNormLayer):
        if len(shape) not in (1, 3):
            return None
        return LayerCost(
            **common,
            output_shape=shape,
            parameters=2 * shape[0],
            buffers=2 * shape[0],
            flops=4 * size_in,
            forward=2 * size_in,  # x_hat, z
            backward=size_in if needs_input_grad else 0,  # dL/dx
            evaluation=2 * size_in,
            forward_scratch=size_in,  # (x - mean)^2
            backward_scratch=size_in,  # dL/dz * x_hat
            weight_scratch=0,
        )
    if isinstance(config, DropoutLayer):
        return LayerCost(
            **common,
            output_shape=shape,
            parameters=0,
            buffers=0,
            flops=size_in,
            forward=2 * size_in,  # mask, output
            backward=size_in,  # dL/dx, made even for a first layer
            evaluation=0,  # the identity in eval mode
            forward_scratch=2 * size_in,  # the uniform draws and the boolean keep-mask
            backward_scratch=0,
            weight_scratch=0,
        )
    raise TypeError(f"unknown layer config {type(config).__name__}")
