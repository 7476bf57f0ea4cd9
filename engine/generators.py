"""The built-in datasets' generators: TensorFlow Playground's 2-D sets, glyphs, shipped digits.

Each generator draws from the generator it is given (``np.random.default_rng(seed)``) or reads a
file shipped inside the package (``engine/datasets/``: the 8x8 handwritten digits, see its
README); nothing is downloaded. The 2-D generators follow Playground's ``dataset.ts`` in its
coordinates (points within about [-5, 5], drawn on the plane [-6, 6] x [-6, 6]); Playground's
labels -1/+1 become classes 0/1. engine.data turns what they return into a split Dataset.
"""

from __future__ import annotations

import functools
import io
import math
import zipfile
from collections.abc import Callable
from importlib import resources

import numpy as np

from engine.split import quotas

GLYPH_SIZE = 16
GLYPH_CLASSES = ("bar", "cross", "circle", "triangle", "square")
SPIRAL3_ARMS = 3
SPIRAL3_TURNS = 1.25  # each arm winds 1.25 times: harder than one turn, learnable by 2-16-16-3
DIGITS_FILE = ("datasets", "digits.npz")  # inside the engine package
DIGITS_COUNT = 1797  # scikit-learn's load_digits: the UCI optdigits test set
DIGITS_SIZE = 8
DIGITS_MAX = 16  # pixel values are ink counts of 4x4 blocks, 0..16
DIGIT_CLASSES = tuple(str(d) for d in range(10))


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


PLANE_GENERATORS: dict[str, Callable[..., tuple[np.ndarray, np.ndarray]]] = {
    "circle": _circle,
    "xor": _xor,
    "gaussian": _gaussian,
    "spiral": _spiral,
    "moons": _moons,
    "plane": _plane,
    "multi-gaussian": _multi_gaussian,
    "spiral3": _spiral3,
}
CLASS_NAMES: dict[str, list[str]] = {
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
    images, labels = load_digits()
    classes, counts = np.unique(labels, return_counts=True)
    quota = quotas(counts, n)
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


# image datasets: name -> (generator of (images, labels), class names)
IMAGE_SETS: dict[str, tuple[Callable[..., tuple[np.ndarray, np.ndarray]], tuple[str, ...]]] = {
    "glyphs": (_glyphs, GLYPH_CLASSES),
    "digits": (_digits, DIGIT_CLASSES),
}
