"""Seeded splits and subsets that keep each class's share: train/test splits, digit subsets."""

from __future__ import annotations

import math

import numpy as np


def _test_count(n: int, fraction: float) -> int:
    """round(n * fraction), leaving at least one training sample."""
    return min(int(math.floor(n * fraction + 0.5)), n - 1)


def quotas(counts: np.ndarray, total: int) -> np.ndarray:
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
    quota = quotas(counts, n_test)
    train_parts, test_parts = [], []
    for cls, q in zip(classes, quota, strict=True):
        members = rng.permutation(np.flatnonzero(labels == cls))
        test_parts.append(members[:q])
        train_parts.append(members[q:])
    train = rng.permutation(np.concatenate(train_parts))
    test = rng.permutation(np.concatenate(test_parts))
    return train, test
