"""Datasets: the built-in generators, the shipped digits, the Playground features, CSV/NPZ loading.

Everything here is generated in-process from a seed (``np.random.default_rng(seed)``) or read from
a file shipped inside the package (``engine/datasets/``: the 8x8 handwritten digits, see its
README); nothing is downloaded. The 2-D generators follow TensorFlow Playground's ``dataset.ts``
in its coordinates (points within about [-5, 5], drawn on the plane [-6, 6] x [-6, 6]);
Playground's labels -1/+1 become classes 0/1. A dataset config is any object with the attributes
``name``, ``samples``, ``noise``, ``test_fraction``, ``points`` and ``target``
(``engine.config.DatasetConfig`` fits).

Noise runs from 0 to 1 and maps onto Playground's 0..50 % noise slider: ``noise = 1`` is
Playground's 50 (its generators receive 0.5).
"""

from __future__ import annotations

import csv
import functools
import io
import math
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal

import numpy as np

from engine.config import FEATURE_NAMES, MAX_SAMPLES, MAX_TEST_FRACTION, MIN_SAMPLES

Task = Literal["binary", "multiclass", "regression"]
Domain = tuple[tuple[float, float], tuple[float, float]]
Uploads = Callable[[str], tuple[np.ndarray, np.ndarray]]

PLAYGROUND_DOMAIN: Domain = ((-6.0, 6.0), (-6.0, 6.0))
SINE_DOMAIN: Domain = ((-6.0, 6.0), (-2.0, 2.0))  # (x range, target range) of the 1-D plot
GLYPH_SIZE = 16
GLYPH_CLASSES = ("bar", "cross", "circle", "triangle", "square")
SPIRAL3_ARMS = 3
SPIRAL3_TURNS = 1.25  # each arm winds 1.25 times: harder than one turn, learnable by 2-16-16-3
DIGITS_FILE = ("datasets", "digits.npz")  # inside the engine package
DIGITS_COUNT = 1797  # scikit-learn's load_digits: the UCI optdigits test set
DIGITS_SIZE = 8
DIGITS_MAX = 16  # pixel values are ink counts of 4x4 blocks, 0..16
DIGIT_CLASSES = tuple(str(d) for d in range(10))
MAX_UPLOAD_CLASSES = 20  # integer targets with at most this many distinct values are classes

CSV_MAX_ROWS = 1_000_000
CSV_MAX_COLUMNS = 1_000
NPZ_MAX_BYTES = 64 * 1024 * 1024
NPZ_MEMBERS = ("X.npy", "y.npy")

# The Playground input features, in Playground's order (the names the config allows).
FEATURES: tuple[str, ...] = FEATURE_NAMES
# The features that exist for 1-D inputs (the sine dataset).
FEATURES_1D: tuple[str, ...] = ("x1", "x1^2", "sin(x1)")


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


# --------------------------------------------------------------------------- 2-D generators
# Each returns (points (n, 2) float64, targets): int64 labels (n,) or float64 (n,) targets.
# `noise` here is Playground's value, 0..0.5.


def _halves(n: int) -> tuple[int, int]:
    """Sizes of the negative and positive halves (positives get the odd one out)."""
    return n // 2, n - n // 2


def _circle(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    radius = 5.0
    n_neg, n_pos = _halves(n)
    r = np.concatenate(
        [rng.uniform(0.0, radius * 0.5, n_pos), rng.uniform(radius * 0.7, radius, n_neg)]
    )
    angle = rng.uniform(0.0, 2.0 * np.pi, n)
    points = np.stack([r * np.sin(angle), r * np.cos(angle)], axis=1)  # (n, 2)
    shifted = points + rng.uniform(-radius, radius, (n, 2)) * noise  # (n, 2)
    labels = (np.hypot(shifted[:, 0], shifted[:, 1]) < radius * 0.5).astype(np.int64)
    return points, labels


def _xor(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    padding = 0.3
    points = rng.uniform(-5.0, 5.0, (n, 2))  # (n, 2)
    points += np.where(points > 0, padding, -padding)
    shifted = points + rng.uniform(-5.0, 5.0, (n, 2)) * noise  # (n, 2)
    labels = (shifted[:, 0] * shifted[:, 1] >= 0).astype(np.int64)
    return points, labels


def _gaussian(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    variance = 0.5 + (4.0 - 0.5) * noise / 0.5  # Playground: noise 0..0.5 -> variance 0.5..4
    n_neg, n_pos = _halves(n)
    std = math.sqrt(variance)
    pos = rng.normal(2.0, std, (n_pos, 2))
    neg = rng.normal(-2.0, std, (n_neg, 2))
    points = np.concatenate([pos, neg])  # (n, 2)
    labels = np.concatenate([np.ones(n_pos, np.int64), np.zeros(n_neg, np.int64)])
    return points, labels


def _spiral(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n_neg, n_pos = _halves(n)
    # Playground spaces the arm positions evenly (i / n); we draw them so seeds differ at noise 0.
    u = rng.uniform(0.0, 1.0, n)
    delta = np.concatenate([np.zeros(n_pos), np.full(n_neg, np.pi)])
    r = u * 5.0
    t = 1.75 * u * 2.0 * np.pi + delta
    points = np.stack([r * np.sin(t), r * np.cos(t)], axis=1)  # (n, 2)
    points += rng.uniform(-1.0, 1.0, (n, 2)) * noise
    labels = np.concatenate([np.ones(n_pos, np.int64), np.zeros(n_neg, np.int64)])
    return points, labels


def _spiral3(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Three arms 120 degrees apart, each winding SPIRAL3_TURNS times out to radius 5."""
    k = SPIRAL3_ARMS
    labels = rng.permutation(np.arange(n) % k).astype(np.int64)  # (n,) balanced to within one
    u = rng.uniform(0.0, 1.0, n)  # position along the arm, as in _spiral
    r = u * 5.0
    t = SPIRAL3_TURNS * u * 2.0 * np.pi + labels * (2.0 * np.pi / k)
    points = np.stack([r * np.sin(t), r * np.cos(t)], axis=1)  # (n, 2)
    points += rng.uniform(-1.0, 1.0, (n, 2)) * noise
    return points, labels


def _moons(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    # scikit-learn's make_moons, centred and scaled by 3 to span about [-4.5, 4.5] x [-2.3, 2.3].
    n_upper, n_lower = _halves(n)
    t_upper = rng.uniform(0.0, np.pi, n_upper)
    t_lower = rng.uniform(0.0, np.pi, n_lower)
    upper = np.stack([np.cos(t_upper), np.sin(t_upper)], axis=1)  # (n_upper, 2)
    lower = np.stack([1.0 - np.cos(t_lower), 0.5 - np.sin(t_lower)], axis=1)  # (n_lower, 2)
    points = np.concatenate([upper, lower]) - np.array([0.5, 0.25])  # (n, 2)
    points = points * 3.0 + rng.normal(0.0, 1.0, (n, 2)) * noise * 3.0
    labels = np.concatenate([np.zeros(n_upper, np.int64), np.ones(n_lower, np.int64)])
    return points, labels


def _plane(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    radius = 6.0
    points = rng.uniform(-radius, radius, (n, 2))  # (n, 2)
    shifted = points + rng.uniform(-radius, radius, (n, 2)) * noise  # (n, 2)
    # Playground scales x1 + x2 by 1/10 (reaching 1.2 in the corners); 1/12 keeps it in [-1, 1].
    targets = np.clip((shifted[:, 0] + shifted[:, 1]) / 12.0, -1.0, 1.0)
    return points, targets


_BUMPS = np.array(
    [[-4.0, 2.5, 1.0], [0.0, 2.5, -1.0], [4.0, 2.5, 1.0], [-4.0, -2.5, -1.0], [0.0, -2.5, 1.0]]
    + [[4.0, -2.5, -1.0]]
)  # (6, 3): centre x1, centre x2, sign


def _multi_gaussian(
    n: int, noise: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    radius = 6.0
    points = rng.uniform(-radius, radius, (n, 2))  # (n, 2)
    shifted = points + rng.uniform(-radius, radius, (n, 2)) * noise  # (n, 2)
    dist = np.hypot(
        shifted[:, None, 0] - _BUMPS[None, :, 0], shifted[:, None, 1] - _BUMPS[None, :, 1]
    )  # (n, 6)
    values = _BUMPS[None, :, 2] * np.clip(1.0 - dist / 2.0, 0.0, 1.0)  # (n, 6)
    # The bump strongest in absolute value wins (first one on ties, as Playground's strict >).
    targets = values[np.arange(n), np.argmax(np.abs(values), axis=1)]
    return points, targets


_PLANE_GENERATORS: dict[str, Callable[..., tuple[np.ndarray, np.ndarray]]] = {
    "circle": _circle,
    "xor": _xor,
    "gaussian": _gaussian,
    "spiral": _spiral,
    "moons": _moons,
    "plane": _plane,
    "multi-gaussian": _multi_gaussian,
    "spiral3": _spiral3,
}
_CLASS_NAMES: dict[str, list[str]] = {
    "circle": ["negative", "positive"],
    "xor": ["negative", "positive"],
    "gaussian": ["negative", "positive"],
    "spiral": ["negative", "positive"],
    "moons": ["upper moon", "lower moon"],
    "spiral3": [f"arm {i}" for i in range(SPIRAL3_ARMS)],
}


# --------------------------------------------------------------------------- glyphs


def _segment_distance(
    px: np.ndarray,
    py: np.ndarray,
    ax: np.ndarray,
    ay: np.ndarray,
    bx: np.ndarray,
    by: np.ndarray,
) -> np.ndarray:
    """Euclidean distance from pixel centres (1, H, W) to segments A-B with ends (m, 1, 1)."""
    dx, dy = bx - ax, by - ay
    length2 = np.maximum(dx * dx + dy * dy, 1e-12)
    t = np.clip(((px - ax) * dx + (py - ay) * dy) / length2, 0.0, 1.0)  # (m, H, W)
    return np.hypot(px - ax - t * dx, py - ay - t * dy)


def _glyph_distance(
    kind: str, px: np.ndarray, py: np.ndarray, cx: np.ndarray, cy: np.ndarray, s: np.ndarray
) -> np.ndarray:
    """Distance from each pixel to the outline of glyph `kind` of centre (cx, cy), half-size s."""
    if kind == "bar":
        return _segment_distance(px, py, cx - s, cy, cx + s, cy)
    if kind == "cross":
        horizontal = _segment_distance(px, py, cx - s, cy, cx + s, cy)
        vertical = _segment_distance(px, py, cx, cy - s, cx, cy + s)
        return np.minimum(horizontal, vertical)
    if kind == "circle":
        return np.abs(np.hypot(px - cx, py - cy) - s)
    if kind == "square":
        half = s * 0.85
        qx = np.abs(px - cx) - half
        qy = np.abs(py - cy) - half
        outside = np.hypot(np.maximum(qx, 0.0), np.maximum(qy, 0.0))
        signed = outside + np.minimum(np.maximum(qx, qy), 0.0)
        return np.abs(signed)
    if kind == "triangle":  # apex up (rows grow downwards)
        top = (cx, cy - s)
        left = (cx - s, cy + 0.8 * s)
        right = (cx + s, cy + 0.8 * s)
        d1 = _segment_distance(px, py, *top, *left)
        d2 = _segment_distance(px, py, *left, *right)
        d3 = _segment_distance(px, py, *right, *top)
        return np.minimum(np.minimum(d1, d2), d3)
    raise ValueError(f"unknown glyph kind: expected one of {GLYPH_CLASSES}, got {kind!r}")


def _glyphs(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draw n anti-aliased glyph outlines with jittered position, size, stroke and brightness.

    `noise` is the 0..1 config value: additive Gaussian pixel noise of std 0.35 * noise.
    """
    k = len(GLYPH_CLASSES)
    labels = rng.permutation(np.arange(n) % k).astype(np.int64)  # balanced classes
    centre = GLYPH_SIZE / 2 - 0.5
    cx = centre + rng.uniform(-1.5, 1.5, n)
    cy = centre + rng.uniform(-1.5, 1.5, n)
    half = rng.uniform(3.0, 5.0, n)
    stroke = rng.uniform(1.0, 2.0, n)
    brightness = rng.uniform(0.7, 1.0, n)
    grid = np.arange(GLYPH_SIZE, dtype=np.float64)
    py, px = np.meshgrid(grid, grid, indexing="ij")
    px, py = px[None], py[None]  # (1, H, W)

    images = np.empty((n, 1, GLYPH_SIZE, GLYPH_SIZE), dtype=np.float64)
    chunk = 4096
    for label, kind in enumerate(GLYPH_CLASSES):
        members = np.flatnonzero(labels == label)
        for start in range(0, members.size, chunk):
            idx = members[start : start + chunk]
            cxs, cys = cx[idx, None, None], cy[idx, None, None]  # (m, 1, 1)
            dist = _glyph_distance(kind, px, py, cxs, cys, half[idx, None, None])  # (m, H, W)
            ink = np.clip(stroke[idx, None, None] / 2.0 + 0.5 - dist, 0.0, 1.0)  # (m, H, W)
            images[idx, 0] = ink * brightness[idx, None, None]
    if noise > 0:
        images += rng.normal(0.0, 0.35 * noise, images.shape)
        np.clip(images, 0.0, 1.0, out=images)
    return images, labels


# --------------------------------------------------------------------------- digits


class DigitsFileError(RuntimeError):
    """The shipped digits file is missing or not what this module expects (a packaging bug)."""


@functools.cache
def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 digits as shipped: (images (1797, 8, 8) uint8 0..16, labels (1797,) uint8 0..9).

    Read once per process from engine/datasets/digits.npz (no pickles); the arrays are read-only.
    """
    source = resources.files("engine").joinpath(*DIGITS_FILE)
    try:
        with np.load(io.BytesIO(source.read_bytes()), allow_pickle=False) as npz:
            images, labels = npz["images"], npz["labels"]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise DigitsFileError(f"engine/{'/'.join(DIGITS_FILE)}: cannot be read: {exc}") from None
    shape = (DIGITS_COUNT, DIGITS_SIZE, DIGITS_SIZE)
    if images.shape != shape or labels.shape != (DIGITS_COUNT,) or images.dtype != np.uint8:
        raise DigitsFileError(
            f"engine/{'/'.join(DIGITS_FILE)}: expected uint8 images {shape} and labels "
            f"({DIGITS_COUNT},), got {images.dtype} {images.shape} and {labels.shape}"
        )
    if images.max() > DIGITS_MAX or labels.max() >= len(DIGIT_CLASSES):
        raise DigitsFileError(
            f"engine/{'/'.join(DIGITS_FILE)}: expected pixels 0..{DIGITS_MAX} and labels 0..9, "
            f"got up to {images.max()} and {labels.max()}"
        )
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


def _digits(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n of the shipped digits as (n, 1, 8, 8) images in [0, 1], classes in proportion.

    All of them for n = 1797; fewer are a seeded, stratified subset in the file's order. `noise`
    is the 0..1 config value: additive Gaussian pixel noise of std 0.35 * noise, as for glyphs;
    the subset and the split do not depend on it.
    """
    if n > DIGITS_COUNT:
        raise DatasetError(
            "dataset.samples",
            f"expected at most {DIGITS_COUNT} for 'digits' (the whole set), got {n}",
        )
    images, labels = load_digits()
    classes, counts = np.unique(labels, return_counts=True)
    quota = _quotas(counts, n)
    chosen = np.sort(
        np.concatenate(
            [
                rng.permutation(np.flatnonzero(labels == cls))[:q]
                for cls, q in zip(classes, quota, strict=True)
            ]
        )
    )  # (n,) indices into the file
    x = images[chosen, None].astype(np.float64) / DIGITS_MAX  # (n, 1, 8, 8)
    # Drawn even at noise 0, so that the train/test split drawn next is the same at every noise.
    jitter = rng.normal(0.0, 1.0, x.shape)  # (n, 1, 8, 8)
    if noise > 0:
        x += jitter * (0.35 * noise)
        np.clip(x, 0.0, 1.0, out=x)
    return x, labels[chosen].astype(np.int64)


# --------------------------------------------------------------------------- split


def _test_count(n: int, fraction: float) -> int:
    """round(n * fraction), leaving at least one training sample."""
    return min(int(math.floor(n * fraction + 0.5)), n - 1)


def _quotas(counts: np.ndarray, total: int) -> np.ndarray:
    """Split `total` places over classes in proportion to their `counts` (largest remainders get
    the leftover places, so the quotas add up to exactly `total`)."""
    exact = counts * (total / counts.sum())
    quota = np.floor(exact).astype(np.int64)
    leftover = total - int(quota.sum())
    order = np.argsort(-(exact - quota), kind="stable")
    quota[order[:leftover]] += 1
    return quota


def split_indices(
    n: int, fraction: float, rng: np.random.Generator, labels: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (train, test) index arrays; stratified by class when `labels` are given."""
    n_test = _test_count(n, fraction)
    if labels is None:
        perm = rng.permutation(n)
        return perm[n_test:], perm[:n_test]
    classes, counts = np.unique(labels, return_counts=True)
    quota = _quotas(counts, n_test)
    train_parts, test_parts = [], []
    for cls, q in zip(classes, quota, strict=True):
        members = rng.permutation(np.flatnonzero(labels == cls))
        test_parts.append(members[:q])
        train_parts.append(members[q:])
    train = rng.permutation(np.concatenate(train_parts))
    test = rng.permutation(np.concatenate(test_parts))
    return train, test


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


# image datasets: name -> (generator of (images, labels), class names)
_IMAGE_SETS: dict[str, tuple[Callable[..., tuple[np.ndarray, np.ndarray]], tuple[str, ...]]] = {
    "glyphs": (_glyphs, GLYPH_CLASSES),
    "digits": (_digits, DIGIT_CLASSES),
}


def make_dataset(config: Any, seed: int, uploads: Uploads | None = None) -> Dataset:
    """Build the dataset `config` names, split into train/test, reproducibly from `seed`.

    `uploads(id)` returns the (X, y) arrays of an "upload:<id>" dataset (optionally a third item,
    the input column names) and raises KeyError for an unknown id.
    """
    name, samples, noise, fraction = _check_config(config, seed)
    rng = np.random.default_rng(int(seed))
    pg_noise = noise * 0.5  # Playground's generators take its 0..50 % slider as 0..0.5

    if name in _PLANE_GENERATORS:
        points, targets = _PLANE_GENERATORS[name](samples, pg_noise, rng)
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
            num_classes=len(_CLASS_NAMES[name]),
            class_names=list(_CLASS_NAMES[name]),
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
    if name in _IMAGE_SETS:
        make, classes = _IMAGE_SETS[name]
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


# --------------------------------------------------------------------------- features

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


# --------------------------------------------------------------------------- CSV


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # never fails; numbers read the same


def load_csv(data: bytes, target: str | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Parse a numeric CSV with a header row into (X (n, d) float64, y (n,) float64, names).

    `target` names the target column (default: the last one); `names` are the d input columns
    in file order. Errors name the 1-based data row and the column.
    """
    text = _decode(data)
    if not text.strip():
        raise DatasetError("upload", "expected a CSV file with a header row, got an empty file")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
        while not any(cell.strip() for cell in header):
            header = next(reader)
    except StopIteration:
        raise DatasetError("upload", "expected a header row, got none") from None
    except csv.Error as exc:
        raise DatasetError(
            "upload", f"expected CSV text, got a parse error in the header: {exc}"
        ) from None
    columns = [cell.strip() or f"column_{j + 1}" for j, cell in enumerate(header)]
    width = len(columns)
    if width > CSV_MAX_COLUMNS:
        raise DatasetError("upload", f"expected at most {CSV_MAX_COLUMNS} columns, got {width}")
    if width < 2:
        raise DatasetError(
            "upload", f"expected at least 2 columns (inputs and a target), got {width}"
        )
    duplicates = sorted({c for c in columns if columns.count(c) > 1})
    if duplicates:
        raise DatasetError("upload", f"expected unique column names, got {duplicates} repeated")
    if target is None:
        target_index = width - 1
    elif target in columns:
        target_index = columns.index(target)
    else:
        raise DatasetError(
            "dataset.target", f"expected one of the columns {columns}, got {target!r}"
        )

    rows: list[list[float]] = []
    row_number = 0
    try:
        for cells in reader:
            if not cells or not any(cell.strip() for cell in cells):
                continue  # blank line
            row_number += 1
            if row_number > CSV_MAX_ROWS:
                raise DatasetError("upload", f"expected at most {CSV_MAX_ROWS} data rows, got more")
            if len(cells) != width:
                raise DatasetError(
                    "upload",
                    f"row {row_number}: expected {width} cells like the header, got {len(cells)}",
                )
            try:
                values = [float(cell) for cell in cells]
            except ValueError:
                values = _parse_row(cells, row_number, columns)
            if not all(math.isfinite(v) for v in values):
                j = next(j for j, v in enumerate(values) if not math.isfinite(v))
                raise DatasetError(
                    "upload",
                    f"row {row_number}, column {columns[j]!r}: expected a finite number, "
                    f"got {cells[j].strip()!r}",
                )
            rows.append(values)
    except csv.Error as exc:
        raise DatasetError(
            "upload", f"row {row_number + 1}: expected CSV text, got a parse error: {exc}"
        ) from None
    if not rows:
        raise DatasetError("upload", "expected data rows below the header, got none")
    table = np.array(rows, dtype=np.float64)  # (n, width)
    y = table[:, target_index].copy()  # (n,)
    x = np.delete(table, target_index, axis=1)  # (n, width - 1)
    names = [c for j, c in enumerate(columns) if j != target_index]
    return x, y, names


def _parse_row(cells: list[str], row_number: int, columns: list[str]) -> list[float]:
    """Parse a row known to hold a bad cell, raising DatasetError naming it."""
    values = []
    for j, cell in enumerate(cells):
        try:
            values.append(float(cell))
        except ValueError:
            shown = cell.strip()
            shown = shown if len(shown) <= 40 else shown[:40] + "..."
            got = "an empty cell" if not shown else repr(shown)
            raise DatasetError(
                "upload",
                f"row {row_number}, column {columns[j]!r}: expected a number, got {got}",
            ) from None
    return values


# --------------------------------------------------------------------------- NPZ


def load_npz(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Read arrays "X" and "y" from .npz bytes, refusing pickles, extra members and zip bombs.

    Sizes and dtypes are checked from the zip directory and the .npy headers before any array
    is allocated; X is returned as (n, ...) and y as (n,) or (n, 1), dtypes as stored.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError):
        raise DatasetError("upload", "expected an .npz (zip) file, got something else") from None
    with archive:
        infos = archive.infolist()
        names = [info.filename for info in infos]
        extra = sorted(set(names) - set(NPZ_MEMBERS))
        if extra:
            raise DatasetError(
                "upload", f"expected only the arrays X and y in the .npz, got also {extra}"
            )
        missing = [m for m in NPZ_MEMBERS if m not in names]
        if missing or len(names) != len(set(names)):
            raise DatasetError(
                "upload", f"expected the arrays X and y once each in the .npz, got {names}"
            )
        total = sum(info.file_size for info in infos)
        if total > NPZ_MAX_BYTES:
            raise DatasetError(
                "upload",
                f"expected at most {NPZ_MAX_BYTES // 2**20} MiB of arrays uncompressed, "
                f"got {total / 2**20:.1f} MiB",
            )
        for info in infos:
            if info.flag_bits & 0x1:
                raise DatasetError("upload", f"expected unencrypted members, got {info.filename}")
            _check_npy_header(archive, info)
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in ("X", "y")}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, RuntimeError) as exc:
        raise DatasetError("upload", f"expected valid .npy arrays X and y, got: {exc}") from None
    x, y = arrays["X"], arrays["y"]
    if x.ndim == 0 or y.ndim == 0:
        raise DatasetError(
            "upload", f"expected arrays with a sample axis, got X {x.shape} and y {y.shape}"
        )
    if len(x) != len(y):
        raise DatasetError("upload", f"expected as many rows in y as in X ({len(x)}), got {len(y)}")
    if not (y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1)):
        raise DatasetError("upload", f"expected y of shape (n,) or (n, 1), got {y.shape}")
    return x, y


def _check_npy_header(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
    """Check one .npy member's header: a numeric dtype and a size matching the zip entry."""
    fmt = np.lib.format
    name = info.filename[:-4]
    try:
        with archive.open(info) as fp:
            version = fmt.read_magic(fp)
            if version == (1, 0):
                shape, _, dtype = fmt.read_array_header_1_0(fp)
            elif version in ((2, 0), (3, 0)):
                shape, _, dtype = fmt.read_array_header_2_0(fp)
            else:
                raise ValueError(f"unsupported .npy version {version}")
            header_size = fp.tell()
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, RuntimeError) as exc:
        raise DatasetError("upload", f"expected a valid .npy array {name}, got: {exc}") from None
    if dtype.hasobject or dtype.kind not in "biuf" or dtype.fields is not None:
        raise DatasetError("upload", f"expected a numeric array {name}, got dtype {dtype}")
    # The zip entry's declared size caps what decompression can produce; the header must agree,
    # so a header claiming a huge shape cannot make np.load allocate it.
    payload = math.prod(shape) * dtype.itemsize
    if header_size + payload != info.file_size:
        raise DatasetError(
            "upload",
            f"expected {name}.npy to hold {payload} bytes for shape {shape}, "
            f"got {info.file_size - header_size}",
        )
