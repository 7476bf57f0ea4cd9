"""Optimizers (engine/optim.py): SGD, RMSprop and Adam, their state dicts and their rate.

Hand-computed updates on tiny arrays first; then, when torch is importable, 20-step trajectories
against torch.optim in float64. Schedules are in test_schedules.py, clipping in test_clipping.py.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from engine.config import OptimizerConfig
from engine.optim import (
    SGD,
    Adam,
    Optimizer,
    OptimizerStateError,
    RMSprop,
    build_optimizer,
)


class Param:
    """Stand-in for engine.layers.Parameter: a trainable array and dL/d(array)."""

    __slots__ = ("data", "grad")

    def __init__(self, data: object, dtype: type = np.float64) -> None:
        self.data = np.array(data, dtype=dtype)
        self.grad = np.zeros_like(self.data)


def opt_config(name: str = "sgd", **overrides: object) -> SimpleNamespace:
    """An OptimizerConfig stand-in with the contract's defaults."""
    fields = {
        "name": name,
        "learning_rate": 0.03,
        "momentum": 0.0,
        "nesterov": False,
        "beta1": 0.9,
        "beta2": 0.999,
        "eps": 1e-8,
        "alpha": 0.99,
        "schedule": None,
    }
    fields.update(overrides)
    return SimpleNamespace(**fields)


def run(opt: Optimizer, param: Param, grads: list[list[float]], lr: float) -> list[np.ndarray]:
    """Apply one step per gradient; the parameter after each step."""
    seen = []
    for g in grads:
        param.grad = np.array(g, dtype=param.data.dtype)
        opt.step(lr)
        seen.append(param.data.copy())
    return seen


# ---------------------------------------------------------------------------------------------
# Hand-computed updates
# ---------------------------------------------------------------------------------------------


def test_sgd_plain_first_three_updates() -> None:
    p = Param([1.0, -2.0])
    opt = build_optimizer([p], opt_config("sgd"))
    assert isinstance(opt, SGD)
    seen = run(opt, p, [[0.5, -1.0], [1.0, 2.0], [-0.5, 0.0]], lr=0.1)
    # p -= 0.1 * g
    np.testing.assert_allclose(seen[0], [0.95, -1.9], rtol=0, atol=1e-15)
    np.testing.assert_allclose(seen[1], [0.85, -2.1], rtol=0, atol=1e-15)
    np.testing.assert_allclose(seen[2], [0.9, -2.1], rtol=0, atol=1e-15)
    assert opt.step_count == 3
    assert opt.state_dict().keys() == {"step"}  # no momentum buffer without momentum


def test_sgd_momentum_first_three_updates() -> None:
    p = Param([0.0, 0.0])
    opt = build_optimizer([p], opt_config("sgd", momentum=0.9))
    seen = run(opt, p, [[1.0, -2.0]] * 3, lr=0.1)
    # buf: g = [1, -2]; 0.9 * buf + g = [1.9, -3.8]; [2.71, -5.42]; p -= 0.1 * buf
    np.testing.assert_allclose(seen[0], [-0.1, 0.2], rtol=0, atol=1e-15)
    np.testing.assert_allclose(seen[1], [-0.29, 0.58], rtol=0, atol=1e-15)
    np.testing.assert_allclose(seen[2], [-0.561, 1.122], rtol=0, atol=1e-15)
    np.testing.assert_allclose(opt.state_dict()["0.momentum_buffer"], [2.71, -5.42], atol=1e-15)


def test_sgd_nesterov_first_three_updates() -> None:
    p = Param([0.0, 0.0])
    opt = build_optimizer([p], opt_config("sgd", momentum=0.9, nesterov=True))
    seen = run(opt, p, [[1.0, -2.0]] * 3, lr=0.1)
    # buf as above (1, 1.9, 2.71 times g); direction g + 0.9 * buf = 1.9, 2.71, 3.439 times g
    np.testing.assert_allclose(seen[0], [-0.19, 0.38], rtol=0, atol=1e-15)
    np.testing.assert_allclose(seen[1], [-0.461, 0.922], rtol=0, atol=1e-15)
    np.testing.assert_allclose(seen[2], [-0.8049, 1.6098], rtol=0, atol=1e-15)


def test_sgd_momentum_switched_on_between_steps() -> None:
    p = Param([0.0])
    opt = build_optimizer([p], opt_config("sgd"))
    p.grad = np.array([1.0])
    opt.step(1.0)
    assert p.data[0] == -1.0
    opt.momentum = 0.5  # torch: the buffer starts as g at the first momentum step
    seen = run(opt, p, [[1.0], [1.0]], lr=1.0)
    assert [s[0] for s in seen] == [-2.0, -3.5]  # buf 1, then 0.5 * 1 + 1 = 1.5


def test_sgd_nesterov_without_momentum_is_plain_sgd() -> None:
    p = Param([1.0])
    opt = build_optimizer([p], opt_config("sgd", nesterov=True))
    assert run(opt, p, [[2.0]], lr=0.25)[0][0] == 0.5


def test_rmsprop_first_three_updates() -> None:
    p = Param([0.0, 0.0])
    opt = build_optimizer([p], opt_config("rmsprop", alpha=0.5, eps=0.0))
    assert isinstance(opt, RMSprop)
    seen = run(opt, p, [[2.0, -1.0], [2.0, -1.0], [0.0, 3.0]], lr=0.1)
    # v = [2, 0.5]: step 0.1 * [2/sqrt(2), -1/sqrt(0.5)] = +-0.1414213562
    np.testing.assert_allclose(seen[0], [-0.1414213562373095, 0.1414213562373095], atol=1e-15)
    # v = [3, 0.75]: step 0.1 * [2/sqrt(3), -1/sqrt(0.75)] = +-0.1154700538
    np.testing.assert_allclose(seen[1], [-0.2568914100752346, 0.2568914100752346], atol=1e-15)
    # v = [1.5, 4.875]: step 0.1 * [0, 3/sqrt(4.875)] = [0, 0.1358732441]
    np.testing.assert_allclose(seen[2], [-0.2568914100752346, 0.1210181659778832], atol=1e-15)
    np.testing.assert_allclose(opt.state_dict()["0.square_avg"], [1.5, 4.875], atol=1e-15)


def test_rmsprop_eps_is_added_to_the_root() -> None:
    p = Param([0.0, 0.0])
    opt = build_optimizer([p], opt_config("rmsprop", alpha=0.5, eps=1.0))
    seen = run(opt, p, [[2.0, -1.0]], lr=0.1)
    # v = [2, 0.5]; p = -0.1 * g / (sqrt(v) + 1) = [-0.2 / 2.4142135624, 0.1 / 1.7071067812]
    np.testing.assert_allclose(seen[0], [-0.08284271247461902, 0.0585786437626905], atol=1e-15)


def test_adam_first_three_updates() -> None:
    p = Param([0.0, 0.0])
    opt = build_optimizer([p], opt_config("adam", beta1=0.5, beta2=0.75, eps=0.0))
    assert isinstance(opt, Adam)
    seen = run(opt, p, [[1.0, -2.0], [3.0, 0.0], [-1.0, 1.0]], lr=0.1)
    # t=1: m = [0.5, -1], v = [0.25, 1]; m/(1-0.5) = [1, -2], v/(1-0.75) = [1, 4]: step +-0.1
    np.testing.assert_allclose(seen[0], [-0.1, 0.1], rtol=0, atol=1e-15)
    # t=2: m = [1.75, -0.5], v = [2.4375, 0.75]; mhat = m/0.75, vhat = v/0.4375
    np.testing.assert_allclose(seen[1], [-0.19885383033590442, 0.15091750772173157], atol=1e-15)
    # t=3: m = [0.375, 0.25], v = [2.078125, 0.8125]; mhat = m/0.875, vhat = v/0.578125
    np.testing.assert_allclose(seen[2], [-0.2214585047599159, 0.1268167250849609], atol=1e-15)
    state = opt.state_dict()
    np.testing.assert_allclose(state["0.exp_avg"], [0.375, 0.25], atol=1e-15)
    np.testing.assert_allclose(state["0.exp_avg_sq"], [2.078125, 0.8125], atol=1e-15)
    assert int(state["step"]) == 3


def test_adam_eps_is_added_after_bias_correction() -> None:
    p = Param([0.0, 0.0])
    opt = build_optimizer([p], opt_config("adam", beta1=0.5, beta2=0.75, eps=1.0))
    seen = run(opt, p, [[1.0, -2.0]], lr=0.1)
    # denom = sqrt([0.25, 1]) / sqrt(0.25) + 1 = [2, 3]; p = -(0.1 / 0.5) * [0.5, -1] / [2, 3]
    np.testing.assert_allclose(seen[0], [-0.05, 0.2 / 3], rtol=0, atol=1e-15)


def test_step_defaults_to_the_base_learning_rate() -> None:
    p = Param([1.0])
    opt = build_optimizer([p], opt_config("sgd", learning_rate=0.5))
    p.grad = np.array([1.0])
    opt.step()
    assert p.data[0] == 0.5


@pytest.mark.parametrize("name", ["sgd", "rmsprop", "adam"])
def test_every_optimizer_steps_with_its_base_rate_when_given_none(name: str) -> None:
    given, default = Param([1.0, -2.0]), Param([1.0, -2.0])
    opts = [
        build_optimizer([p], opt_config(name, learning_rate=0.25, momentum=0.5))
        for p in (given, default)
    ]
    for _ in range(2):
        given.grad = default.grad = np.array([0.5, 2.0])
        opts[0].step(0.25)
        opts[1].step()
    np.testing.assert_array_equal(default.data, given.data)
    assert np.all(default.data != [1.0, -2.0])


@pytest.mark.parametrize("name", ["rmsprop", "adam"])
def test_float32_updates_are_computed_in_float32(name: str) -> None:
    # one step from zero state, written out in float32 in the docstring's order: a float64
    # scratch array would round differently (and cost float32 its speed). 64 gradients: on a
    # handful the float64 rounding can land on the same float32 values (three did, and a
    # float64 gradient scratch survived mutation testing)
    f32 = np.float32
    rng = np.random.default_rng(5)
    g = np.concatenate([[0.3, -1.7, 2.9e-3], rng.standard_normal(61)]).astype(f32)
    p = Param(np.ones(64), dtype=f32)
    opt = build_optimizer([p], opt_config(name, alpha=0.9, beta1=0.8, beta2=0.9, eps=1e-3))
    p.grad = g.copy()
    opt.step(0.01)
    if name == "rmsprop":  # v = (1 - alpha) g^2;  p -= lr g / (sqrt(v) + eps)
        v = g * f32(1.0 - 0.9) * g
        expected = f32(1.0) - (g * f32(0.01)) / (np.sqrt(v) + f32(1e-3))
    else:  # m = (1 - b1) g, v = (1 - b2) g^2, t = 1: p -= lr / (1 - b1) m / (sqrt(v) / sqrt(1 - b2) + eps)
        m = (g - f32(0.0)) * f32(1.0 - 0.8)
        v = g * f32(1.0 - 0.9) * g
        denominator = np.sqrt(v) / f32(math.sqrt(1.0 - 0.9)) + f32(1e-3)
        expected = f32(1.0) - (m * f32(0.01 / (1.0 - 0.8))) / denominator
    assert expected.dtype == f32
    np.testing.assert_array_equal(p.data, expected)


@pytest.mark.parametrize("name", ["sgd", "rmsprop", "adam"])
def test_float32_stays_float32_in_place(name: str) -> None:
    p = Param(np.ones((3, 2)), dtype=np.float32)
    data = p.data
    opt = build_optimizer([p], opt_config(name, momentum=0.9))
    for _ in range(3):
        p.grad = np.full((3, 2), 0.5, dtype=np.float32)
        opt.step(np.float64(0.1))  # a numpy float64 rate must not upcast the update
    assert p.data is data and p.data.dtype == np.float32
    assert all(v.dtype == np.float32 for k, v in opt.state_dict().items() if k != "step")
    assert np.all(p.data < 1.0)


@pytest.mark.parametrize("name", ["sgd", "rmsprop", "adam"])
def test_a_float64_gradient_steps_a_float32_parameter_in_place(name: str) -> None:
    # a real gradient of another precision is the same kind of number: it is taken (as NumPy's
    # same_kind casting takes it) and the parameter stays float32; only a complex one is refused
    grad = np.array([0.25, -1.5, 3.0])  # float64
    narrow = Param([1.0, -2.0, 0.5], dtype=np.float32)
    wide = Param([1.0, -2.0, 0.5])  # the same step in float64, for the values
    for p in (narrow, wide):
        opt = build_optimizer([p], opt_config(name, momentum=0.5))
        for _ in range(2):
            p.grad = grad.copy()
            opt.step(0.1)
    assert narrow.data.dtype == np.float32
    np.testing.assert_allclose(narrow.data, wide.data, rtol=1e-6)
    assert np.all(narrow.data != [1.0, -2.0, 0.5])


def test_mixed_dtypes_match_separate_optimizers() -> None:
    rng = np.random.default_rng(3)
    shapes = [((2, 3), np.float32), ((3,), np.float64), ((4,), np.float32)]
    mixed = [Param(rng.standard_normal(s), dtype=d) for s, d in shapes]
    alone = [Param(p.data, dtype=p.data.dtype) for p in mixed]
    opt = build_optimizer(mixed, opt_config("adam"))
    singles = [build_optimizer([p], opt_config("adam")) for p in alone]
    for _ in range(4):
        for a, b in zip(mixed, alone, strict=True):
            a.grad = rng.standard_normal(a.data.shape).astype(a.data.dtype)
            b.grad = a.grad.copy()
        opt.step(0.01)
        for single in singles:
            single.step(0.01)
    for a, b in zip(mixed, alone, strict=True):
        assert a.data.dtype == b.data.dtype
        np.testing.assert_array_equal(a.data, b.data)
    assert set(opt.state_dict()) == {"step"} | {
        f"{i}.{b}" for i in range(3) for b in Adam.buffer_names
    }


def test_empty_parameter_list() -> None:
    for name in ("sgd", "rmsprop", "adam"):
        opt = build_optimizer([], opt_config(name, momentum=0.9))
        opt.step(0.1)
        state = opt.state_dict()
        assert set(state) == {"step"}
        opt.load_state_dict(state)
        opt.step(0.1)  # loading an empty state leaves an optimizer that still steps
        assert opt.state_dict()["step"] == 2


def test_bad_configuration_and_gradients() -> None:
    # hyperparameter limits are the config's (tests/engine/test_config_limits.py); an unknown
    # name is still an error here, as is a gradient that does not fit its parameter
    with pytest.raises(ValueError, match="expected one of"):
        build_optimizer([], opt_config("lbfgs"))
    p = Param(np.zeros((2, 2)))
    opt = build_optimizer([p], opt_config("adam"))
    p.grad = np.zeros(3)
    with pytest.raises(ValueError, match=r"parameter 0: expected a gradient of shape \(2, 2\)"):
        opt.step(0.1)


def test_hyperparameters_at_the_ends_of_their_ranges_are_taken() -> None:
    # the ranges are the config's (past them: tests/engine/test_config_limits.py); an optimizer
    # built from a validated config at their ends holds those values
    def build(name: str, **fields: float) -> Any:
        return build_optimizer([], OptimizerConfig(name=name, **fields))

    rmsprop = build("rmsprop", alpha=0.0, eps=1.0)  # alpha in [0, 1), eps in (0, 1]
    assert (rmsprop.alpha, rmsprop.eps) == (0.0, 1.0)
    adam = build("adam", beta1=0.0, beta2=0.0, eps=1.0)  # [0, 1): 0 is in
    assert (adam.beta1, adam.beta2, adam.eps) == (0.0, 0.0, 1.0)
    sgd = build("sgd", learning_rate=100.0, momentum=0.0)  # learning_rate in (0, 100]
    assert (sgd.learning_rate, sgd.momentum) == (100.0, 0.0)


def test_gradient_errors_name_the_parameter_and_what_it_got() -> None:
    params = [Param(np.zeros(2)), Param(np.zeros((2, 2)))]
    opt = build_optimizer(params, opt_config("adam"))
    params[0].grad = np.zeros(2)
    params[1].grad = np.zeros(3)
    with pytest.raises(ValueError) as caught:
        opt.step(0.1)
    assert str(caught.value) == "parameter 1: expected a gradient of shape (2, 2), got (3,)"
    params[1].grad = None
    with pytest.raises(ValueError) as caught:
        opt.step(0.1)
    assert str(caught.value) == "parameter 1: expected a gradient of shape (2, 2), got None"
    params[1].grad = np.zeros((2, 2), dtype=complex)  # right shape, but no real number
    with pytest.raises(ValueError) as caught:
        opt.step(0.1)
    assert str(caught.value) == "parameter 1: expected a real gradient (float64), got complex128"


# ---------------------------------------------------------------------------------------------
# State dict
# ---------------------------------------------------------------------------------------------

VARIANTS = [
    ("sgd", {"momentum": 0.0}),
    ("sgd", {"momentum": 0.9}),
    ("sgd", {"momentum": 0.9, "nesterov": True}),
    ("rmsprop", {"alpha": 0.9}),
    ("adam", {"beta1": 0.8, "beta2": 0.95}),
]


def make_params(rng: np.random.Generator, dtype: type = np.float64) -> list[Param]:
    """Six arrays shaped like a 2-4-2-1 dense network's weights and biases."""
    shapes = [(2, 4), (4,), (4, 2), (2,), (2, 1), (1,)]
    return [Param(rng.standard_normal(s), dtype=dtype) for s in shapes]


@pytest.mark.parametrize(("name", "extra"), VARIANTS)
def test_state_dict_round_trip_continues_identically(name: str, extra: dict, tmp_path) -> None:
    rng = np.random.default_rng(7)
    params = make_params(rng, np.float32)
    grads = [
        [rng.standard_normal(p.data.shape).astype(np.float32) for p in params] for _ in range(8)
    ]
    opt = build_optimizer(params, opt_config(name, **extra))

    def steps(o: Optimizer, ps: list[Param], gs: list[list[np.ndarray]]) -> None:
        for step_grads in gs:
            for p, g in zip(ps, step_grads, strict=True):
                p.grad = g.copy()
            o.step(0.01)

    steps(opt, params, grads[:4])
    np.savez(tmp_path / "state.npz", **opt.state_dict())
    saved = [p.data.copy() for p in params]
    steps(opt, params, grads[4:])

    clones = [Param(d, dtype=np.float32) for d in saved]
    restored = build_optimizer(clones, opt_config(name, **extra))
    with np.load(tmp_path / "state.npz") as state:
        restored.load_state_dict(dict(state))
    assert restored.step_count == 4
    steps(restored, clones, grads[4:])
    for a, b in zip(params, clones, strict=True):
        np.testing.assert_array_equal(a.data, b.data)
    for key, value in opt.state_dict().items():
        np.testing.assert_array_equal(value, restored.state_dict()[key])


def test_state_dict_is_a_copy() -> None:
    p = Param([1.0, 2.0])
    opt = build_optimizer([p], opt_config("adam"))
    p.grad = np.array([1.0, 1.0])
    opt.step(0.1)
    state = opt.state_dict()
    state["0.exp_avg"][:] = 99.0
    assert np.all(opt.state_dict()["0.exp_avg"] != 99.0)


def test_load_state_dict_rejects_mismatches_without_changing_anything() -> None:
    p = Param(np.zeros((2, 3)))
    opt = build_optimizer([p], opt_config("adam"))
    p.grad = np.ones((2, 3))
    opt.step(0.1)
    good = opt.state_dict()
    cases = {
        "missing 'step'": {k: v for k, v in good.items() if k != "step"},
        "missing buffer": {k: v for k, v in good.items() if k != "0.exp_avg_sq"},
        "extra key": {**good, "1.exp_avg": np.zeros(3)},
        "bad shape": {**good, "0.exp_avg": np.zeros((3, 2))},
        "bad step": {**good, "step": np.array(1.5)},
    }
    for label, state in cases.items():
        with pytest.raises(OptimizerStateError):
            opt.load_state_dict(state)
        for key, value in opt.state_dict().items():
            np.testing.assert_array_equal(value, good[key], err_msg=label)


def test_load_state_dict_errors_say_what_was_expected_and_what_came() -> None:
    params = [Param(np.zeros(2)), Param(np.zeros((2, 3)))]
    opt = build_optimizer(params, opt_config("adam"))
    good = opt.state_dict()
    extra = {f"{i}.exp_avg": np.zeros(1) for i in range(2, 9)}  # seven extra keys
    cases = [
        (
            {k: v for k, v in good.items() if k != "step"},
            "optimizer state: expected a 'step' entry, got none",
        ),
        (
            {**good, "step": np.array(-1)},
            "optimizer state 'step': expected a non-negative integer scalar, got array(-1)",
        ),
        (
            {**good, **extra},
            "adam state for 2 parameters: expected keys among '<index>.{exp_avg,exp_avg_sq}' "
            "and 'step', got extra ['2.exp_avg', '3.exp_avg', '4.exp_avg', '5.exp_avg', "
            "'6.exp_avg']",
        ),
        (
            {k: v for k, v in good.items() if k != "1.exp_avg_sq"},
            "adam state: expected 'exp_avg_sq' for all 2 parameters, missing ['1.exp_avg_sq']",
        ),
        (
            {**good, "1.exp_avg": np.zeros((3, 2))},
            "adam state '1.exp_avg': expected shape (2, 3), got (3, 2)",
        ),
    ]
    for state, message in cases:
        with pytest.raises(OptimizerStateError) as caught:
            opt.load_state_dict(state)
        assert str(caught.value) == message


def test_a_missing_buffer_error_lists_the_first_five_missing_keys() -> None:
    params = [Param(np.zeros(2)) for _ in range(7)]
    opt = build_optimizer(params, opt_config("rmsprop"))
    state = {"step": np.array(0)}  # all seven 'square_avg' entries missing
    with pytest.raises(OptimizerStateError) as caught:
        opt.load_state_dict(state)
    assert str(caught.value) == (
        "rmsprop state: expected 'square_avg' for all 7 parameters, missing "
        "['0.square_avg', '1.square_avg', '2.square_avg', '3.square_avg', '4.square_avg']"
    )


def test_sgd_load_without_momentum_buffer_resets_it() -> None:
    p = Param([0.0])
    opt = build_optimizer([p], opt_config("sgd", momentum=0.9))
    fresh = opt.state_dict()
    assert set(fresh) == {"step"}
    p.grad = np.array([1.0])
    opt.step(1.0)
    assert "0.momentum_buffer" in opt.state_dict()
    opt.load_state_dict(fresh)
    assert set(opt.state_dict()) == {"step"}
    opt.step(1.0)  # buf starts again as g
    np.testing.assert_array_equal(opt.state_dict()["0.momentum_buffer"], [1.0])


# ---------------------------------------------------------------------------------------------
# Against torch (skipped when torch is not installed)
# ---------------------------------------------------------------------------------------------

TORCH_VARIANTS = [
    ("sgd", {}),
    ("sgd", {"momentum": 0.9}),
    ("sgd", {"momentum": 0.9, "nesterov": True}),
    ("rmsprop", {}),
    ("rmsprop", {"alpha": 0.9, "eps": 1e-3}),
    ("adam", {}),
    ("adam", {"beta1": 0.8, "beta2": 0.95, "eps": 1e-3}),
]


def torch_optimizer(torch, tensors: list, name: str, cfg: SimpleNamespace):  # noqa: ANN001
    """The torch.optim optimizer matching an OptimizerConfig stand-in."""
    lr = cfg.learning_rate
    if name == "sgd":
        return torch.optim.SGD(tensors, lr=lr, momentum=cfg.momentum, nesterov=cfg.nesterov)
    if name == "rmsprop":
        return torch.optim.RMSprop(tensors, lr=lr, alpha=cfg.alpha, eps=cfg.eps)
    return torch.optim.Adam(tensors, lr=lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps)


@pytest.mark.parametrize(("name", "extra"), TORCH_VARIANTS)
def test_twenty_steps_match_torch(name: str, extra: dict) -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    params = make_params(rng)
    tensors = [torch.tensor(p.data, requires_grad=True) for p in params]
    cfg = opt_config(name, learning_rate=0.05, **extra)
    ours = build_optimizer(params, cfg)
    theirs = torch_optimizer(torch, tensors, name, cfg)
    for step in range(20):
        lr = 0.05 * (1.0 + 0.5 * math.sin(step))  # a changing rate, as a schedule gives
        for group in theirs.param_groups:
            group["lr"] = lr
        for p, t in zip(params, tensors, strict=True):
            g = rng.standard_normal(p.data.shape)
            p.grad = g
            t.grad = torch.tensor(g)
        ours.step(lr)
        theirs.step()
        for p, t in zip(params, tensors, strict=True):
            np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=1e-10, atol=1e-10)
    state = ours.state_dict()
    for index, t in enumerate(tensors):
        for buffer, value in theirs.state[t].items():
            if buffer != "step" and value is not None:
                key = f"{index}.{buffer}"
                np.testing.assert_allclose(state[key], value.numpy(), rtol=1e-10, atol=1e-12)


def test_hyperparameters_changed_between_steps_match_torch() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    for name, changes in [
        ("sgd", {"momentum": 0.5}),
        ("rmsprop", {"alpha": 0.5, "eps": 1e-2}),
        ("adam", {"beta1": 0.5, "beta2": 0.9, "eps": 1e-2}),
    ]:
        params = make_params(rng)
        tensors = [torch.tensor(p.data, requires_grad=True) for p in params]
        cfg = opt_config(name, learning_rate=0.05, momentum=0.9)
        ours = build_optimizer(params, cfg)
        theirs = torch_optimizer(torch, tensors, name, cfg)
        for step in range(10):
            if step == 5:
                for key, value in changes.items():
                    setattr(ours, key, value)
                group = theirs.param_groups[0]
                group.update({k: v for k, v in changes.items() if not k.startswith("beta")})
                if name == "adam":
                    group["betas"] = (changes["beta1"], changes["beta2"])
            for p, t in zip(params, tensors, strict=True):
                p.grad = rng.standard_normal(p.data.shape)
                t.grad = torch.tensor(p.grad)
            ours.step(0.05)
            theirs.step()
        for p, t in zip(params, tensors, strict=True):
            np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=1e-10, atol=1e-10)
