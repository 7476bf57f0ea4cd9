"""Pydantic models of the REST API's request and response bodies (the OpenAPI document's schemas).

Engine results that are large nested arrays (snapshots, traces, decision grids) are described here
for the documentation but sent as pre-encoded orjson bytes (see `server.deps.JSONBytes`), so a
100 x 100 grid is never walked by the response validator.
"""

from __future__ import annotations

import unicodedata
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from engine.config import HyperparameterUpdate, RunConfig
from server.limits import MAX_PACE, MAX_STEPS_PER_REQUEST
from server.problems import ProblemField

# the last three are an external session's (server/external.py): its script connected, closed
# its watcher, or lost the connection without closing it
Status = Literal[
    "idle",
    "running",
    "paused",
    "diverged",
    "stopped_early",
    "interrupted",
    "live",
    "finished",
    "disconnected",
]
STATUSES: tuple[str, ...] = (
    "idle",
    "running",
    "paused",
    "diverged",
    "stopped_early",
    "interrupted",
    "live",
    "finished",
    "disconnected",
)


class _Open(BaseModel):
    """A response model that documents its main fields and lets the engine add more."""

    model_config = ConfigDict(extra="allow")


# ----------------------------------------------------------------------------- sessions


class SessionCreate(BaseModel):
    """POST /api/sessions: a run configuration and an optional display name."""

    model_config = ConfigDict(extra="forbid")

    config: RunConfig = Field(description="the run configuration (engine.config.RunConfig)")
    name: str | None = Field(None, max_length=200, description="shown in the session list")


MAX_NAME_LENGTH = 200


class SessionPatch(HyperparameterUpdate):
    """PATCH /api/sessions/{id}: the engine's hyperparameters, plus the display name (a server
    concern, so it lives here and never reaches the engine)."""

    name: str | None = Field(
        None,
        description=f"new display name: 1-{MAX_NAME_LENGTH} characters after stripping spaces, "
        "no control characters",
    )

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str | None) -> str:
        # runs only when "name" is in the body: an explicit null is refused, not ignored
        if value is None:
            raise ValueError(f"must be a string of 1-{MAX_NAME_LENGTH} characters, got null")
        stripped = value.strip()
        if not 1 <= len(stripped) <= MAX_NAME_LENGTH:
            raise ValueError(
                f"must be 1-{MAX_NAME_LENGTH} characters after stripping spaces, "
                f"got {len(stripped)}"
            )
        for ch in stripped:
            if unicodedata.category(ch) == "Cc":
                raise ValueError(f"must not contain control characters, got U+{ord(ch):04X}")
        return stripped

    def hyperparameters(self) -> HyperparameterUpdate:
        """The engine's part of the body: only the fields the client sent, name left out."""
        sent = {key: getattr(self, key) for key in self.model_fields_set if key != "name"}
        return HyperparameterUpdate.model_validate(sent)


class SessionPublic(BaseModel):
    """A session as every endpoint and WebSocket frame shows it."""

    id: str
    name: str
    kind: Literal["engine", "external"] = Field(
        "engine",
        description="engine: trained by this server; external: a PyTorch script's own run, "
        "watched through /ws/ingest (start, step, reset and weights answer 409)",
    )
    status: Status
    step: int = Field(description="completed training steps")
    epoch: int
    metrics: dict[str, Any] | None = Field(
        description="the latest report without 'layers' and 'events', null before the first step"
    )
    config: dict[str, Any] = Field(description="the run configuration document")
    created_at: str = Field(description="ISO 8601 UTC", json_schema_extra={"format": "date-time"})
    updated_at: str = Field(description="ISO 8601 UTC", json_schema_extra={"format": "date-time"})
    message: str | None = Field(description="why the session is in its state, e.g. divergence")
    best_step: int | None = Field(description="step of the best test loss (early stopping)")
    pace: float | None = Field(
        None, description="steps per second of a paced run while it runs; null: full speed"
    )
    save_error: str | None = Field(
        None,
        description="why the session's checkpoint or history cannot be saved (e.g. a full disk) "
        "and what the data directory keeps; null while saving works",
    )


class SessionListItem(SessionPublic):
    """A session in GET /api/sessions: SessionPublic, its config left out with configs=false."""

    config: dict[str, Any] | None = Field(  # type: ignore[assignment]
        None, description="the run configuration document; absent with configs=false"
    )


class SessionList(BaseModel):
    """GET /api/sessions: one page of sessions, newest first."""

    sessions: list[SessionListItem] = Field(description="newest first")
    next_cursor: str | None = Field(
        description="pass as ?cursor= for the next page; null on the last page"
    )


class PatchResult(SessionPublic):
    """PATCH /api/sessions/{id}: the session document after the change, and when it applied."""

    applied_at_step: int | None = Field(
        None,
        description="the completed steps when the hyperparameters changed (the next step is the "
        "first to use them; the 'hyperparameters' event carries the same step); null when only "
        "the name changed",
    )


class StopResult(BaseModel):
    """POST /api/sessions/{id}/stop."""

    step: int
    status: Status


class ControlRequest(BaseModel):
    """POST /api/sessions/{id}/control: what an external session's script should do at its
    next logged step."""

    model_config = ConfigDict(extra="forbid", strict=True)

    action: Literal["pause", "resume", "stop", "learning_rate"] = Field(
        description="pause and resume the script's training loop, stop it (the script reads "
        "watcher.should_stop), or give its optimizer a new learning rate"
    )
    learning_rate: float | None = Field(
        None,
        gt=0,
        le=1e3,
        validate_default=True,  # so that its absence is checked too
        description="the new rate, required with action learning_rate",
    )

    @field_validator("learning_rate")
    @classmethod
    def _rate_given(cls, value: float | None, info: ValidationInfo) -> float | None:
        if value is None and info.data.get("action") == "learning_rate":
            raise ValueError("required with action 'learning_rate'")
        return value


class ControlResult(BaseModel):
    """The control frame sent to the script, and the session."""

    sent: dict[str, Any]
    session: SessionPublic


class StartRequest(BaseModel):
    """POST /api/sessions/{id}/start (the body is optional: without it, full speed)."""

    model_config = ConfigDict(extra="forbid")

    pace: float | None = Field(
        None,
        strict=True,  # a number, not "500" or true
        gt=0,
        le=MAX_PACE,
        description="train at most this many steps per second (a pace a person can watch); "
        "null or absent: as fast as the machine allows",
    )


class EstimateRequest(BaseModel):
    """POST /api/sessions/estimate: a run configuration to cost."""

    model_config = ConfigDict(extra="forbid")

    config: RunConfig = Field(description="the run configuration (engine.config.RunConfig)")


class CostNumbers(_Open):
    """engine.cost's estimate: sizes from the config alone, and the limits they are held to."""

    parameters: int = Field(description="trainable scalars")
    flops_per_sample: int = Field(description="multiply-adds of one sample's forward pass")
    flops_per_step: int = Field(
        description="multiply-adds of a training step (3 x forward x batch)"
    )
    flops_per_evaluation: int = Field(description="multiply-adds of one evaluation of all samples")
    batch: int = Field(description="samples per training step")
    eval_chunk: int = Field(description="samples per evaluation or inference forward pass")
    memory_bytes: int = Field(description="the session's estimated peak memory")
    state_bytes: int = Field(description="parameters, gradients, optimizer state and copies")
    data_bytes: int = Field(description="the data in its raw and training forms")
    step_bytes: int = Field(description="working memory of one training step")
    eval_bytes: int = Field(description="working memory of one evaluation chunk")
    limits: dict[str, int] = Field(description="max_parameters, max_flops_per_step, ...")


class CostEstimate(BaseModel):
    """The answer of POST /api/sessions/estimate."""

    fits: bool = Field(description="whether POST /api/sessions would accept the cost")
    errors: list[ProblemField] = Field(description="the limit it breaks, as a 422 would name it")
    estimate: CostNumbers


class StepRequest(BaseModel):
    """POST /api/sessions/{id}/step."""

    model_config = ConfigDict(extra="forbid")

    steps: int = Field(
        1,
        strict=True,  # an integer, not "5", 5.0 or true (as the WebSocket's "step" command)
        ge=1,
        le=MAX_STEPS_PER_REQUEST,
        description="how many training steps to run",
    )


class StepResult(BaseModel):
    """The answer of POST /api/sessions/{id}/step once the steps are done."""

    step: int
    epoch: int
    metrics: dict[str, Any] | None = Field(
        description="the report of the last step: its loss, accuracy, test_loss and "
        "test_accuracy are evaluated at that step (eval_step == step) unless the run diverged"
    )
    status: Status


class EvaluateRequest(BaseModel):
    """POST /api/sessions/{id}/evaluate (the body is optional: without it, both splits)."""

    model_config = ConfigDict(extra="forbid")

    split: Literal["train", "test", "both"] = Field(
        "both", description="which part of the data to evaluate the network on"
    )


class SplitScore(BaseModel):
    """The loss and accuracy over a whole split of the data."""

    loss: float | None = Field(description="mean loss; null for a split without samples")
    accuracy: float | None = Field(description="share classified right; null for a regression")


class EvaluateResult(BaseModel):
    """The answer of POST /api/sessions/{id}/evaluate."""

    step: int = Field(description="the step the weights evaluated belong to")
    train: SplitScore | None = Field(description="null when not asked for")
    test: SplitScore | None = Field(description="null when not asked for")


# ----------------------------------------------------------------------------- metrics


class LayerColumns(_Open):
    """One layer's statistics over the recorded steps, column by column."""

    grad_norm: list[float | None] = []
    weight_norm: list[float | None] = []
    update_ratio: list[float | None] = []
    grad_mean_abs: list[float | None] = []
    grad_max_abs: list[float | None] = []
    activation_mean: list[float | None] = []
    activation_std: list[float | None] = []
    dead_fraction: list[float | None] = []
    saturated_fraction: list[float | None] = []


class MetricsColumns(_Open):
    """GET /api/sessions/{id}/metrics: the recorded history as columns (one entry per report).
    A column a row predates (rows stored by an older version) holds null there."""

    step: list[int] = []
    loss: list[float | None] = []
    test_loss: list[float | None] = []
    accuracy: list[float | None] = []
    test_accuracy: list[float | None] = []
    batch_loss: list[float | None] = []
    learning_rate: list[float | None] = []
    max_grad_norm: list[float | None] = []
    clip_count: list[int | None] = []
    eval_step: list[int | None] = Field(
        [], description="the step loss, accuracy, test_loss and test_accuracy were evaluated at"
    )
    batch_size: list[int | None] = Field([], description="samples per step")
    time: list[str | None] = Field(
        [], description="when the row was recorded: ISO 8601 UTC, e.g. 2026-12-03T07:18:13.123Z"
    )
    layers: dict[str, LayerColumns] = {}
    events: list[dict[str, Any]] = []


# ----------------------------------------------------------------------------- inspection


class TraceRequest(BaseModel):
    """POST /api/sessions/{id}/trace: raw inputs (points, x values or images) and their targets."""

    model_config = ConfigDict(extra="forbid")

    inputs: list[Any] = Field(min_length=1, max_length=1000)
    targets: list[Any] = Field(min_length=1, max_length=1000)


class TraceLayer(_Open):
    """One layer of a traced forward and backward pass (arrays as nested lists)."""

    name: str
    type: str


class TraceResult(_Open):
    """The engine's trace: the loss and every layer's forward and backward values."""

    loss: float
    layers: list[TraceLayer]


class PredictRequest(BaseModel):
    """POST /api/sessions/{id}/predict."""

    model_config = ConfigDict(extra="forbid")

    inputs: list[Any] = Field(min_length=1, max_length=100_000)


class PredictResult(BaseModel):
    """Outputs after the output activation (softmax probabilities for cross-entropy)."""

    outputs: list[Any]


class Grid(_Open):
    """The decision surface: the output and every neuron over a resolution x resolution grid."""

    resolution: int
    x: list[float] = Field(description="[lo, hi] of x1")
    y: list[float] = Field(description="[lo, hi] of x2")
    output: list[Any] = Field(description="rows of the output, row = y")
    neurons: dict[str, Any] = Field(description="per layer: [unit][row][col]")
    classes: list[Any] | None = Field(
        None, description="three or more output units: [unit][row][col], one map per class"
    )
    class_values: Literal["probability", "output"] | None = Field(
        None, description="what 'classes' holds: softmax probabilities or the units' outputs"
    )


class Split(BaseModel):
    """One split of the data: raw inputs and targets."""

    x: list[Any]
    y: list[Any]


class DataOut(BaseModel):
    """GET /api/sessions/{id}/data."""

    task: str
    input_kind: str
    domain: list[list[float]] | None
    class_names: list[str]
    input_names: list[str] = Field(description="one per input column, e.g. an upload's header")
    train: Split
    test: Split


class Snapshot(_Open):
    """The engine snapshot (weights, gradients, node values, grid, histograms)."""

    step: int


class WeightsResult(BaseModel):
    """PUT /api/sessions/{id}/weights."""

    step: int
    names: list[str] = Field(description="the parameter and buffer names that were set")


# ----------------------------------------------------------------------------- catalogue


class UploadEntry(BaseModel):
    """One stored upload, as GET /api/datasets/uploads lists it."""

    id: str
    name: str = Field(description="'upload:<id>', the dataset name to put in a config")
    filename: str = Field(description="the uploaded file's name")
    columns: list[str] = Field(description="the input columns, which become the run's inputs")
    target: str | None = Field(description="the CSV's target column; null for an NPZ's y")
    rows: int
    task: Literal["classification", "regression"]
    classes: int | None = Field(description="classes of a classification, null for regression")
    bytes: int = Field(description="what its arrays take as stored (decompressed), in bytes")
    created_at: str = Field(description="ISO 8601 UTC", json_schema_extra={"format": "date-time"})
    in_use_by: list[str] = Field(description="ids of the sessions training on it")


class UploadList(BaseModel):
    """GET /api/datasets/uploads."""

    uploads: list[UploadEntry] = Field(description="newest first")
    quota_bytes: int = Field(description="what the stored uploads may take (--upload-quota)")
    used_bytes: int = Field(description="what they take now, decompressed")


class DatasetList(BaseModel):
    """GET /api/datasets."""

    datasets: list[dict[str, Any]]
    uploads: list[UploadEntry] = Field(description="the stored uploads, as in /datasets/uploads")


class PresetList(BaseModel):
    """GET /api/presets."""

    presets: list[dict[str, Any]]


class UploadResult(BaseModel):
    """POST /api/datasets/upload."""

    id: str
    name: str = Field(description="'upload:<id>', the dataset name to put in a config")
    rows: int
    columns: int
    task: str
    num_classes: int
