"""Reports by step as well as by time (engine.recorder.record_interval, Trainer.train's
`record_every`), the batch size a report carries, and Trainer.scores (POST .../evaluate).

The clock is faked (steps take no time) so that no report is due by time: every report these
tests see is one by step or the last one of the run."""

from __future__ import annotations

import numpy as np
import pytest

from engine.recorder import RECORD_ROWS, record_interval
from engine.trainer import Trainer
from tests.engine.configs import tanh_net
from tests.engine.test_train_loop import FakeClock, update_ratios_by_hand


@pytest.mark.parametrize(
    ("steps", "every"),
    [
        (1, 1),
        (500, 1),
        (501, 2),
        (1000, 2),
        (1001, 5),
        (2500, 5),
        (2501, 10),
        (5000, 10),
        (5001, 20),
        (1_000_000, 2000),
        (1_000_001, 5000),
    ],
)
def test_record_interval_is_the_smallest_round_number_giving_at_most_500_rows(
    steps: int, every: int
) -> None:
    assert RECORD_ROWS == 500
    assert record_interval(steps) == every


@pytest.mark.parametrize("steps", [0, -3])
def test_record_interval_needs_a_step(steps: int) -> None:
    with pytest.raises(ValueError, match="steps"):
        record_interval(steps)


def test_a_run_reports_at_every_multiple_of_record_every_and_at_its_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("engine.trainer.time", FakeClock())
    trainer = Trainer(tanh_net())
    trainer.train(3)  # the interval counts the run's steps, not the call's
    reports: list = []
    weights: dict[int, dict[str, np.ndarray]] = {}

    def on_report(report: object) -> None:
        reports.append(report)
        weights[trainer.step] = trainer.get_weights()

    assert trainer.train(100, on_report=on_report, record_every=20) == "steps"
    assert [r.step for r in reports] == [20, 40, 60, 80, 100, 103]
    # each report by step shows the update of its own step: measured one step ahead
    twin = Trainer(tanh_net())
    twin.train(59)
    ratios = [layer["update_ratio"] for layer in reports[2].layers]
    assert ratios == pytest.approx(
        update_ratios_by_hand(trainer, twin.get_weights(), weights[60]), rel=1e-4
    )
    # the batch loss of a report is the mean over the steps since the previous one
    twin = Trainer(tanh_net())
    twin.train(80)
    losses = [twin.train_step().loss for _ in range(20)]
    assert reports[4].batch_loss == pytest.approx(float(np.mean(losses)), rel=1e-9)
    assert reports[-1].eval_step == 103  # the end is evaluated exactly, whatever the budget


def test_without_record_every_a_run_that_takes_no_time_reports_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("engine.trainer.time", FakeClock())
    reports: list = []
    Trainer(tanh_net()).train(100, on_report=reports.append)
    assert [r.step for r in reports] == [100]


@pytest.mark.parametrize("every", [0, -1])
def test_record_every_must_be_positive(every: int) -> None:
    with pytest.raises(ValueError, match="record_every"):
        Trainer(tanh_net()).train(5, on_report=lambda r: None, record_every=every)


def test_a_report_carries_the_batch_size_of_its_steps() -> None:
    trainer = Trainer(tanh_net(batch_size=16))
    trainer.train_step()
    assert trainer.report().batch_size == 16
    assert trainer.report().to_dict()["batch_size"] == 16
    trainer.update_hyperparameters({"batch_size": 4})
    assert trainer.report().batch_size == 4
    # at most the training set: 350 of the 500 samples train (test_fraction 0.3)
    trainer.update_hyperparameters({"batch_size": 1000})
    assert len(trainer.x_train) == 350
    assert trainer.report().batch_size == 350


def test_scores_are_the_evaluation_at_the_current_step_and_change_nothing() -> None:
    trainer = Trainer(tanh_net())
    trainer.train(37)
    before = trainer.get_weights()
    both = trainer.scores()
    truth = Trainer(tanh_net())
    truth.train(37)
    ev = truth.evaluate()
    assert both == {
        "step": 37,
        "train": {"loss": ev["loss"], "accuracy": ev["accuracy"]},
        "test": {"loss": ev["test_loss"], "accuracy": ev["test_accuracy"]},
    }
    assert trainer.scores("train") == {"step": 37, "train": both["train"], "test": None}
    assert trainer.scores("test") == {"step": 37, "train": None, "test": both["test"]}
    after = trainer.get_weights()
    assert all(np.array_equal(before[k], after[k]) for k in before)
    # scoring does not move the run: its next steps are the twin's
    trainer.train(5)
    truth.train(5)
    assert trainer.scores() == truth.scores()
    # "both" is the evaluation the next report shows
    assert trainer.report().eval_step == 42


def test_scores_of_a_regression_have_no_accuracy() -> None:
    config = tanh_net("sine", features=["x1"])
    config["layers"][-1]["activation"] = "linear"
    trainer = Trainer(config)
    trainer.train(10)
    scores = trainer.scores()
    assert scores["train"]["accuracy"] is None and scores["test"]["accuracy"] is None
    assert scores["test"]["loss"] == trainer.evaluate()["test_loss"]


def test_scores_names_an_unknown_split() -> None:
    with pytest.raises(ValueError, match="split: expected one of train, test, both, got 'all'"):
        Trainer(tanh_net()).scores("all")
