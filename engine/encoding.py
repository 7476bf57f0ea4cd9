"""How one dataset meets one network: the inputs it sees and the targets its loss compares.

A dataset holds raw inputs (plane points, x values, images, table rows) and labels or values. The
network sees the chosen Playground features of 1-D and 2-D points (other inputs as they are), in
the training dtype; its loss wants targets in the form of its output: class labels for
cross-entropy, one-hot rows, -1/+1 for one tanh unit under mse (as Playground), 0/1 for a sigmoid,
or the values of a regression. `Encoding` makes both, checks what a user sends (trace, predict),
and counts the outputs that are right, for the accuracy.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np

from engine.config import ConfigError, RunConfig
from engine.data import Dataset, DatasetError
from engine.features import apply_features

TargetKind = Literal["onehot", "labels", "pm1", "01", "values"]


class Encoding:
    """The features, dtype and target form of one run; built from a validated config."""

    def __init__(self, dataset: Dataset, config: RunConfig) -> None:
        self.dataset = dataset  # the raw train/test split
        self.dtype = np.dtype(config.dtype)  # float32 for speed, float64 for checks
        self.features: list[str] = _features(dataset, config)  # Playground features used
        kind, threshold = _target_form(dataset, config)
        self.kind: TargetKind = kind  # how labels become targets
        self.threshold = threshold  # a one-unit output above it is class 1

    def inputs(self, raw: np.ndarray) -> np.ndarray:
        """Raw dataset inputs -> network inputs in the training dtype."""
        raw = np.asarray(raw, dtype=np.float64)
        x = apply_features(raw, self.features) if self.features else raw
        return np.ascontiguousarray(x, dtype=self.dtype)

    def targets(self, labels: np.ndarray) -> np.ndarray:
        """Labels or values as the loss wants them (Playground: -1/+1 for tanh with mse)."""
        kind = self.kind
        if kind == "values":
            return np.asarray(labels, dtype=self.dtype).reshape(len(labels), -1)
        labels = np.asarray(labels, dtype=np.int64)
        if kind == "labels":
            return labels
        if kind == "pm1":
            return (2.0 * labels - 1.0).astype(self.dtype).reshape(-1, 1)
        if kind == "01":
            return labels.astype(self.dtype).reshape(-1, 1)
        return np.eye(self.dataset.num_classes, dtype=self.dtype)[labels]

    def correct(self, outputs: np.ndarray, targets: np.ndarray) -> int:
        """How many outputs (batch, units) name the class of their targets (0 for regression)."""
        kind, threshold = self.kind, self.threshold
        if kind in ("labels", "onehot"):
            labels = targets if kind == "labels" else targets.argmax(axis=1)
            return int(np.sum(outputs.argmax(axis=1) == labels))
        if kind in ("pm1", "01"):
            return int(np.sum((outputs[:, 0] > threshold) == (targets[:, 0] > threshold)))
        return 0

    def check_inputs(self, inputs: Any) -> np.ndarray:
        """Raw inputs (points, x values or images) -> network inputs; ValueError if they don't fit."""
        raw_shape = self.dataset.x_train.shape[1:]
        try:
            raw = np.asarray(inputs, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError("inputs: expected a list of rows of numbers") from None
        if raw.ndim == 1 and len(raw_shape) == 1:
            raw = raw.reshape(1, -1) if raw.shape[0] == raw_shape[0] else raw.reshape(-1, 1)
        if raw.ndim >= 2 and raw.shape[1:] != raw_shape and raw[0].size == math.prod(raw_shape):
            raw = raw.reshape((len(raw), *raw_shape))  # flattened images
        if raw.shape[1:] != raw_shape:
            raise ValueError(
                f"inputs: expected rows of shape {list(raw_shape)}, got {list(raw.shape[1:])}"
            )
        if len(raw) == 0:
            raise ValueError("inputs: expected at least one row")
        if not np.all(np.isfinite(raw)):
            raise ValueError("inputs: contains NaN or infinite values")
        return self.inputs(raw)

    def check_targets(self, targets: Any, count: int) -> np.ndarray:
        """Raw labels or values -> what the loss wants; ValueError if they don't fit."""
        try:
            raw = np.asarray(targets, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError("targets: expected a list of numbers") from None
        if raw.ndim == 2 and raw.shape[1] == 1 and self.dataset.task != "regression":
            raw = raw[:, 0]
        if len(raw) != count:
            raise ValueError(f"targets: expected {count} values (one per input), got {len(raw)}")
        if not np.all(np.isfinite(raw)):
            raise ValueError("targets: contains NaN or infinite values")
        if self.dataset.task != "regression":
            classes = self.dataset.num_classes
            labels = raw.astype(np.int64)
            if np.any(labels != raw) or np.any((labels < 0) | (labels >= classes)):
                raise ValueError(f"targets: expected class labels 0..{classes - 1}")
            return self.targets(labels)
        return self.targets(raw)


def _features(data: Dataset, config: RunConfig) -> list[str]:
    """The config's features for 1-D/2-D data (defaults fit the data); none for others. An
    upload of images or of more than two columns takes its columns as they are: features asked
    for it are refused rather than ignored."""
    if data.is_image or data.x_train.shape[1] not in (1, 2):
        if config.dataset.name.startswith("upload:") and "features" in config.model_fields_set:
            inputs = "images" if data.is_image else f"{data.x_train.shape[1]} columns"
            raise ConfigError.single(
                "features",
                f"an upload's columns are the run's inputs as they are, and this one has "
                f"{inputs}; Playground features apply to uploads of one or two columns only, "
                f"got {list(config.features)}: leave features out",
            )
        return []
    chosen = list(config.features)
    if "features" not in config.model_fields_set and data.x_train.shape[1] == 1:
        chosen = ["x1"]
    try:
        apply_features(data.x_train[:1], chosen)
    except DatasetError as exc:
        raise ConfigError.single("features", exc.message) from None
    return chosen


def _target_form(data: Dataset, cfg: RunConfig) -> tuple[TargetKind, float]:
    """How labels become targets, and the threshold of a one-unit output; ConfigError when the
    output layer does not fit the data."""
    last = cfg.layers[-1]
    units, where = last.units, f"layers[{len(cfg.layers) - 1}].units"
    if data.task == "regression":
        if cfg.loss != "mse":
            raise ConfigError.single("loss", f"regression data needs 'mse', got {cfg.loss!r}")
        outputs = data.y_train.shape[1] if data.y_train.ndim == 2 else 1
        if units != outputs:
            raise ConfigError.single(
                where, f"regression output needs {outputs} unit(s), got {units}"
            )
        return "values", 0.0
    classes = data.num_classes
    if cfg.loss == "cross_entropy":
        if units != classes:
            raise ConfigError.single(
                where, f"cross_entropy needs one unit per class ({classes}), got {units}"
            )
        return "labels", 0.0
    if units == 1 and classes == 2:
        if cfg.loss == "bce" or last.activation == "sigmoid":
            return "01", 0.5
        return "pm1", 0.0
    if units != classes:
        hint = " (or 1 unit for two classes)" if classes == 2 else ""
        raise ConfigError.single(
            where, f"the output needs {classes} units for {classes} classes{hint}, got {units}"
        )
    return "onehot", 0.0
