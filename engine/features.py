"""The Playground input features: x1, x2, their squares, product and sines, from raw points."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from engine.config import FEATURE_NAMES
from engine.data import DatasetError

# The Playground input features, in Playground's order (the names the config allows).
FEATURES: tuple[str, ...] = FEATURE_NAMES
# The features that exist for 1-D inputs (the sine dataset).
FEATURES_1D: tuple[str, ...] = ("x1", "x1^2", "sin(x1)")

_FEATURE_FUNCTIONS: dict[str, Callable[[np.ndarray, np.ndarray | None], np.ndarray]] = {
    "x1": lambda a, b: a,
    "x2": lambda a, b: b,
    "x1^2": lambda a, b: a * a,
    "x2^2": lambda a, b: b * b,
    "x1*x2": lambda a, b: a * b,
    "sin(x1)": lambda a, b: np.sin(a),
    "sin(x2)": lambda a, b: np.sin(b),
}


def check_features(features: list[str], num_inputs: int = 2) -> None:
    """Raise DatasetError(field="features") unless `features` is valid for 1 or 2 raw inputs."""
    allowed = FEATURES if num_inputs == 2 else FEATURES_1D
    if not features:
        raise DatasetError("features", f"expected at least one of {list(allowed)}, got none")
    for feature in features:
        if feature not in allowed:
            where = "" if num_inputs == 2 else " for 1-D data"
            raise DatasetError(
                "features", f"expected one of {list(allowed)}{where}, got {feature!r}"
            )
    if len(set(features)) != len(features):
        dupes = sorted({f for f in features if features.count(f) > 1})
        raise DatasetError("features", f"expected each feature once, got {dupes} repeated")


def apply_features(points: np.ndarray, features: list[str]) -> np.ndarray:
    """Map raw (n, 2) or (n, 1) points to the chosen Playground features, (n, len(features)).

    Keeps a floating dtype (float32 stays float32); other dtypes become float64.
    """
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] not in (1, 2):
        raise DatasetError(
            "features", f"expected points of shape (n, 2) or (n, 1), got {points.shape}"
        )
    check_features(features, points.shape[1])
    dtype = points.dtype if points.dtype.kind == "f" else np.float64
    a = points[:, 0].astype(dtype, copy=False)  # (n,)
    b = points[:, 1].astype(dtype, copy=False) if points.shape[1] == 2 else None  # (n,)
    out = np.empty((points.shape[0], len(features)), dtype=dtype)  # (n, features)
    for j, feature in enumerate(features):
        out[:, j] = _FEATURE_FUNCTIONS[feature](a, b)
    return out
