"""watch(every=None): the logged steps follow the adaptive rule of backprop_lens/torch.py.

The watcher times steps with time.perf_counter; here that clock is a fake one the test moves: by
a known plain-step time in the training loop and by a known statistics cost inside the logged
steps' own work (LayerStats.before_step in the pre-hook, after_step in the post-hook). So the
watcher's measurements are exact and the logged steps are values: step 1, step 3 (step 2 is the
plain step that measures a step without statistics), then every ceil(interval) steps, with
interval = max(cost / (BUDGET * plain), 1 / (MAX_LOGS_PER_SECOND * plain), 1).

The times are chosen so the interval is never a whole number: a measured time is a difference of
two float clock readings, and an interval of exactly 10.0 could come out as 10.000000000000002
(ceil 11), which says nothing about the rule."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import backprop_lens.torch as watch_module  # noqa: E402
from backprop_lens._torch_stats import LayerStats  # noqa: E402
from backprop_lens.torch import watch  # noqa: E402
from tests.support import LiveServer  # noqa: E402


class FakeClock:
    """Stands for the `time` module inside backprop_lens.torch: perf_counter reads `now`, which
    only the test moves. sleep is real (only a paused run sleeps, and none is paused here)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def perf_counter(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    @staticmethod
    def sleep(seconds: float) -> None:
        time.sleep(seconds)

    monotonic = staticmethod(time.monotonic)  # the pause loop's clock: real


def logged_steps(
    server: LiveServer,
    monkeypatch: pytest.MonkeyPatch,
    *,
    plain: float,
    pre_cost: float,
    post_cost: float,
    steps: int,
) -> list[int]:
    """Train a tiny model `steps` steps with every=None, each step taking `plain` seconds of the
    fake clock and each logged step `pre_cost` + `post_cost` more in its statistics; the steps
    the server received."""
    clock = FakeClock()
    monkeypatch.setattr(watch_module, "time", clock)
    before_step, after_step = LayerStats.before_step, LayerStats.after_step

    def slow_before_step(self: LayerStats, histograms: bool = True) -> None:
        before_step(self, histograms)
        clock.advance(pre_cost)

    def slow_after_step(self: LayerStats) -> list[dict[str, Any]] | None:
        clock.advance(post_cost)
        return after_step(self)

    monkeypatch.setattr(LayerStats, "before_step", slow_before_step)
    monkeypatch.setattr(LayerStats, "after_step", slow_after_step)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    x, y = torch.randn(8, 4), torch.randint(0, 2, (8,))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with watch(model, optimizer, url=server.url, every=None) as watcher:
        assert watcher.every is None
        for _ in range(steps):
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            clock.advance(plain)  # the step's own work, between two optimizer steps
            optimizer.step()
            watcher.log(loss=loss)
    assert watcher.step == steps
    assert watcher.dropped == 0
    answer = httpx.get(
        f"{server.url}/api/sessions/{watcher.session_id}/metrics", headers=server.headers()
    )
    answer.raise_for_status()
    return answer.json()["step"]


def test_the_budget_sets_the_interval(server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Plain step 10 ms, statistics 2.2 ms (1 ms before the step, 1.2 ms after): the budget's
    interval 0.0022 / (0.03 * 0.010) = 7.33 beats the rate cap's 1 / (30 * 0.010) = 3.33, so
    every 8th step is logged."""
    got = logged_steps(server, monkeypatch, plain=0.010, pre_cost=0.001, post_cost=0.0012, steps=45)
    assert got == [1, 3, 11, 19, 27, 35, 43]


def test_a_larger_cost_logs_less_often(server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Plain step 10 ms, statistics 2.9 ms: 0.0029 / (0.03 * 0.010) = 9.67, every 10th step."""
    got = logged_steps(server, monkeypatch, plain=0.010, pre_cost=0.0, post_cost=0.0029, steps=45)
    assert got == [1, 3, 13, 23, 33, 43]


def test_a_slow_step_logs_every_step(server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Plain step 1 s, statistics 3 ms: 0.003 / (0.03 * 1) = 0.1 and 1 / 30 both under 1, so
    after the measuring step 2 every step is logged."""
    got = logged_steps(server, monkeypatch, plain=1.0, pre_cost=0.001, post_cost=0.002, steps=8)
    assert got == [1, 3, 4, 5, 6, 7, 8]


def test_a_fast_step_is_capped_by_the_page_rate(
    server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Plain step 1 ms, statistics 0.1 ms: the budget alone would log every
    0.0001 / (0.03 * 0.001) = 3.33 steps, but 30 logs a second at 1000 steps a second means
    every 1 / (30 * 0.001) = 33.3, so every 34th step."""
    got = logged_steps(
        server, monkeypatch, plain=0.001, pre_cost=0.00004, post_cost=0.00006, steps=110
    )
    assert got == [1, 3, 37, 71, 105]


def test_a_refused_watcher_stops_measuring_and_logs_rarely(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wrong token: the server refuses the connection, the sender gives up for good, and from
    then on no step computes statistics (nobody would see them) and every=None plans the next
    logged step MAX_EVERY steps ahead; training itself goes on."""
    measured = []
    before_step = LayerStats.before_step

    def counting_before_step(self: LayerStats, histograms: bool = True) -> None:
        measured.append(histograms)
        before_step(self, histograms)

    monkeypatch.setattr(LayerStats, "before_step", counting_before_step)
    live = LiveServer(tmp_path / "data", token="the-right-token-1234").start()
    try:
        torch.manual_seed(0)
        model = nn.Linear(3, 2)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        x, y = torch.randn(4, 3), torch.randn(4, 2)
        with watch(model, optimizer, url=live.url, token="a-wrong-token-123456") as watcher:
            sender = watcher._sender
            assert sender is not None
            for _ in range(500):
                if sender.gave_up is not None:
                    break
                time.sleep(0.01)
            assert sender.gave_up is not None and "4401" in sender.gave_up
            assert "pass token=... to watch()" in sender.gave_up  # the script's way, not a URL
            for _ in range(30):
                optimizer.zero_grad()
                nn.functional.mse_loss(model(x), y).backward()
                optimizer.step()
                watcher.log(loss=0.0)
        assert measured == []
        assert watcher.step == 30
        assert watcher._next_log == 1 + watch_module.MAX_EVERY  # planned at step 1, the first
        assert (
            httpx.get(live.url + "/api/sessions", headers=live.headers()).json()["sessions"] == []
        )
    finally:
        live.stop()
