"""Bounded in-memory metric history of one session, and the thinning rule shared with the store.

A run can last millions of steps, so the history keeps three parts of the stream of report rows:
the first `head` rows and the last `tail` rows at full rate, and the rows in between ("the middle")
at a stride that doubles whenever the middle would hold more than `middle` rows. Whether a row is
kept depends only on its sequence number (0, 1, 2... in append order) and on how many rows were
appended in total, so memory (`History`) and disk (`server.store.Store`) keep exactly the same rows.
Doubling the stride only ever drops rows, never needs one back, so thinning can be done lazily.

Events (clip, diverged, best, hyperparameters...) are kept the same way: the first `events_head`
and the last `events_tail`; a clip event that follows another clip event within `clip_merge_span`
steps is merged into it (fields "last_step" and "count").

All values are sanitised on the way in: non-finite floats become None and NumPy scalars become
plain Python numbers, so nothing returned here breaks a strict JSON encoder. Rows are kept as the
dicts they came as (and stored as JSON), so a column added later is None in older rows.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from math import isfinite
from typing import Any

import numpy as np

# Scalar columns of the /metrics answer, in API.md order ("epoch" is an extra). "eval_step" is
# the step loss/accuracy (train and test) were evaluated at, "time" the row's wall-clock time.
SCALAR_COLUMNS: tuple[str, ...] = (
    "step",
    "epoch",
    "loss",
    "test_loss",
    "accuracy",
    "test_accuracy",
    "batch_loss",
    "learning_rate",
    "max_grad_norm",
    "clip_count",
    "eval_step",
    "batch_size",
    "time",
)


def utc_stamp(seconds: float | None = None) -> str:
    """ISO 8601 UTC to the millisecond, e.g. "2026-12-03T07:18:13.123Z" (now, or `seconds`
    since the epoch): a row's and a metrics frame's wall-clock "time"."""
    moment = datetime.now(UTC) if seconds is None else datetime.fromtimestamp(seconds, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


# Per-layer columns always present in "layers" (API.md); other numeric scalars found are added.
LAYER_COLUMNS: tuple[str, ...] = (
    "grad_norm",
    "weight_norm",
    "update_ratio",
    "grad_mean_abs",
    "grad_max_abs",
    "activation_mean",
    "activation_std",
    "dead_fraction",
    "saturated_fraction",
)

# Keys of a layer dict that are labels, not stats.
_LAYER_LABELS = frozenset({"name", "type"})


@dataclass(frozen=True)
class ThinningPolicy:
    """How many rows and events a history keeps (see the module docstring)."""

    head: int = 1000  # first rows, full rate
    tail: int = 2000  # most recent rows, full rate
    middle: int = 2000  # at most this many rows in between (stride doubles)
    events_head: int = 500  # first events kept
    events_tail: int = 5000  # most recent events kept
    clip_merge_span: int = 1000  # a clip event within this many steps of the last one is merged

    def __post_init__(self) -> None:
        for field in ("head", "tail", "middle", "events_head", "events_tail"):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"ThinningPolicy.{field}: expected an integer >= 1, got {value!r}")
        span = self.clip_merge_span
        if not isinstance(span, int) or isinstance(span, bool) or span < 0:
            raise ValueError(
                f"ThinningPolicy.clip_merge_span: expected an integer >= 0, got {span!r}"
            )

    @property
    def max_rows(self) -> int:
        """The most rows a history ever holds."""
        return self.head + self.middle + self.tail

    @property
    def max_events(self) -> int:
        """The most events a history ever holds."""
        return self.events_head + self.events_tail


DEFAULT_POLICY = ThinningPolicy()


def middle_stride(total: int, policy: ThinningPolicy = DEFAULT_POLICY) -> int:
    """The power-of-two stride of the middle after `total` rows were appended."""
    span = total - policy.head - policy.tail  # rows in the middle before thinning
    stride = 1
    while span > 0 and -(-span // stride) > policy.middle:  # ceil(span / stride) rows kept
        stride *= 2
    return stride


def keep_row(seq: int, total: int, policy: ThinningPolicy = DEFAULT_POLICY) -> bool:
    """Whether row number `seq` (0-based append order) is kept after `total` appends."""
    if seq < 0 or seq >= total:
        return False
    if seq < policy.head or seq >= total - policy.tail:
        return True
    return (seq - policy.head) % middle_stride(total, policy) == 0


def thin_keep_mask(
    seqs: np.ndarray | Iterable[int], total: int, policy: ThinningPolicy = DEFAULT_POLICY
) -> np.ndarray:
    """Boolean mask over `seqs`: which rows survive thinning after `total` appends."""
    seq = np.asarray(list(seqs) if not isinstance(seqs, np.ndarray) else seqs, dtype=np.int64)
    stride = middle_stride(total, policy)
    in_range = (seq >= 0) & (seq < total)
    full_rate = (seq < policy.head) | (seq >= total - policy.tail)
    on_stride = (seq - policy.head) % stride == 0
    return in_range & (full_rate | on_stride)  # (len(seqs),)


def keep_event(seq: int, total: int, policy: ThinningPolicy = DEFAULT_POLICY) -> bool:
    """Whether event number `seq` is kept after `total` (unmerged) events."""
    return 0 <= seq < total and (seq < policy.events_head or seq >= total - policy.events_tail)


_PLAIN = frozenset({int, str, bool, type(None)})  # types stored as they are


def sanitize(value: Any) -> Any:
    """A copy of `value` as plain JSON data: non-finite floats -> None, NumPy -> Python."""
    kind = type(value)
    if kind is float:
        return value if isfinite(value) else None
    if kind in _PLAIN:
        return value
    if kind is dict:
        return _sanitize_dict(value)
    if kind is list or kind is tuple:
        return [sanitize(v) for v in value]
    if isinstance(value, float):  # float subclasses such as np.float64
        value = float(value)
        return value if isfinite(value) else None
    if isinstance(value, (bool, int, str)):  # subclasses (IntEnum, StrEnum...)
        return value
    if isinstance(value, dict):
        return _sanitize_dict(value)
    if isinstance(value, np.ndarray):
        return sanitize(value.tolist())
    if isinstance(value, np.generic):
        return sanitize(value.item())
    if isinstance(value, (list, tuple)):
        return [sanitize(v) for v in value]
    raise TypeError(f"cannot store a value of type {type(value).__name__}: {value!r}")


def _sanitize_dict(value: dict[Any, Any]) -> dict[str, Any]:
    """sanitize() of a dict, with the common scalar cases inline (it runs for every row)."""
    out: dict[str, Any] = {}
    for key, item in value.items():
        if type(key) is not str:
            key = str(key)
        kind = type(item)
        if kind is float:
            out[key] = item if isfinite(item) else None
        elif kind in _PLAIN:
            out[key] = item
        else:
            out[key] = sanitize(item)
    return out


def merge_clip_event(
    previous: dict[str, Any] | None, event: dict[str, Any], policy: ThinningPolicy = DEFAULT_POLICY
) -> dict[str, Any] | None:
    """`previous` with `event` folded in when both are clip events close in steps, else None.

    The merged event keeps the first event's fields (its "step" is where clipping started) and
    gains "last_step" (the latest merged step) and "count" (how many events were merged).
    """
    if previous is None or previous.get("type") != "clip" or event.get("type") != "clip":
        return None
    first_step = previous["step"]
    if not 0 <= event["step"] - first_step <= policy.clip_merge_span:
        return None
    merged = dict(previous)
    merged["last_step"] = event.get("last_step", event["step"])
    merged["count"] = int(previous.get("count", 1)) + int(event.get("count", 1))
    return merged


def check_event(event: dict[str, Any]) -> dict[str, Any]:
    """A sanitised copy of `event`; raises ValueError when it has no integer "step"."""
    if not isinstance(event, dict):
        raise ValueError(f"an event must be a dict, got {type(event).__name__}")
    step = event.get("step")
    if not isinstance(step, (int, np.integer)) or isinstance(step, bool):
        raise ValueError(f"an event needs an integer 'step', got {step!r}")
    clean = _sanitize_dict(event)
    clean["step"] = int(step)
    return clean


def check_row(row: dict[str, Any]) -> dict[str, Any]:
    """A sanitised copy of a report row; raises ValueError when it has no integer "step"."""
    if not isinstance(row, dict):
        raise ValueError(f"a metrics row must be a dict, got {type(row).__name__}")
    step = row.get("step")
    if type(step) is not int and (
        not isinstance(step, (int, np.integer)) or isinstance(step, bool)
    ):
        raise ValueError(f"a metrics row needs an integer 'step', got {step!r}")
    clean = _sanitize_dict(row)
    if type(step) is not int:
        clean["step"] = int(step)
    clean.pop("events", None)  # events are kept apart (add_event)
    return clean


class History:
    """Thinned report rows and bounded events of one session.

    Thread-safe: a training thread may append while the event loop reads columns().
    """

    def __init__(self, policy: ThinningPolicy | None = None) -> None:
        self.policy: ThinningPolicy = policy or DEFAULT_POLICY
        self.total: int = 0  # rows ever appended (the next row's sequence number)
        self.events_total: int = 0  # events ever stored, merged ones not counted
        self._head: list[dict[str, Any]] = []  # rows 0 .. head-1
        self._middle: list[tuple[int, dict[str, Any]]] = []  # (seq, row) on the current stride
        self._tail: deque[tuple[int, dict[str, Any]]] = deque()  # the last `tail` rows
        self._stride: int = 1  # current middle stride
        self._lock = threading.Lock()  # guards every container above
        self._events_head: list[dict[str, Any]] = []  # the first events
        self._events_tail: deque[dict[str, Any]] = deque(maxlen=self.policy.events_tail)

    # ---- rows -------------------------------------------------------------------------------

    def append(self, row: dict[str, Any]) -> None:
        """Add one report row (Report.to_dict(); its "events" are ignored). Amortised O(1)."""
        clean = check_row(row)
        head = self.policy.head
        with self._lock:
            seq = self.total
            self.total = seq + 1
            if seq < head:
                self._head.append(clean)
                return
            tail = self._tail
            tail.append((seq, clean))
            if len(tail) <= self.policy.tail:
                return
            item = tail.popleft()  # leaves the tail, enters the middle
            if (item[0] - head) % self._stride == 0:
                middle = self._middle
                middle.append(item)
                if len(middle) > self.policy.middle:
                    self._stride = stride = self._stride * 2
                    self._middle = [kept for kept in middle if (kept[0] - head) % stride == 0]

    def restore_rows(self, total: int, rows: Iterable[tuple[int, dict[str, Any]]]) -> None:
        """Rebuild from stored (seq, sanitised row) pairs after `total` appends (the store reads them)."""
        policy = self.policy
        with self._lock:
            self._head.clear()
            self._middle.clear()
            self._tail.clear()
            self.total = total
            self._stride = middle_stride(total, policy)
            for seq, row in sorted(rows, key=lambda item: item[0]):
                if not keep_row(seq, total, policy):
                    continue
                if seq < policy.head:
                    self._head.append(row)
                elif seq >= total - policy.tail:
                    self._tail.append((seq, row))
                else:
                    self._middle.append((seq, row))

    def restore_events(self, total: int, events: Iterable[tuple[int, dict[str, Any]]]) -> None:
        """Rebuild the events from stored (seq, event) pairs after `total` events."""
        with self._lock:
            self._events_head.clear()
            self._events_tail.clear()
            self.events_total = total
            for seq, event in sorted(events, key=lambda item: item[0]):
                if not keep_event(seq, total, self.policy):
                    continue
                if seq < self.policy.events_head:
                    self._events_head.append(event)
                else:
                    self._events_tail.append(event)

    def rows(self) -> list[dict[str, Any]]:
        """The kept rows, oldest first (the dicts themselves: do not modify them)."""
        with self._lock:
            return [
                *self._head,
                *(row for _, row in self._middle),
                *(row for _, row in self._tail),
            ]

    def seqs(self) -> list[int]:
        """The sequence numbers of the kept rows, aligned with rows()."""
        with self._lock:
            return [
                *range(len(self._head)),
                *(seq for seq, _ in self._middle),
                *(seq for seq, _ in self._tail),
            ]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.rows())

    def __len__(self) -> int:
        """The number of rows kept (not the number appended: see `total`)."""
        with self._lock:
            return len(self._head) + len(self._middle) + len(self._tail)

    def last(self) -> dict[str, Any] | None:
        """The latest row, or None when empty."""
        with self._lock:
            if self._tail:
                return self._tail[-1][1]
            return self._head[-1] if self._head else None

    # ---- events -----------------------------------------------------------------------------

    def add_event(self, event: dict[str, Any]) -> None:
        """Add one event (a dict with an integer "step"); consecutive clip events may merge."""
        clean = check_event(event)
        with self._lock:
            last_list: list[dict[str, Any]] | deque[dict[str, Any]] | None = None
            if self._events_tail:
                last_list = self._events_tail
            elif self._events_head:
                last_list = self._events_head
            if last_list is not None:
                merged = merge_clip_event(last_list[-1], clean, self.policy)
                if merged is not None:
                    last_list[-1] = merged
                    return
            if self.events_total < self.policy.events_head:
                self._events_head.append(clean)
            else:
                self._events_tail.append(clean)  # the deque drops the oldest beyond events_tail
            self.events_total += 1

    def events(self) -> list[dict[str, Any]]:
        """The kept events, oldest first."""
        with self._lock:
            return [*self._events_head, *self._events_tail]

    # ---- whole history ----------------------------------------------------------------------

    def clear(self) -> None:
        """Forget every row and event (after a reset)."""
        with self._lock:
            self.total = 0
            self.events_total = 0
            self._head.clear()
            self._middle.clear()
            self._tail.clear()
            self._stride = 1
            self._events_head.clear()
            self._events_tail.clear()

    def columns(
        self,
        since: int | None = None,
        limit: int | None = None,
        max_points: int | None = None,
        tail: bool = False,
        every: int | None = None,
    ) -> dict[str, Any]:
        """The /metrics answer of API.md: one list per column, aligned with "step".

        since: only rows (and events) with step > since. every: only rows whose step is a
        multiple of `every`. limit: at most the first `limit` of those rows (page forward with
        since = the last step received), or with `tail` the last `limit` (still oldest first).
        max_points: then down-sample evenly to at most this many rows, keeping the first and the
        last. Events come for the steps the rows cover: after `since` (with `tail`, after the
        last row left out) and, when rows were left out at the end, up to the last row.
        "layers" maps a layer name to its stat columns; a layer missing from a row gets None.
        """
        if limit is not None and limit < 0:
            raise ValueError(f"limit: expected an integer >= 0, got {limit}")
        if max_points is not None and max_points < 1:
            raise ValueError(f"max_points: expected an integer >= 1, got {max_points}")
        if every is not None and every < 1:
            raise ValueError(f"every: expected an integer >= 1, got {every}")
        rows = self.rows()
        if since is not None:
            rows = [row for row in rows if row["step"] > since]
        if every is not None:
            rows = [row for row in rows if row["step"] % every == 0]
        after, upto = since, None  # the steps whose events come with the rows
        if limit is not None and len(rows) > limit:
            if tail:
                cut = len(rows) - limit
                after, rows = rows[cut - 1]["step"], rows[cut:]
            else:
                rows = rows[:limit]
                upto = rows[-1]["step"] if rows else since
        if max_points is not None:
            rows = downsample(rows, max_points)
        result: dict[str, Any] = {key: [row.get(key) for row in rows] for key in SCALAR_COLUMNS}
        result["layers"] = _layer_columns(rows)
        scalars = _scalar_columns(rows)
        if scalars:  # an external session's own scalars (watcher.log(seen=...)), by name
            result["scalars"] = scalars
        events = self.events()
        if after is not None:
            events = [event for event in events if event["step"] > after]
        if upto is not None:
            events = [event for event in events if event["step"] <= upto]
        result["events"] = [dict(event) for event in events]
        return result


def downsample(items: list[Any], max_points: int) -> list[Any]:
    """At most `max_points` items picked evenly, always keeping the first and the last."""
    n = len(items)
    if n <= max_points:
        return list(items)
    if max_points == 1:
        return [items[-1]]
    return [
        items[(i * (n - 1) + (max_points - 1) // 2) // (max_points - 1)] for i in range(max_points)
    ]


def _scalar_columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """{"<name>": [...]} of the rows' "scalars" dicts, aligned with `rows` (None where absent)."""
    names: dict[str, None] = {}
    for row in rows:
        for name in row.get("scalars") or ():
            names[name] = None
    return {name: [(row.get("scalars") or {}).get(name) for row in rows] for name in names}


def _layer_columns(rows: list[dict[str, Any]]) -> dict[str, dict[str, list[Any]]]:
    """{"<layer>": {"<stat>": [...]}} aligned with `rows`; missing layer or stat -> None."""
    names: dict[str, set[str]] = {}  # layer name -> numeric stat keys seen (insertion ordered)
    per_row: list[dict[str, dict[str, Any]]] = []
    for row in rows:
        by_name: dict[str, dict[str, Any]] = {}
        for layer in row.get("layers") or ():
            name = str(layer.get("name"))
            by_name[name] = layer
            keys = names.setdefault(name, set())
            for key, value in layer.items():
                if key in _LAYER_LABELS or isinstance(value, bool):
                    continue
                if value is None or isinstance(value, (int, float)):
                    keys.add(key)
        per_row.append(by_name)
    result: dict[str, dict[str, list[Any]]] = {}
    for name, seen in names.items():
        extra = sorted(seen.difference(LAYER_COLUMNS))
        columns: dict[str, list[Any]] = {}
        for key in (*LAYER_COLUMNS, *extra):
            column: list[Any] = []
            for by_name in per_row:
                layer = by_name.get(name)
                value = None if layer is None else layer.get(key)
                column.append(value if isinstance(value, (int, float)) else None)
            columns[key] = column
        result[name] = columns
    return result
