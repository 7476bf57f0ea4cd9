"""The frames a watched training script sends to /ws/ingest (backprop_lens/_wire.py sends them),
validated by pydantic before anything of them is kept: strict types, no unknown fields, bounded
lengths, so a frame cannot grow the server's memory beyond its size limit.

The first frame is a `TopologyFrame`; then `MetricsFrame` (one logged step, the existing metrics
row's fields), `SnapshotFrame` (the latest histograms), `EventFrame` (a control applied by the
script) and one `FinishFrame` when the run ends.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from engine.stats import HISTOGRAM_BINS

MAX_LAYERS = 2000  # layers in a topology, stats entries in a metrics frame
MAX_NAME = 200  # characters of a layer, model or run name
MAX_SCALARS = 100  # extra scalars per metrics frame
MAX_BINS = 256

LayerType = Literal["dense", "conv2d", "batchnorm", "generic"]
Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME)]
Number = float | None  # JSON has no NaN: a non-finite number arrives as null


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class TopologyLayer(_Strict):
    """One module: with parameters of its own (dense, conv2d, batchnorm or generic), or a leaf
    without (an activation, pooling, dropout: generic)."""

    name: Name
    type: LayerType
    module: str = Field(max_length=100, description="the framework's class name, e.g. 'ReLU'")
    parameters: int = Field(ge=0)
    units: int | None = Field(None, ge=1, description="dense: output features")
    in_features: int | None = Field(None, ge=1)
    filters: int | None = Field(None, ge=1, description="conv2d: output channels")
    in_channels: int | None = Field(None, ge=1)
    kernel_size: list[Annotated[int, Field(ge=1)]] | None = Field(None, max_length=3)
    stride: list[Annotated[int, Field(ge=1)]] | None = Field(None, max_length=3)
    features: int | None = Field(None, ge=1, description="batchnorm: normalised features")


class TopologyFrame(_Strict):
    """The first frame: what is trained. `resume` names the session of an earlier connection
    of the same run, which it continues."""

    type: Literal["topology"]
    version: Literal[1]
    name: str | None = Field(None, max_length=MAX_NAME)
    framework: str = Field(max_length=40)
    model: str = Field(max_length=MAX_NAME)
    parameters: int = Field(ge=0)
    world_size: int = Field(1, ge=1, le=1_000_000)
    layers: list[TopologyLayer] = Field(max_length=MAX_LAYERS)
    resume: str | None = Field(None, min_length=1, max_length=64)


class LayerStats(_Strict):
    """engine/stats.py's per-layer statistics that a framework hook can measure."""

    name: Name
    type: LayerType
    grad_norm: Number
    grad_mean_abs: Number
    grad_max_abs: Number
    weight_norm: Number
    update_ratio: Number


class MetricsFrame(_Strict):
    """One logged step; `loss` is the step's training loss as the script logged it."""

    type: Literal["metrics"]
    step: int = Field(ge=0, le=10**15)
    epoch: int = Field(0, ge=0)
    loss: Number = None
    test_loss: Number = None
    accuracy: Number = None
    test_accuracy: Number = None
    learning_rate: Number = None
    steps_per_second: Number = None
    max_grad_norm: Number = None
    layers: list[LayerStats] = Field(max_length=MAX_LAYERS)
    scalars: dict[Annotated[str, Field(max_length=100)], Number] = Field(
        default_factory=dict, max_length=MAX_SCALARS
    )
    dropped: int = Field(0, ge=0, description="frames the script dropped so far (full buffer)")

    def row(self) -> dict[str, Any]:
        """The metrics row, as an engine session records one."""
        return {
            "step": self.step,
            "epoch": self.epoch,
            "loss": self.loss,
            "test_loss": self.test_loss,
            "accuracy": self.accuracy,
            "test_accuracy": self.test_accuracy,
            "batch_loss": self.loss,
            "learning_rate": self.learning_rate,
            "steps_per_second": self.steps_per_second,
            "eval_step": None,
            "max_grad_norm": self.max_grad_norm,
            "clip_count": 0,
            "best_step": None,
            "layers": [layer.model_dump() for layer in self.layers],
            "scalars": dict(self.scalars),
            "dropped": self.dropped,
        }


class Histogram(_Strict):
    edges: list[float] = Field(min_length=2, max_length=MAX_BINS + 1)
    counts: list[Annotated[int, Field(ge=0)]] = Field(min_length=1, max_length=MAX_BINS)

    @model_validator(mode="after")
    def _bins_match(self) -> Histogram:
        if len(self.counts) != len(self.edges) - 1:
            raise ValueError(
                f"counts: expected {len(self.edges) - 1} counts for {len(self.edges)} edges, "
                f"got {len(self.counts)}"
            )
        return self


class LayerHistograms(_Strict):
    grad: Histogram
    weight: Histogram


class SnapshotFrame(_Strict):
    """The gradient and weight histograms of a logged step, per layer (the latest wins)."""

    type: Literal["snapshot"]
    step: int = Field(ge=0)
    histograms: dict[Name, LayerHistograms] = Field(max_length=MAX_LAYERS)


class ScriptEvent(_Strict):
    """A control the script applied at a step."""

    type: Literal["control"]
    action: Literal["pause", "resume", "stop", "learning_rate"]
    step: int = Field(ge=0)
    message: str = Field(max_length=500)
    old: Number = None
    new: Number = None


class EventFrame(_Strict):
    type: Literal["event"]
    event: ScriptEvent


class FinishFrame(_Strict):
    """The script closed its watcher: the session is finished, at `step` (its last completed
    optimizer step, which the last logged one may be short of)."""

    type: Literal["finish"]
    step: int | None = Field(None, ge=0, le=10**15)


IngestFrame = Annotated[
    MetricsFrame | SnapshotFrame | EventFrame | FinishFrame, Field(discriminator="type")
]
INGEST_FRAME = TypeAdapter(IngestFrame)
assert HISTOGRAM_BINS <= MAX_BINS
