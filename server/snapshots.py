"""Streamed snapshots: how fine their grids are and how often a training session sends one.

A snapshot (weights, gradients, node values, decision grids, histograms) is the largest frame
the WebSocket carries. It is built in the training thread, so its cost comes out of training,
and sent to every client, so its size is multiplied by the viewers: both set the pace.
"""

from __future__ import annotations

import math
from typing import Any

from engine.introspect import class_map_count

SNAPSHOT_INTERVAL = 0.2  # seconds between snapshots while somebody watches (5/s at most,
# fewer when they are costly to build or, with many clients, to send)
SNAPSHOT_BUDGET = 0.03  # snapshots may take at most this share of the training thread
# snapshot bytes sent per second to all clients together: one client gets 5/s of any Playground
# -sized net; 20 clients of 2-8-8-1 get ~0.5-1/s each, of 2-64-64-64-1 ~0.5/s. The earlier
# bench/stream.py (connect/disconnect rounds) gave 2-8-8-1 (c)/(b) 0.84-0.94 at 10 MB/s and
# 0.86-0.97 at 4 MB/s, a difference within its noise (its A/A runs gave 0.92-0.97)
SNAPSHOT_BYTES_PER_SECOND = 4e6
SNAPSHOT_GRID_VALUES = 32_000  # values in a streamed snapshot's grids (output, inputs, neurons)
SNAPSHOT_GRID_RANGE = (12, 40)  # resolution of a streamed snapshot's grid, coarsest to finest


def snapshot_grid_resolution(doc: dict[str, Any]) -> int:
    """The grid resolution of streamed snapshots: 40 x 40 for Playground-sized networks, coarser
    for wide ones so a snapshot holds about SNAPSHOT_GRID_VALUES grid values (each hidden dense
    unit, each input feature, the output and each class of a multi-class output has its own
    grid). GET /boundary stays exact."""
    layers = doc.get("layers") or []
    hidden = sum(
        int(layer.get("units") or 0) for layer in layers[:-1] if layer.get("type") == "dense"
    )
    outputs = int(layers[-1].get("units") or 1) if layers else 1
    maps = hidden + len(doc.get("features") or ()) + 1 + class_map_count(outputs)
    low, high = SNAPSHOT_GRID_RANGE
    return max(low, min(high, math.isqrt(SNAPSHOT_GRID_VALUES // max(maps, 1))))


def snapshot_wait(cost: float, size: int, viewers: int) -> float:
    """Seconds until the next snapshot, after one that took `cost` seconds to build and
    encoded to `size` bytes for `viewers` clients: at least SNAPSHOT_INTERVAL, and long enough
    to keep within SNAPSHOT_BUDGET of the training thread and SNAPSHOT_BYTES_PER_SECOND."""
    sending = size * viewers / SNAPSHOT_BYTES_PER_SECOND
    return max(SNAPSHOT_INTERVAL, cost / SNAPSHOT_BUDGET, sending)
