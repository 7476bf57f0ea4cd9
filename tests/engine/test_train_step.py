"""One whole training step: forward, loss, penalty, backward, clipping, schedule and update.

First without PyTorch, each part against the same step written out by hand (two trainers from
one seed, one with the feature and one without, so the difference is the feature alone). Then,
when torch is importable, whole steps of the trainer against the same steps in torch (float64,
1e-10): micrograd's whole-expression test, done for the step.

Every run trains on the whole training set per step (batch_size >= samples), so the order the
trainer draws the samples in does not change any number.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from engine.trainer import Trainer

LR = 0.1


def step_config(**overrides: Any) -> dict[str, Any]:
    """A 2-5-1 tanh net on 20 xor points, float64, one full batch per step."""
    config: dict[str, Any] = {
        "seed": 3,
        "dtype": "float64",
        "dataset": {"name": "xor", "samples": 40, "noise": 0.2, "test_fraction": 0.5},
        "features": ["x1", "x2"],
        "layers": [
            {"type": "dense", "units": 5, "activation": "tanh"},
            {"type": "dense", "units": 1, "activation": "tanh"},
        ],
        "loss": "mse",
        "optimizer": {"name": "sgd", "learning_rate": LR},
        "batch_size": 20,
    }
    config.update(overrides)
    return config


def deltas(before: dict[str, np.ndarray], after: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {name: after[name] - before[name] for name in before}


# ----------------------------------------------------------------------------- regularization


def test_l2_adds_rate_times_w_to_each_weight_gradient_and_half_rate_w2_to_the_loss() -> None:
    rate = 0.05
    plain = Trainer(step_config())
    reg = Trainer(step_config(regularization={"kind": "l2", "rate": rate}))
    w0 = reg.get_weights()
    r_plain, r_reg = plain.train_step(), reg.train_step()
    # SGD: dW = -lr * (g + rate * W); the penalty's part of the step is -lr * rate * W
    d_plain, d_reg = deltas(w0, plain.get_weights()), deltas(w0, reg.get_weights())
    for name in ("0.W", "1.W"):
        np.testing.assert_allclose(d_reg[name] - d_plain[name], -LR * rate * w0[name], atol=1e-15)
    for name in ("0.b", "1.b"):  # biases are not penalised
        np.testing.assert_array_equal(d_reg[name], d_plain[name])
    penalty = 0.5 * rate * sum(float(np.sum(w0[n] ** 2)) for n in ("0.W", "1.W"))
    assert r_reg.data_loss == pytest.approx(r_plain.data_loss, rel=1e-15)
    assert r_reg.loss == pytest.approx(r_plain.data_loss + penalty, rel=1e-14)


def test_l1_adds_rate_times_sign_w_to_each_weight_gradient_and_rate_abs_w_to_the_loss() -> None:
    rate = 0.02
    plain = Trainer(step_config())
    reg = Trainer(step_config(regularization={"kind": "l1", "rate": rate}))
    w0 = reg.get_weights()
    r_plain, r_reg = plain.train_step(), reg.train_step()
    d_plain, d_reg = deltas(w0, plain.get_weights()), deltas(w0, reg.get_weights())
    for name in ("0.W", "1.W"):
        np.testing.assert_allclose(
            d_reg[name] - d_plain[name], -LR * rate * np.sign(w0[name]), atol=1e-15
        )
    for name in ("0.b", "1.b"):
        np.testing.assert_array_equal(d_reg[name], d_plain[name])
    penalty = rate * sum(float(np.sum(np.abs(w0[n]))) for n in ("0.W", "1.W"))
    assert r_reg.loss == pytest.approx(r_plain.data_loss + penalty, rel=1e-14)


# ----------------------------------------------------------------------------- clipping


def test_clipping_by_norm_scales_the_update_that_is_applied() -> None:
    threshold = 0.01
    plain = Trainer(step_config())
    clipped = Trainer(step_config(gradient_clip={"kind": "norm", "threshold": threshold}))
    w0 = clipped.get_weights()
    r_plain, r_clip = plain.train_step(), clipped.train_step()
    assert r_plain.grad_norm > 10 * threshold  # the case clips, by a large factor
    assert r_clip.clipped and r_clip.grad_norm == pytest.approx(r_plain.grad_norm, rel=1e-15)
    scale = threshold / (r_plain.grad_norm + 1e-6)  # torch's clip_grad_norm_ rule
    assert r_clip.clip_fraction == pytest.approx(1 - scale, rel=1e-12)
    d_plain, d_clip = deltas(w0, plain.get_weights()), deltas(w0, clipped.get_weights())
    for name in w0:
        np.testing.assert_allclose(d_clip[name], scale * d_plain[name], rtol=1e-10, atol=1e-17)
    applied = math.sqrt(sum(float(np.sum(d**2)) for d in d_clip.values()))
    assert applied == pytest.approx(LR * threshold, rel=1e-4)  # lr * the clipped norm


def test_clipping_by_value_caps_each_applied_gradient() -> None:
    threshold = 0.02
    plain = Trainer(step_config())
    clipped = Trainer(step_config(gradient_clip={"kind": "value", "threshold": threshold}))
    w0 = clipped.get_weights()
    plain.train_step()
    result = clipped.train_step()
    d_plain, d_clip = deltas(w0, plain.get_weights()), deltas(w0, clipped.get_weights())
    capped = 0
    for name in w0:
        # SGD: dW = -lr * clip(g, -c, c) = clip(-lr * g, -lr * c, lr * c)
        expected = np.clip(d_plain[name], -LR * threshold, LR * threshold)
        np.testing.assert_allclose(d_clip[name], expected, rtol=1e-12, atol=1e-17)
        capped += int(np.sum(np.abs(d_plain[name]) > LR * threshold))
    assert capped >= 3 and result.clipped  # some values were really capped
    assert result.clip_fraction == pytest.approx(capped / sum(a.size for a in w0.values()))


# ----------------------------------------------------------------------------- schedules

# The rates of the first six updates, written out: step (size 2, gamma 0.5), exponential
# (gamma 0.8) and cosine (total 4 steps, min 0.01; it stays at min_lr after total_steps).
SCHEDULES = {
    "step": ({"kind": "step", "step_size": 2, "gamma": 0.5}, [0.1, 0.1, 0.05, 0.05, 0.025, 0.025]),
    "exponential": (
        {"kind": "exponential", "gamma": 0.8},
        [0.1, 0.08, 0.064, 0.0512, 0.04096, 0.032768],
    ),
    "cosine": (
        {"kind": "cosine", "total_steps": 4, "min_lr": 0.01},
        [
            0.1,
            0.01 + 0.09 * (1 + math.cos(math.pi / 4)) / 2,
            0.055,
            0.01 + 0.09 * (1 + math.cos(3 * math.pi / 4)) / 2,
            0.01,
            0.01,
        ],
    ),
}


@pytest.mark.parametrize("kind", list(SCHEDULES))
def test_the_trainer_steps_at_the_scheduled_learning_rate(kind: str) -> None:
    schedule, rates = SCHEDULES[kind]
    scheduled = Trainer(
        step_config(optimizer={"name": "sgd", "learning_rate": LR, "schedule": schedule})
    )
    by_hand = Trainer(step_config())  # constant rate, set to the schedule's before each step
    for step, rate in enumerate(rates):
        assert scheduled.report().learning_rate == pytest.approx(rate, rel=1e-12), step
        by_hand.update_hyperparameters({"learning_rate": rate})
        scheduled.train_step()
        by_hand.train_step()
        for name, value in by_hand.get_weights().items():
            np.testing.assert_allclose(
                scheduled.get_weights()[name], value, rtol=1e-13, atol=1e-16, err_msg=f"{step}"
            )
    # and the schedule is not the base rate: the same steps at 0.1 end elsewhere
    constant = Trainer(step_config())
    for _ in rates:
        constant.train_step()
    assert not np.allclose(constant.get_weights()["0.W"], scheduled.get_weights()["0.W"])


# ----------------------------------------------------------------------------- against torch


def torch_twin(torch: Any, trainer: Trainer) -> list[tuple[Any, Any, str]]:
    """(W, b, activation) per dense layer, torch tensors holding the trainer's weights."""
    weights = trainer.get_weights()
    return [
        (
            torch.tensor(weights[f"{i}.W"].T.copy(), requires_grad=True),  # torch: (out, in)
            torch.tensor(weights[f"{i}.b"].copy(), requires_grad=True),
            layer.activation,
        )
        for i, layer in enumerate(trainer.config.layers)
    ]


def torch_loss(torch: Any, twin: list, config: dict[str, Any], x: Any, y: Any) -> tuple[Any, Any]:
    """(data loss, data loss + penalty) of the twin on the batch."""
    a = x
    for index, (W, b, activation) in enumerate(twin):
        z = a @ W.T + b
        last = index == len(twin) - 1
        if last and config["loss"] == "cross_entropy":
            a = z  # cross-entropy reads the logits
        else:
            a = {"tanh": torch.tanh, "relu": torch.relu, "linear": lambda t: t}[activation](z)
    if config["loss"] == "cross_entropy":
        data = torch.nn.functional.cross_entropy(a, y)
    else:
        data = ((a - y) ** 2).mean()
    reg = config.get("regularization") or {"kind": "none"}
    penalty = 0.0
    for W, _, _ in twin:
        if reg["kind"] == "l2":
            penalty = penalty + 0.5 * reg["rate"] * (W**2).sum()
        elif reg["kind"] == "l1":
            penalty = penalty + reg["rate"] * W.abs().sum()
    return data, data + penalty


def torch_optimizer(torch: Any, params: list, optimizer: dict[str, Any]) -> Any:
    name, lr = optimizer["name"], optimizer["learning_rate"]
    if name == "sgd":
        return torch.optim.SGD(
            params,
            lr=lr,
            momentum=optimizer.get("momentum", 0.0),
            nesterov=optimizer.get("nesterov", False),
        )
    if name == "rmsprop":
        return torch.optim.RMSprop(
            params, lr=lr, alpha=optimizer.get("alpha", 0.99), eps=optimizer.get("eps", 1e-8)
        )
    return torch.optim.Adam(
        params,
        lr=lr,
        betas=(optimizer.get("beta1", 0.9), optimizer.get("beta2", 0.999)),
        eps=optimizer.get("eps", 1e-8),
    )


def torch_scheduler(torch: Any, opt: Any, schedule: dict[str, Any] | None) -> Any:
    if schedule is None:
        return None
    sched = torch.optim.lr_scheduler
    if schedule["kind"] == "step":
        return sched.StepLR(opt, step_size=schedule["step_size"], gamma=schedule["gamma"])
    if schedule["kind"] == "exponential":
        return sched.ExponentialLR(opt, gamma=schedule["gamma"])
    return sched.CosineAnnealingLR(opt, T_max=schedule["total_steps"], eta_min=schedule["min_lr"])


SPIRAL3 = {
    "dataset": {"name": "spiral3", "samples": 60, "noise": 0.1, "test_fraction": 0.5},
    "layers": [
        {"type": "dense", "units": 6, "activation": "relu"},
        {"type": "dense", "units": 3, "activation": "softmax"},
    ],
    "loss": "cross_entropy",
    "batch_size": 30,
}
TWIN_CASES = {
    "sgd-l2": {"regularization": {"kind": "l2", "rate": 0.05}},
    "sgd-l1": {"regularization": {"kind": "l1", "rate": 0.02}},
    "momentum-clip-norm": {
        "optimizer": {"name": "sgd", "learning_rate": 0.2, "momentum": 0.9},
        "gradient_clip": {"kind": "norm", "threshold": 0.05},
    },
    "nesterov-clip-value": {
        "optimizer": {"name": "sgd", "learning_rate": 0.2, "momentum": 0.8, "nesterov": True},
        "gradient_clip": {"kind": "value", "threshold": 0.01},
    },
    "adam-step-schedule": {
        "optimizer": {
            "name": "adam",
            "learning_rate": 0.05,
            "schedule": {"kind": "step", "step_size": 2, "gamma": 0.5},
        }
    },
    "adam-l2-exponential-schedule": {
        "optimizer": {
            "name": "adam",
            "learning_rate": 0.05,
            "beta1": 0.8,
            "beta2": 0.95,
            "schedule": {"kind": "exponential", "gamma": 0.8},
        },
        "regularization": {"kind": "l2", "rate": 0.01},
    },
    "rmsprop-cosine-schedule": {
        "optimizer": {
            "name": "rmsprop",
            "learning_rate": 0.01,
            "alpha": 0.9,
            "schedule": {"kind": "cosine", "total_steps": 6, "min_lr": 0.001},
        }
    },
    "softmax-cross-entropy-momentum-l1-clip-norm": {
        **SPIRAL3,
        "optimizer": {"name": "sgd", "learning_rate": 0.3, "momentum": 0.5},
        "regularization": {"kind": "l1", "rate": 0.01},
        "gradient_clip": {"kind": "norm", "threshold": 0.1},
    },
}
TWIN_STEPS = 6


@pytest.mark.parametrize("case", list(TWIN_CASES))
def test_whole_train_steps_match_torch(case: str) -> None:
    torch = pytest.importorskip("torch")
    config = step_config(**TWIN_CASES[case])
    trainer = Trainer(config)
    twin = torch_twin(torch, trainer)
    params = [t for W, b, _ in twin for t in (W, b)]
    optimizer = trainer.config.optimizer.model_dump()
    opt = torch_optimizer(torch, params, optimizer)
    scheduler = torch_scheduler(torch, opt, config["optimizer"].get("schedule"))
    x = torch.tensor(trainer.x_train)
    y = torch.tensor(trainer.y_train)
    clip = config.get("gradient_clip")
    clipped_steps = 0
    for step in range(TWIN_STEPS):
        opt.zero_grad()
        data, total = torch_loss(torch, twin, config, x, y)
        total.backward()
        norm = math.sqrt(sum(float((p.grad**2).sum()) for p in params))  # before clipping
        if clip is not None and clip["kind"] == "norm":
            torch.nn.utils.clip_grad_norm_(params, clip["threshold"])
        elif clip is not None:
            torch.nn.utils.clip_grad_value_(params, clip["threshold"])
        opt.step()
        if scheduler is not None:
            scheduler.step()
        result = trainer.train_step()
        clipped_steps += result.clipped
        assert result.data_loss == pytest.approx(data.item(), rel=1e-10), step
        assert result.loss == pytest.approx(total.item(), rel=1e-10), step
        assert result.grad_norm == pytest.approx(norm, rel=1e-10), step
        weights = trainer.get_weights()
        for index, (W, b, _) in enumerate(twin):
            np.testing.assert_allclose(
                weights[f"{index}.W"], W.detach().numpy().T, rtol=1e-10, atol=1e-12
            )
            np.testing.assert_allclose(
                weights[f"{index}.b"], b.detach().numpy(), rtol=1e-10, atol=1e-12
            )
    if clip is not None:
        assert clipped_steps == TWIN_STEPS  # every step of these cases clips
    # the rate the report shows is the one torch uses next
    assert trainer.report().learning_rate == pytest.approx(opt.param_groups[0]["lr"], rel=1e-10)
