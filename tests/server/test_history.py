"""The bounded metric history: thinning, events, and the /metrics column answer."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta

import numpy as np
import pytest

from server.history import (
    LAYER_COLUMNS,
    SCALAR_COLUMNS,
    History,
    ThinningPolicy,
    downsample,
    keep_row,
    middle_stride,
    sanitize,
    thin_keep_mask,
    utc_stamp,
)

SMALL = ThinningPolicy(head=3, tail=4, middle=5, events_head=2, events_tail=3, clip_merge_span=10)


def row(step: int, **extra: object) -> dict[str, object]:
    """A minimal report row."""
    return {"step": step, "epoch": step // 10, "loss": 1.0 / (step + 1), **extra}


def test_million_appends_stay_bounded_and_follow_the_pure_rule() -> None:
    policy = ThinningPolicy()
    history = History(policy)
    total = 1_000_000
    for step in range(total):
        history.append({"step": step})
    assert history.total == total
    assert len(history) <= policy.max_rows
    steps = [r["step"] for r in history.rows()]
    assert steps[0] == 0 and steps[-1] == total - 1
    assert steps[: policy.head] == list(range(policy.head))  # head at full rate
    assert steps[-policy.tail :] == list(range(total - policy.tail, total))  # tail at full rate
    middle = steps[policy.head : -policy.tail]
    assert 0 < len(middle) <= policy.middle
    gaps = set(np.diff(middle).tolist())
    assert gaps == {middle_stride(total, policy)}  # strictly increasing, one stride
    assert middle[0] == policy.head
    expected = np.flatnonzero(thin_keep_mask(np.arange(total), total, policy))
    assert steps == expected.tolist()  # memory keeps exactly what the store keeps


def test_incremental_thinning_matches_the_pure_rule_at_every_length() -> None:
    history = History(SMALL)
    for total in range(1, 400):
        history.append(row(total - 1))
        kept = [seq for seq in range(total) if keep_row(seq, total, SMALL)]
        assert history.seqs() == kept, total
        assert [r["step"] for r in history.rows()] == kept
        assert len(history) <= SMALL.max_rows
        rebuilt = History(SMALL)
        rebuilt.restore_rows(total, ((seq, row(seq)) for seq in range(total)))
        assert rebuilt.seqs() == kept


def test_short_history_keeps_everything() -> None:
    history = History()
    for step in range(0, 3000, 1):
        history.append(row(step))
    assert len(history) == 3000
    assert middle_stride(3000) == 1


def test_last_len_clear() -> None:
    history = History(SMALL)
    assert history.last() is None and len(history) == 0
    history.append(row(0))
    assert history.last()["step"] == 0
    for step in range(1, 50):
        history.append(row(step))
    assert history.last()["step"] == 49
    history.add_event({"type": "best", "step": 3})
    history.clear()
    assert len(history) == 0 and history.total == 0 and history.last() is None
    assert history.events() == []
    history.append(row(0))
    assert history.seqs() == [0]


def test_rows_are_sanitised_and_events_removed() -> None:
    history = History()
    history.append(
        {
            "step": np.int64(5),
            "loss": float("nan"),
            "test_loss": float("inf"),
            "accuracy": np.float32(0.5),
            "layers": [{"name": "0", "grad_norm": np.float64("-inf"), "batch_mean": np.ones(2)}],
            "events": [{"type": "clip", "step": 5}],
        }
    )
    stored = history.last()
    assert stored["step"] == 5 and type(stored["step"]) is int
    assert stored["loss"] is None and stored["test_loss"] is None
    assert stored["accuracy"] == 0.5 and type(stored["accuracy"]) is float
    assert stored["layers"][0]["grad_norm"] is None
    assert stored["layers"][0]["batch_mean"] == [1.0, 1.0]
    assert "events" not in stored
    json.dumps(history.columns(), allow_nan=False)  # strict JSON encodes it


def test_sanitize_and_bad_input() -> None:
    assert sanitize({1: (np.nan, np.int32(3), True, None)}) == {"1": [None, 3, True, None]}
    with pytest.raises(TypeError, match="object"):
        sanitize(object())
    history = History()
    with pytest.raises(ValueError, match="integer 'step'"):
        history.append({"loss": 1.0})
    with pytest.raises(ValueError, match="integer 'step'"):
        history.append({"step": 1.5})
    with pytest.raises(ValueError, match="integer 'step'"):
        history.add_event({"type": "best"})


def test_policy_validation() -> None:
    with pytest.raises(ValueError, match="head: expected an integer >= 1, got 0"):
        ThinningPolicy(head=0)
    with pytest.raises(ValueError, match="clip_merge_span"):
        ThinningPolicy(clip_merge_span=-1)


def layer(name: str, **stats: object) -> dict[str, object]:
    """A per-layer stats dict."""
    return {"name": name, "type": "dense", "clipped": False, **stats}


def test_columns_align_layers_with_steps() -> None:
    history = History()
    history.append(row(0, layers=[layer("0", grad_norm=1.0), layer("1", grad_norm=2.0)]))
    history.append(row(1, layers=[layer("0", grad_norm=1.5, max_grad_norm=3.0)]))
    history.append(row(2))  # no layers at all
    history.append(row(3, layers=[layer("1", grad_norm=float("nan"), dead_fraction=0.25)]))
    columns = history.columns()
    assert set(SCALAR_COLUMNS) <= set(columns)
    assert columns["step"] == [0, 1, 2, 3]
    assert columns["loss"] == [1.0, 0.5, 1 / 3, 0.25]
    assert columns["accuracy"] == [None, None, None, None]  # missing key -> None
    assert list(columns["layers"]) == ["0", "1"]
    zero = columns["layers"]["0"]
    one = columns["layers"]["1"]
    assert set(LAYER_COLUMNS) <= set(zero)
    assert "clipped" not in zero and "name" not in zero and "type" not in zero
    assert zero["grad_norm"] == [1.0, 1.5, None, None]
    assert zero["max_grad_norm"] == [None, 3.0, None, None]
    assert one["grad_norm"] == [2.0, None, None, None]
    assert one["dead_fraction"] == [None, None, None, 0.25]
    for stats in columns["layers"].values():
        for values in stats.values():
            assert len(values) == len(columns["step"])
    assert columns["events"] == []


def test_columns_since_limit_max_points() -> None:
    history = History()
    for step in range(0, 100, 2):  # steps 0, 2, ..., 98
        history.append(row(step))
    history.add_event({"type": "best", "step": 10})
    history.add_event({"type": "hyperparameters", "step": 50, "changes": {}})
    history.add_event({"type": "diverged", "step": 99})

    since = history.columns(since=49)
    assert since["step"] == list(range(50, 100, 2))
    assert [e["step"] for e in since["events"]] == [50, 99]

    page = history.columns(since=9, limit=3)
    assert page["step"] == [10, 12, 14]
    assert [e["step"] for e in page["events"]] == [10]  # only events up to the page's last step
    assert history.columns(limit=0)["step"] == []

    thin = history.columns(max_points=7)
    assert len(thin["step"]) == 7
    assert thin["step"][0] == 0 and thin["step"][-1] == 98
    assert thin["step"] == sorted(set(thin["step"]))
    assert len(thin["events"]) == 3
    assert history.columns(max_points=1000)["step"] == list(range(0, 100, 2))
    assert history.columns(since=1000)["step"] == []
    with pytest.raises(ValueError, match="max_points"):
        history.columns(max_points=0)
    with pytest.raises(ValueError, match="limit"):
        history.columns(limit=-1)


def test_columns_tail_every_and_their_events() -> None:
    history = History()
    for step in range(1, 101):  # steps 1..100
        history.append(row(step))
    for step in (5, 60, 95, 100):
        history.add_event({"type": "best", "step": step})

    latest = history.columns(limit=3, tail=True)
    assert latest["step"] == [98, 99, 100]  # the latest three, oldest first
    assert [e["step"] for e in latest["events"]] == [100]  # those after the row left out (97)
    assert history.columns(limit=3, tail=False)["step"] == [1, 2, 3]
    assert history.columns(limit=500, tail=True)["step"] == list(range(1, 101))
    assert history.columns(limit=0, tail=True)["step"] == []

    tens = history.columns(every=10)
    assert tens["step"] == list(range(10, 101, 10))
    assert [e["step"] for e in tens["events"]] == [5, 60, 95, 100]
    assert history.columns(every=10, since=50, limit=2)["step"] == [60, 70]
    assert [e["step"] for e in history.columns(every=10, since=50, limit=2)["events"]] == [60]
    tail_tens = history.columns(every=10, limit=2, tail=True)
    assert tail_tens["step"] == [90, 100]
    assert [e["step"] for e in tail_tens["events"]] == [95, 100]  # after 80, the row left out
    assert history.columns(every=7, since=90)["step"] == [91, 98]
    assert history.columns(every=1)["step"] == list(range(1, 101))
    with pytest.raises(ValueError, match="every: expected an integer >= 1, got 0"):
        history.columns(every=0)


def test_new_columns_come_from_the_rows_and_are_none_in_older_rows() -> None:
    history = History()
    history.append(row(1))  # a row stored before these columns existed
    history.append(
        row(2, eval_step=2, batch_size=16, time="2026-12-03T07:18:13.123Z", steps_per_second=9.0)
    )
    columns = history.columns()
    assert columns["eval_step"] == [None, 2]
    assert columns["batch_size"] == [None, 16]
    assert columns["time"] == [None, "2026-12-03T07:18:13.123Z"]
    assert "steps_per_second" not in columns  # a row's other keys are not columns


def test_utc_stamp_is_iso_8601_utc_to_the_millisecond() -> None:
    assert utc_stamp(1_796_282_293.1239) == "2026-12-03T07:18:13.123Z"
    assert utc_stamp(0.0) == "1970-01-01T00:00:00.000Z"
    now = utc_stamp()
    parsed = datetime.fromisoformat(now.replace("Z", "+00:00"))
    assert parsed.utcoffset() == timedelta(0) and now.endswith("Z") and len(now) == 24


def test_downsample_is_even_and_keeps_ends() -> None:
    items = list(range(101))
    assert downsample(items, 5) == [0, 25, 50, 75, 100]
    assert downsample(items, 2) == [0, 100]
    assert downsample(items, 1) == [100]
    assert downsample(items, 200) == items
    picked = downsample(list(range(4949)), 2000)
    assert len(picked) == 2000 == len(set(picked))
    assert picked[0] == 0 and picked[-1] == 4948
    assert max(np.diff(picked)) - min(np.diff(picked)) <= 1


def test_events_are_bounded_first_and_last() -> None:
    history = History(SMALL)
    for step in range(20):
        history.add_event({"type": "best", "step": step, "message": f"best at {step}"})
    steps = [e["step"] for e in history.events()]
    assert steps == [0, 1, 17, 18, 19]
    assert history.events_total == 20


def test_clip_events_merge_within_span() -> None:
    history = History(SMALL)
    history.add_event({"type": "clip", "step": 0, "message": "clipped"})
    history.add_event({"type": "clip", "step": 4})
    history.add_event({"type": "clip", "step": 10, "count": 2})
    history.add_event({"type": "clip", "step": 11})  # 11 steps after the first: new event
    history.add_event({"type": "best", "step": 12})
    history.add_event({"type": "clip", "step": 13})  # not merged across another event
    events = history.events()
    assert events[0] == {
        "type": "clip",
        "step": 0,
        "message": "clipped",
        "last_step": 10,
        "count": 4,
    }
    assert [(e["type"], e["step"]) for e in events[1:]] == [
        ("clip", 11),
        ("best", 12),
        ("clip", 13),
    ]
    assert history.events_total == 4


def test_default_policy_event_bound() -> None:
    history = History()
    for step in range(10_000):
        history.add_event({"type": "best", "step": step, "loss": math.nan})
    events = history.events()
    assert len(events) == 500 + 5000
    assert events[0]["step"] == 0 and events[-1]["step"] == 9999
    assert events[0]["loss"] is None
