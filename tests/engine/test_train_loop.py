"""The run loop, Trainer.train: its pace (on a fake clock), the last report of a bounded run
(its update ratios and an evaluation at its last step), each step's own update at a slow pace, and
numbers that never grow stale after one slow evaluation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.trainer import Trainer
from tests.engine.configs import tanh_net

# ----------------------------------------------------------------------------- pace


class FakeClock:
    """Stands in for the `time` module inside engine.trainer: steps take no time, sleeps do."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def perf_counter(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_paced_training_never_runs_ahead_of_its_pace(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr("engine.trainer.time", clock)
    trainer = Trainer(tanh_net())
    seen: list[tuple[float, int]] = []  # (seconds since start, step) at every report
    start = clock.now
    trainer.train(300, on_report=lambda r: seen.append((clock.now - start, r.step)), pace=100.0)
    assert trainer.step == 300
    # 300 steps at 100 steps/s: the last one is due 2.99 s after the first
    assert clock.now - start == pytest.approx(2.99, abs=1e-9)
    assert len(seen) >= 60  # a report about every 1/30 s of (fake) time, and one at the end
    for elapsed, step in seen:
        assert step <= 100.0 * elapsed + 1 + 1e-9  # never ahead: step k+1 runs at k / pace


def test_paced_training_stops_while_it_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr("engine.trainer.time", clock)
    trainer = Trainer(tanh_net())
    # one step every 1,000 s: the first runs at once, then the trainer waits in slices
    # and notices the stop request within one of them
    stop_after = clock.now + 0.2
    reason = trainer.train(pace=0.001, should_stop=lambda: clock.now >= stop_after)
    assert reason == "stopped" and trainer.step == 1
    assert max(clock.slept) <= 0.05


@pytest.mark.parametrize("pace", [0.0, -5.0, math.nan, math.inf])
def test_pace_must_be_a_positive_finite_rate(pace: float) -> None:
    with pytest.raises(ValueError, match="pace"):
        Trainer(tanh_net()).train(1, pace=pace)


def update_ratios_by_hand(
    trainer: Trainer, before: dict[str, np.ndarray], after: dict[str, np.ndarray]
) -> list[float]:
    """||W_after - W_before|| / ||W_after|| over each layer's parameters (W and b)."""
    ratios = []
    for layer in trainer.network.layers:
        keys = [k for k in after if k.startswith(f"{layer.name}.")]
        delta = np.concatenate([(after[k] - before[k]).ravel() for k in keys]).astype(np.float64)
        weight = np.concatenate([after[k].ravel() for k in keys]).astype(np.float64)
        ratios.append(float(np.linalg.norm(delta) / np.linalg.norm(weight)))
    return ratios


@pytest.mark.parametrize("steps", [1, 10])
def test_a_bounded_run_reports_the_update_of_its_last_step(steps: int) -> None:
    # the page's +1 and +10 buttons: the final report carries every layer's update ratio
    twin = Trainer(tanh_net())  # same seed, same trajectory: the weights before the last step
    twin.train(steps - 1)
    trainer = Trainer(tanh_net())
    reports: list = []
    trainer.train(steps, on_report=reports.append)
    assert reports[-1].step == steps
    ratios = [layer["update_ratio"] for layer in reports[-1].layers]
    expected = update_ratios_by_hand(trainer, twin.get_weights(), trainer.get_weights())
    assert ratios == pytest.approx(expected, rel=1e-4)


def test_a_bounded_run_ends_with_an_evaluation_at_its_last_step() -> None:
    trainer = Trainer(tanh_net())
    reports: list = []
    trainer.train(500, on_report=reports.append)
    # right after an evaluation the time budget would skip the next one: +1 must still not
    # show the numbers of the step before
    trainer.train(1, on_report=reports.append)
    last = reports[-1]
    assert last.step == last.eval_step == 501
    truth = Trainer(tanh_net())
    truth.train(501)
    assert (last.loss, last.test_loss) == pytest.approx(
        (truth.evaluate()["loss"], truth.evaluate()["test_loss"]), rel=1e-6
    )


def test_a_slow_paced_run_reports_each_steps_own_update(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr("engine.trainer.time", clock)
    trainer = Trainer(tanh_net())
    reports: list = []
    weights: list[dict[str, np.ndarray]] = [trainer.get_weights()]

    def on_report(report: object) -> None:
        reports.append(report)
        weights.append(trainer.get_weights())

    trainer.train(5, on_report=on_report, pace=2.0)  # 2 steps/s: every step is reported
    assert [r.step for r in reports] == [1, 2, 3, 4, 5]
    for k, report in enumerate(reports):  # the update of its own step, not of the one before
        ratios = [layer["update_ratio"] for layer in report.layers]
        expected = update_ratios_by_hand(trainer, weights[k], weights[k + 1])
        assert ratios == pytest.approx(expected, rel=1e-4)


def test_one_slow_evaluation_does_not_leave_the_numbers_stale(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = FakeClock()
    monkeypatch.setattr("engine.trainer.time", clock)
    trainer = Trainer(tanh_net())
    evaluate = trainer.evaluate

    calls: list[int] = []

    def slow_once() -> dict:
        clock.now += 10.0 if not calls else 0.001  # a busy machine, once
        calls.append(trainer.step)
        return evaluate()

    monkeypatch.setattr(trainer, "evaluate", slow_once)
    trainer.train(5)
    assert trainer.report().eval_step == 5  # the first report evaluates: 10 s of (fake) time
    for k in range(1, 4):
        clock.now += 1.0  # a second later the numbers are re-evaluated, not 500 s later
        trainer.train(7)
        report = trainer.report()
        assert report.step == report.eval_step == 5 + 7 * k
    assert calls == [5, 12, 19, 26]
