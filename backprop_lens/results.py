"""Typed answers of the client: a training result, an evaluation, an upload, a sweep, a history.

Each keeps what the server answered in `data`, so a field a later server adds is still at hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RunMetrics:
    """A metrics report without per-layer statistics: whole-set `loss`/`accuracy` and
    `test_loss`/`test_accuracy` evaluated at `eval_step`, the mean `batch_loss` since the
    previous report and the `learning_rate` of the next update. Accuracies are None for a
    regression, losses None where a split has no samples or the run diverged."""

    step: int
    loss: float | None
    test_loss: float | None
    accuracy: float | None
    test_accuracy: float | None
    eval_step: int | None
    batch_loss: float | None
    learning_rate: float | None
    batch_size: int | None
    data: dict[str, Any] = field(repr=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunMetrics:
        """The session document's "metrics" object."""
        return cls(
            step=int(data.get("step", 0)),
            loss=data.get("loss"),
            test_loss=data.get("test_loss"),
            accuracy=data.get("accuracy"),
            test_accuracy=data.get("test_accuracy"),
            eval_step=data.get("eval_step"),
            batch_loss=data.get("batch_loss"),
            learning_rate=data.get("learning_rate"),
            batch_size=data.get("batch_size"),
            data=data,
        )


@dataclass(frozen=True)
class TrainResult:
    """What `Session.train(n)` ran to: the step reached, the status and the metrics evaluated at
    that very step (`metrics.eval_step == step`), so equal configs, seeds and steps give equal
    numbers. `metrics` is None only if no report exists (a run that diverged at once)."""

    step: int
    epoch: int
    status: str
    metrics: RunMetrics | None
    data: dict[str, Any] = field(repr=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainResult:
        """POST /api/sessions/{id}/step's answer."""
        metrics = data.get("metrics")
        return cls(
            step=int(data["step"]),
            epoch=int(data.get("epoch", 0)),
            status=str(data.get("status")),
            metrics=RunMetrics.from_dict(metrics) if metrics else None,
            data=data,
        )


@dataclass(frozen=True)
class Score:
    """Loss and accuracy over a whole split (accuracy None for a regression, both None for a
    split without samples)."""

    loss: float | None
    accuracy: float | None


@dataclass(frozen=True)
class Evaluation:
    """`Session.evaluate(split)`: the scores at `step`; a split not asked for is None."""

    step: int
    train: Score | None
    test: Score | None
    data: dict[str, Any] = field(repr=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Evaluation:
        """POST /api/sessions/{id}/evaluate's answer."""

        def score(part: dict[str, Any] | None) -> Score | None:
            return None if part is None else Score(part.get("loss"), part.get("accuracy"))

        return cls(int(data["step"]), score(data.get("train")), score(data.get("test")), data)


@dataclass(frozen=True)
class UploadInfo:
    """A stored upload: put `name` ("upload:<id>") as dataset.name in a run configuration.
    `columns` counts the input columns; `num_classes` is 0 or 1 for a regression."""

    id: str
    name: str
    rows: int
    columns: int
    task: str
    num_classes: int
    data: dict[str, Any] = field(repr=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UploadInfo:
        """POST /api/datasets/upload's answer."""
        return cls(
            id=str(data["id"]),
            name=str(data["name"]),
            rows=int(data["rows"]),
            columns=int(data["columns"]),
            task=str(data["task"]),
            num_classes=int(data.get("num_classes") or 0),
            data=data,
        )


@dataclass(frozen=True)
class SweepResult:
    """One run of `Client.sweep`: the swept `value`, the session it ran in and its result."""

    value: Any
    session_id: str
    result: TrainResult


# The /metrics columns that are one value per row (everything but "layers" and "events").
ROW_SKIP = ("layers", "events")


@dataclass(frozen=True)
class History:
    """`Session.history()`: GET /metrics as columns (`columns["loss"][i]` is the loss of row i,
    ascending by step), per-layer columns under `layers["0"]["grad_norm"]`, and `events`."""

    columns: dict[str, list[Any]]
    layers: dict[str, dict[str, list[Any]]]
    events: list[dict[str, Any]]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        """GET /api/sessions/{id}/metrics's answer."""
        columns = {key: list(value) for key, value in data.items() if key not in ROW_SKIP}
        layers = {name: dict(stats) for name, stats in (data.get("layers") or {}).items()}
        return cls(columns, layers, list(data.get("events") or []))

    @property
    def steps(self) -> list[int]:
        """The step of every row."""
        return list(self.columns.get("step", []))

    def __len__(self) -> int:
        return len(self.columns.get("step", []))

    def rows(self) -> list[dict[str, Any]]:
        """One flat dict per row: the columns, and each layer's statistics as "<layer>.<stat>"
        (e.g. "0.grad_norm"); what `as_dataframe=True` builds its DataFrame from."""
        out = []
        for i in range(len(self)):
            row = {key: values[i] for key, values in self.columns.items() if i < len(values)}
            for name, stats in self.layers.items():
                for stat, values in stats.items():
                    if i < len(values):
                        row[f"{name}.{stat}"] = values[i]
            out.append(row)
        return out
