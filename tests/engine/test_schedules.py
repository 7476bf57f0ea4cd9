"""Learning-rate schedules (engine/optim.py's learning_rate_at): by hand, then against
torch.optim.lr_scheduler when torch is importable."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from engine.optim import learning_rate_at


def schedule(kind: str, **overrides: object) -> SimpleNamespace:
    """A ScheduleConfig stand-in with the contract's defaults."""
    fields = {"kind": kind, "step_size": 1000, "gamma": 0.5, "total_steps": 10000, "min_lr": 0.0}
    fields.update(overrides)
    return SimpleNamespace(**fields)


def test_constant_schedule() -> None:
    assert learning_rate_at(schedule("constant"), 0.2, 0) == 0.2
    assert learning_rate_at(schedule("constant"), 0.2, 10**6) == 0.2
    assert learning_rate_at(None, 0.2, 5) == 0.2


def test_step_schedule() -> None:
    s = schedule("step", step_size=3, gamma=0.5)
    got = [learning_rate_at(s, 0.2, step) for step in (0, 2, 3, 5, 6, 9)]
    assert got == [0.2, 0.2, 0.1, 0.1, 0.05, 0.025]


def test_exponential_schedule() -> None:
    s = schedule("exponential", gamma=0.9)
    assert learning_rate_at(s, 0.2, 0) == 0.2
    assert learning_rate_at(s, 0.2, 2) == pytest.approx(0.162, rel=1e-15)
    assert learning_rate_at(s, 0.2, 10**6) == 0.0
    assert learning_rate_at(schedule("exponential", gamma=2.0), 0.1, 10**6) == math.inf


def test_cosine_schedule() -> None:
    s = schedule("cosine", total_steps=4, min_lr=0.1)
    assert learning_rate_at(s, 1.0, 0) == 1.0
    assert learning_rate_at(s, 1.0, 1) == pytest.approx(0.8681980515339464, rel=1e-15)
    assert learning_rate_at(s, 1.0, 2) == pytest.approx(0.55, rel=1e-15)  # 0.1 + 0.9 / 2
    assert learning_rate_at(s, 1.0, 4) == pytest.approx(0.1, rel=1e-15)
    assert learning_rate_at(s, 1.0, 50) == pytest.approx(0.1, rel=1e-15)  # stays at min_lr


def test_schedules_of_one_step_are_allowed() -> None:
    assert learning_rate_at(schedule("step", step_size=1, gamma=0.5), 0.8, 3) == 0.1
    cosine = schedule("cosine", total_steps=1, min_lr=0.1)
    assert [learning_rate_at(cosine, 1.0, step) for step in (0, 1, 2)] == [1.0, 0.1, 0.1]


def test_bad_schedules() -> None:
    with pytest.raises(ValueError, match="expected one of"):
        learning_rate_at(schedule("linear"), 0.1, 1)
    with pytest.raises(ValueError, match="step >= 0"):
        learning_rate_at(schedule("cosine"), 0.1, -1)


# ---------------------------------------------------------------------------------------------
# Against torch (skipped when torch is not installed)
# ---------------------------------------------------------------------------------------------


def test_schedules_match_torch() -> None:
    torch = pytest.importorskip("torch")
    cases = [
        (schedule("step", step_size=3, gamma=0.7), {"StepLR": {"step_size": 3, "gamma": 0.7}}),
        (schedule("exponential", gamma=0.9), {"ExponentialLR": {"gamma": 0.9}}),
        (
            schedule("cosine", total_steps=12, min_lr=0.01),
            {"CosineAnnealingLR": {"T_max": 12, "eta_min": 0.01}},
        ),
    ]
    for sched, spec in cases:
        ((cls_name, kwargs),) = spec.items()
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.3)
        scheduler = getattr(torch.optim.lr_scheduler, cls_name)(opt, **kwargs)
        for step in range(13):
            expected = opt.param_groups[0]["lr"]
            assert learning_rate_at(sched, 0.3, step) == pytest.approx(expected, rel=1e-9), step
            opt.step()
            scheduler.step()
