"""Datasets: the built-in registry, the entry point that builds a split dataset, user data.

`make_dataset` builds the dataset a config names (``engine.config.DatasetConfig`` fits; any
object with the attributes ``name``, ``samples``, ``noise``, ``test_fraction``, ``points`` and
``target`` does) and splits it into train and test reproducibly from a seed: a built-in one from
engine.generators, points drawn on the page, or an uploaded file's arrays (engine.uploads reads
the files). The Playground features of the inputs are engine.features'.

Noise runs from 0 to 1 and maps onto Playground's 0..50 % noise slider: ``noise = 1`` is
Playground's 50 (its generators receive 0.5).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from engine.config import MAX_SAMPLES, MAX_TEST_FRACTION, MIN_SAMPLES
from engine.generators import (
    CLASS_NAMES,
    DIGIT_CLASSES,
    DIGITS_COUNT,
    DIGITS_SIZE,
    GLYPH_CLASSES,
    GLYPH_SIZE,
    IMAGE_SETS,
    PLANE_GENERATORS,
    SPIRAL3_ARMS,
)
from engine.split import split_indices

Task = Literal["binary", "multiclass", "regression"]
Domain = tuple[tuple[float, float], tuple[float, float]]
Uploads = Callable[[str], tuple[np.ndarray, np.ndarray]]

PLAYGROUND_DOMAIN: Domain = ((-6.0, 6.0), (-6.0, 6.0))
SINE_DOMAIN: Domain = ((-6.0, 6.0), (-2.0, 2.0))  # (x range, target range) of the 1-D plot
MAX_UPLOAD_CLASSES = 20  # integer targets with at most this many distinct values are classes
# Uploaded values beyond float32's range would be infinite in training, and the span of 2-D
# data (the decision grid's domain) infinite even in float64 (+-1e308): refused on upload.
MAX_UPLOAD_MAGNITUDE = float(np.finfo(np.float32).max)  # 3.4e38


class DatasetError(ValueError):
    """A dataset request or file that cannot be served; `field` names the offending input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field  # e.g. "dataset.name", "dataset.samples", "features", "upload"
        self.message = message


@dataclass
class Dataset:
    """A train/test split of one dataset, with what the page needs to draw it."""

    name: str  # the requested name, e.g. "spiral" or "upload:abc123"
    task: Task
    x_train: np.ndarray  # (n, 2) plane points | (n, 1) sine | (n, 1, 16, 16) images | (n, d) table
    y_train: np.ndarray  # (n,) int64 classes 0..K-1, or (n, 1) float64 regression targets
    x_test: np.ndarray  # same trailing shape as x_train
    y_test: np.ndarray  # same trailing shape as y_train
    num_classes: int  # 1 for regression
    class_names: list[str]
    input_names: list[str]  # one per input column; ["image"] for images
    domain: Domain | None = None  # ((x1 min, x1 max), (x2 min, x2 max)) of the drawn plane
    description: str = field(default="")

    @property
    def is_2d(self) -> bool:
        """True when each sample is a point of the plane (the page draws the decision surface)."""
        return self.x_train.ndim == 2 and self.x_train.shape[1] == 2

    @property
    def is_image(self) -> bool:
        """True when each sample is an image (N, C, H, W)."""
        return self.x_train.ndim == 4

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Per-sample input shape (no batch dimension)."""
        return tuple(int(s) for s in self.x_train.shape[1:])


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class ParamSpec:
    """One tunable dataset parameter for the page: default and inclusive range."""

    name: str
    default: float
    min: float
    max: float
    step: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "default": self.default,
            "min": self.min,
            "max": self.max,
            "step": self.step,
        }


@dataclass(frozen=True)
class DatasetInfo:
    """A built-in dataset as listed by GET /api/datasets."""

    name: str
    title: str
    task: Task
    input_kind: Literal["2d", "1d", "image"]
    description: str
    params: tuple[ParamSpec, ...]
    source: Literal["generated", "drawn", "shipped"] = "generated"  # shipped: a file in the package
    num_classes: int | None = None  # None for regression
    input_shape: tuple[int, ...] | None = None  # per-sample shape of image datasets

    def to_dict(self) -> dict[str, Any]:
        out = {
            "name": self.name,
            "title": self.title,
            "task": self.task,
            "input_kind": self.input_kind,
            "description": self.description,
            "source": self.source,
            "params": [p.to_dict() for p in self.params],
        }
        if self.num_classes is not None:
            out["num_classes"] = self.num_classes
        if self.input_shape is not None:
            out["input_shape"] = list(self.input_shape)
        return out


def _params(
    samples: int = 500, noise: float = 0.0, max_samples: int = MAX_SAMPLES
) -> tuple[ParamSpec, ...]:
    return (
        ParamSpec("samples", samples, MIN_SAMPLES, max_samples, 1),
        ParamSpec("noise", noise, 0.0, 1.0, 0.02),
        ParamSpec("test_fraction", 0.3, 0.0, MAX_TEST_FRACTION, 0.05),
    )


DATASETS: tuple[DatasetInfo, ...] = (
    DatasetInfo(
        "circle",
        "Circle",
        "binary",
        "2d",
        "A disc of one class inside a ring of the other.",
        _params(),
        num_classes=2,
    ),
    DatasetInfo(
        "xor",
        "Exclusive or",
        "binary",
        "2d",
        "Four quadrants; the class is the sign of x1 * x2.",
        _params(),
        num_classes=2,
    ),
    DatasetInfo(
        "gaussian",
        "Gaussian",
        "binary",
        "2d",
        "Two Gaussian clouds around (2, 2) and (-2, -2), wider as the noise grows.",
        _params(),
        num_classes=2,
    ),
    DatasetInfo(
        "spiral",
        "Spiral",
        "binary",
        "2d",
        "Two interleaved spiral arms, the hardest of the Playground sets.",
        _params(),
        num_classes=2,
    ),
    DatasetInfo(
        "moons",
        "Moons",
        "binary",
        "2d",
        "Two interleaved half moons with Gaussian jitter.",
        _params(noise=0.2),
        num_classes=2,
    ),
    DatasetInfo(
        "spiral3",
        "Three spirals",
        "multiclass",
        "2d",
        "Three interleaved spiral arms, one class each: a softmax output with three units.",
        _params(),
        num_classes=SPIRAL3_ARMS,
    ),
    DatasetInfo(
        "plane",
        "Plane",
        "regression",
        "2d",
        "A target that rises linearly from -1 to 1 along x1 + x2.",
        _params(),
    ),
    DatasetInfo(
        "multi-gaussian",
        "Multi Gaussian",
        "regression",
        "2d",
        "Six bumps of target +1 or -1 on a grid; the target is the strongest bump at each point.",
        _params(),
    ),
    DatasetInfo(
        "sine",
        "Sine",
        "regression",
        "1d",
        "One input x in [-6, 6] and the target sin(x) plus Gaussian noise.",
        _params(noise=0.1),
    ),
    DatasetInfo(
        "glyphs",
        "Glyphs",
        "multiclass",
        "image",
        "16x16 greyscale drawings of a bar, cross, circle, triangle or square, jittered.",
        _params(samples=1000, noise=0.2),
        num_classes=len(GLYPH_CLASSES),
        input_shape=(1, GLYPH_SIZE, GLYPH_SIZE),
    ),
    DatasetInfo(
        "digits",
        "Handwritten digits",
        "multiclass",
        "image",
        "1,797 real 8x8 handwritten digits 0-9 (UCI optdigits, as in scikit-learn); samples "
        "picks a class-balanced subset, noise adds pixel noise (0 keeps the scans as they are).",
        _params(samples=DIGITS_COUNT, max_samples=DIGITS_COUNT),
        source="shipped",
        num_classes=len(DIGIT_CLASSES),
        input_shape=(1, DIGITS_SIZE, DIGITS_SIZE),
    ),
    DatasetInfo(
        "points",
        "Your points",
        "binary",
        "2d",
        "Points you place on the plane yourself, in two classes.",
        (ParamSpec("test_fraction", 0.3, 0.0, MAX_TEST_FRACTION, 0.05),),
        source="drawn",
        num_classes=2,
    ),
)
DATASETS_BY_NAME: dict[str, DatasetInfo] = {info.name: info for info in DATASETS}

# --------------------------------------------------------------------------- validation


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def _is_number(value: object) -> bool:
    return (
        isinstance(value, int | float | np.integer | np.floating)
        and not isinstance(value, bool | np.bool_)
        and math.isfinite(float(value))
    )


def _check_config(config: Any, seed: int) -> tuple[str, int, float, float]:
    """Validate the generic config fields; return (name, samples, noise, test_fraction)."""
    name = getattr(config, "name", None)
    if not isinstance(name, str) or not name:
        raise DatasetError("dataset.name", f"expected a dataset name, got {name!r}")
    samples = getattr(config, "samples", None)
    if not _is_int(samples) or not MIN_SAMPLES <= int(samples) <= MAX_SAMPLES:
        raise DatasetError(
            "dataset.samples",
            f"expected an integer from {MIN_SAMPLES} to {MAX_SAMPLES}, got {samples!r}",
        )
    noise = getattr(config, "noise", None)
    if not _is_number(noise) or not 0.0 <= float(noise) <= 1.0:
        raise DatasetError("dataset.noise", f"expected a number from 0 to 1, got {noise!r}")
    fraction = getattr(config, "test_fraction", None)
    if not _is_number(fraction) or not 0.0 <= float(fraction) <= MAX_TEST_FRACTION:
        raise DatasetError(
            "dataset.test_fraction",
            f"expected a number from 0 to {MAX_TEST_FRACTION}, got {fraction!r}",
        )
    if not _is_int(seed) or int(seed) < 0:
        raise DatasetError("seed", f"expected a non-negative integer, got {seed!r}")
    return name, int(samples), float(noise), float(fraction)


def _build(
    name: str,
    task: Task,
    x: np.ndarray,
    y: np.ndarray,
    fraction: float,
    rng: np.random.Generator,
    *,
    num_classes: int,
    class_names: list[str],
    input_names: list[str],
    domain: Domain | None,
    description: str = "",
) -> Dataset:
    """Split (x, y) into a Dataset; y is (n,) labels or (n,) / (n, 1) regression targets."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    if task == "regression":
        y = np.asarray(y, dtype=np.float64).reshape(-1, 1)  # (n, 1)
        train, test = split_indices(len(x), fraction, rng)
    else:
        y = np.asarray(y, dtype=np.int64).reshape(-1)  # (n,)
        train, test = split_indices(len(x), fraction, rng, labels=y)
    return Dataset(
        name=name,
        task=task,
        x_train=x[train],
        y_train=y[train],
        x_test=x[test],
        y_test=y[test],
        num_classes=num_classes,
        class_names=class_names,
        input_names=input_names,
        domain=domain,
        description=description,
    )


# --------------------------------------------------------------------------- user data


def _points_dataset(name: str, points: Any, fraction: float, rng: np.random.Generator) -> Dataset:
    if points is None:
        raise DatasetError("dataset.points", "expected a list of [x1, x2, label], got none")
    try:
        arr = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DatasetError(
            "dataset.points", f"expected a list of [x1, x2, label] numbers, got {exc}"
        ) from None
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise DatasetError(
            "dataset.points",
            f"expected a list of [x1, x2, label] triples, got an array of shape {arr.shape}",
        )
    if len(arr) < MIN_SAMPLES:
        raise DatasetError(
            "dataset.points", f"expected at least {MIN_SAMPLES} points, got {len(arr)}"
        )
    if not np.isfinite(arr).all():
        bad = int(np.flatnonzero(~np.isfinite(arr).all(axis=1))[0])
        raise DatasetError(
            "dataset.points", f"expected finite numbers, got {arr[bad].tolist()} at point {bad}"
        )
    labels = arr[:, 2]
    bad_labels = (labels != 0) & (labels != 1)
    if bad_labels.any():
        bad = int(np.flatnonzero(bad_labels)[0])
        raise DatasetError(
            "dataset.points", f"expected labels 0 or 1, got {labels[bad]:g} at point {bad}"
        )
    return _build(
        name,
        "binary",
        arr[:, :2],
        labels.astype(np.int64),
        fraction,
        rng,
        num_classes=2,
        class_names=["class 0", "class 1"],
        input_names=["x1", "x2"],
        domain=PLAYGROUND_DOMAIN,
        description=DATASETS_BY_NAME["points"].description,
    )


def _numeric(array: np.ndarray, what: str) -> np.ndarray:
    if array.dtype.kind not in "biuf":
        raise DatasetError("upload", f"expected numeric {what}, got dtype {array.dtype}")
    out = np.asarray(array, dtype=np.float64)
    if not np.isfinite(out).all():
        raise DatasetError("upload", f"expected finite {what}, got NaN or infinity")
    largest = float(np.abs(out).max()) if out.size else 0.0
    if largest > MAX_UPLOAD_MAGNITUDE:
        raise DatasetError(
            "upload",
            f"expected {what} within +-{MAX_UPLOAD_MAGNITUDE:.3g} (float32), got {largest:g}; "
            "scale the data",
        )
    return out


def _upload_dataset(
    name: str, upload_id: str, uploads: Uploads | None, fraction: float, rng: np.random.Generator
) -> Dataset:
    if uploads is None:
        raise DatasetError("dataset.name", f"uploads are not available here, got {name!r}")
    if not upload_id:
        raise DatasetError("dataset.name", f"expected 'upload:<id>', got {name!r}")
    try:
        got = uploads(upload_id)
    except KeyError:
        raise DatasetError(
            "dataset.name", f"expected the id of an uploaded dataset, got {upload_id!r}"
        ) from None
    x_raw, y_raw = np.asarray(got[0]), np.asarray(got[1])
    names = list(got[2]) if len(got) > 2 else None  # optional column names
    x = _numeric(x_raw, "inputs X")
    y = _numeric(y_raw, "targets y")
    if x.ndim == 1:
        x = x[:, None]  # (n, 1)
    elif x.ndim == 3:
        x = x[:, None]  # (n, 1, H, W)
    if x.ndim not in (2, 4) or x.shape[0] == 0 or 0 in x.shape[1:]:
        raise DatasetError(
            "upload",
            f"expected X of shape (n, d), (n, H, W) or (n, C, H, W), got {x_raw.shape}",
        )
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or len(y) != len(x):
        raise DatasetError(
            "upload", f"expected y of shape ({len(x)},) to match X, got {y_raw.shape}"
        )
    if len(x) < MIN_SAMPLES:
        raise DatasetError("upload", f"expected at least {MIN_SAMPLES} rows, got {len(x)}")

    if x.ndim == 4:
        input_names = ["image"]
    elif names is not None and len(names) == x.shape[1]:
        input_names = [str(n) for n in names]
    else:
        input_names = [f"x{i + 1}" for i in range(x.shape[1])]
    domain = _data_domain(x) if x.ndim == 2 and x.shape[1] == 2 else None

    values = np.unique(y)
    if np.array_equal(values, np.round(values)) and len(values) <= MAX_UPLOAD_CLASSES:
        if len(values) < 2:
            raise DatasetError(
                "upload", f"expected at least 2 classes in y, got only {values[0]:g}"
            )
        labels = np.searchsorted(values, y).astype(np.int64)  # (n,) 0..K-1
        k = len(values)
        return _build(
            name,
            "binary" if k == 2 else "multiclass",
            x,
            labels,
            fraction,
            rng,
            num_classes=k,
            class_names=[str(int(v)) for v in values],
            input_names=input_names,
            domain=domain,
        )
    return _build(
        name,
        "regression",
        x,
        y,
        fraction,
        rng,
        num_classes=1,
        class_names=[],
        input_names=input_names,
        domain=domain,
    )


def _data_domain(x: np.ndarray) -> Domain:
    """The data's bounding box padded by 10 % per side (at least 1 unit wide)."""
    out = []
    for j in range(2):
        lo, hi = float(x[:, j].min()), float(x[:, j].max())
        pad = max((hi - lo) * 0.1, 0.5)
        out.append((lo - pad, hi + pad))
    return out[0], out[1]


# --------------------------------------------------------------------------- entry point


def make_dataset(config: Any, seed: int, uploads: Uploads | None = None) -> Dataset:
    """Build the dataset `config` names, split into train/test, reproducibly from `seed`.

    `uploads(id)` returns the (X, y) arrays of an "upload:<id>" dataset (optionally a third item,
    the input column names) and raises KeyError for an unknown id.
    """
    name, samples, noise, fraction = _check_config(config, seed)
    if name == "digits" and samples > DIGITS_COUNT:  # the shipped file holds no more
        raise DatasetError(
            "dataset.samples",
            f"expected at most {DIGITS_COUNT} for 'digits' (the whole set), got {samples}",
        )
    rng = np.random.default_rng(int(seed))
    pg_noise = noise * 0.5  # Playground's generators take its 0..50 % slider as 0..0.5

    if name in PLANE_GENERATORS:
        points, targets = PLANE_GENERATORS[name](samples, pg_noise, rng)
        info = DATASETS_BY_NAME[name]
        if info.task == "regression":
            return _build(
                name,
                "regression",
                points,
                targets,
                fraction,
                rng,
                num_classes=1,
                class_names=[],
                input_names=["x1", "x2"],
                domain=PLAYGROUND_DOMAIN,
                description=info.description,
            )
        return _build(
            name,
            info.task,
            points,
            targets,
            fraction,
            rng,
            num_classes=len(CLASS_NAMES[name]),
            class_names=list(CLASS_NAMES[name]),
            input_names=["x1", "x2"],
            domain=PLAYGROUND_DOMAIN,
            description=info.description,
        )
    if name == "sine":
        x = rng.uniform(-6.0, 6.0, (samples, 1))  # (n, 1)
        y = np.sin(x) + rng.normal(0.0, pg_noise, (samples, 1))  # (n, 1)
        return _build(
            name,
            "regression",
            x,
            y,
            fraction,
            rng,
            num_classes=1,
            class_names=[],
            input_names=["x1"],
            domain=SINE_DOMAIN,
            description=DATASETS_BY_NAME[name].description,
        )
    if name in IMAGE_SETS:
        make, classes = IMAGE_SETS[name]
        images, labels = make(samples, noise, rng)
        return _build(
            name,
            "multiclass",
            images,
            labels,
            fraction,
            rng,
            num_classes=len(classes),
            class_names=list(classes),
            input_names=["image"],
            domain=None,
            description=DATASETS_BY_NAME[name].description,
        )
    if name == "points":
        return _points_dataset(name, getattr(config, "points", None), fraction, rng)
    if name.startswith("upload:"):
        return _upload_dataset(name, name[len("upload:") :], uploads, fraction, rng)
    known = ", ".join(info.name for info in DATASETS)
    raise DatasetError("dataset.name", f"expected one of {known} or 'upload:<id>', got {name!r}")
