"""Optimizers (SGD, RMSprop, Adam), learning-rate schedules and gradient clipping.

Every update follows PyTorch's rule (torch.optim.SGD / RMSprop / Adam with their defaults for the
options not exposed here: no weight decay, dampening 0, not centered, no amsgrad), so a trajectory
can be compared number for number with torch in float64.

An optimizer owns the learning rate of a run: its base rate and schedule, and `rate(step)`, the
rate of the update after `step` steps (the trainer asks it before each update and for reports).
Hyperparameters are trusted: their limits are engine.config's, checked when a config is validated.

Speed: a tiny network takes thousands of steps a second, and a NumPy call on a small array costs
about half a microsecond whatever its size, so the number of calls is what counts. The trainer
hands the optimizer a single parameter, the network's flat array of every weight (engine.network
lays the parameters out in it once), so a step is a handful of in-place ufunc calls on whole-network
arrays (Adam: 13) into scratch arrays allocated once. Plain SGD (momentum 0) is just
``p.data -= lr * p.grad`` per parameter.

Parameters are duck-typed: any object with ``.data`` and ``.grad`` arrays of the same shape
(engine.layers.Parameter). ``param.data`` is updated in place and never rebound; ``param.grad``
is read, never written (it may be rebound by the layers between steps).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from engine.config import ClipConfig, OptimizerConfig, ScheduleConfig
    from engine.layers import Parameter

__all__ = [
    "SGD",
    "Adam",
    "ClipReport",
    "Optimizer",
    "OptimizerStateError",
    "RMSprop",
    "build_optimizer",
    "clip_gradients",
    "learning_rate_at",
]

OPTIMIZER_NAMES = ("sgd", "rmsprop", "adam")
SCHEDULE_KINDS = ("constant", "step", "exponential", "cosine")
CLIP_KINDS = ("value", "norm")
NORM_CLIP_EPS = 1e-6  # torch.nn.utils.clip_grad_norm_ adds it to the norm before dividing


class OptimizerStateError(ValueError):
    """A state dict that does not fit the optimizer's parameters (missing, extra or misshapen)."""


# --------------------------------------------------------------------------------------------
# Optimizers
# --------------------------------------------------------------------------------------------


class Optimizer:
    """Base class: holds the parameters, the learning rate, the step count and the state buffers.

    Subclasses implement ``step(lr)``. Hyperparameters are plain attributes, read at every step,
    so they can be changed between steps. The state dict holds plain numpy arrays keyed by
    "<parameter index>.<buffer name>" (torch's buffer names) plus "step".
    """

    name = ""  # the config name: "sgd", "rmsprop" or "adam"
    buffer_names: tuple[str, ...] = ()  # per-parameter state buffers, torch's names
    lazy_buffers = False  # True: buffers appear at the first step that needs them (SGD momentum)

    def __init__(self, params: Iterable[Parameter], config: OptimizerConfig) -> None:
        self.params: list[Parameter] = list(params)  # updated in place by step()
        self.learning_rate: float = float(config.learning_rate)  # the base rate
        self.schedule: ScheduleConfig | None = config.schedule  # the rate over the steps
        self.step_count: int = 0  # completed steps; Adam's bias correction counts from it
        self._update = [np.empty_like(p.data) for p in self.params]  # scratch: what is subtracted
        self._scaled = [np.empty_like(p.data) for p in self.params]  # scratch: a scaled numerator
        # buffer name -> one array per parameter, shaped like it (absent until the first step
        # that needs it when lazy_buffers)
        self._state: dict[str, list[np.ndarray]] = {}
        if not self.lazy_buffers:
            for buffer in self.buffer_names:
                self._state[buffer] = self._zeros()

    def rate(self, step: int) -> float:
        """The learning rate of the update after `step` completed steps of the run: the base rate
        under the schedule (see learning_rate_at)."""
        return learning_rate_at(self.schedule, self.learning_rate, step)

    def step(self, lr: float | None = None) -> None:
        """Update every param.data in place from param.grad with learning rate lr.

        lr defaults to the base rate; the trainer passes the scheduled one, rate(step).
        """
        raise NotImplementedError

    def _zeros(self) -> list[np.ndarray]:
        """A new state buffer: one zero array per parameter, shaped and typed like it."""
        return [np.zeros_like(p.data) for p in self.params]

    def _allocate(self, buffer: str) -> list[np.ndarray]:
        """The arrays of a buffer, created (zero) if absent."""
        arrays = self._state.get(buffer)
        if arrays is None:
            arrays = self._state[buffer] = self._zeros()
        return arrays

    def _check_gradients(self) -> None:
        """ValueError naming the first parameter whose gradient does not fit it, before any
        update: a step changes all parameters or none."""
        for index, p in enumerate(self.params):
            grad = p.grad
            got = None if grad is None else np.shape(grad)
            if got != p.data.shape:
                raise ValueError(
                    f"parameter {index}: expected a gradient of shape {p.data.shape}, got {got}"
                )
            if not np.can_cast(grad.dtype, p.data.dtype, "same_kind"):
                raise ValueError(
                    f"parameter {index}: expected a real gradient ({p.data.dtype}), "
                    f"got {grad.dtype}"
                )

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of the state: "step" and "<index>.<buffer>" arrays shaped like the params."""
        state: dict[str, np.ndarray] = {"step": np.array(self.step_count, dtype=np.int64)}
        for buffer, arrays in self._state.items():
            for index, array in enumerate(arrays):
                state[f"{index}.{buffer}"] = array.copy()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a state_dict() so the next steps continue the saved trajectory exactly.

        Everything is checked before anything changes; a mismatch raises OptimizerStateError.
        """
        if "step" not in state:
            raise OptimizerStateError("optimizer state: expected a 'step' entry, got none")
        step = np.asarray(state["step"])
        if step.shape != () or step.dtype.kind not in "iu" or int(step) < 0:
            raise OptimizerStateError(
                f"optimizer state 'step': expected a non-negative integer scalar, "
                f"got {state['step']!r}"
            )
        count = len(self.params)
        known = {"step"} | {f"{i}.{b}" for i in range(count) for b in self.buffer_names}
        extra = sorted(set(state) - known)
        if extra:
            raise OptimizerStateError(
                f"{self.name} state for {count} parameters: expected keys among "
                f"'<index>.{{{','.join(self.buffer_names)}}}' and 'step', got extra {extra[:5]}"
            )
        present: list[str] = []
        for buffer in self.buffer_names:
            have = [f"{i}.{buffer}" in state for i in range(count)]
            if all(have):
                if count:
                    present.append(buffer)
            elif any(have) or not self.lazy_buffers:
                missing = [f"{i}.{buffer}" for i, ok in enumerate(have) if not ok]
                raise OptimizerStateError(
                    f"{self.name} state: expected '{buffer}' for all {count} parameters, "
                    f"missing {missing[:5]}"
                )
        for buffer in present:
            for i, p in enumerate(self.params):
                got = np.shape(state[f"{i}.{buffer}"])
                if got != p.data.shape:
                    raise OptimizerStateError(
                        f"{self.name} state '{i}.{buffer}': expected shape {p.data.shape}, "
                        f"got {got}"
                    )
        for buffer in self.buffer_names:
            if buffer in present:
                for index, array in enumerate(self._allocate(buffer)):
                    np.copyto(array, state[f"{index}.{buffer}"], casting="same_kind")
            elif self.lazy_buffers:  # SGD's momentum starts again from the next gradient
                self._state.pop(buffer, None)
            else:  # no parameters: the buffers stay, empty
                self._state[buffer] = self._zeros()
        self.step_count = int(step)


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum, as torch.optim.SGD.

    buf = g on the first momentum step, then buf = momentum * buf + g; the step direction is
    buf, or g + momentum * buf with nesterov; p -= lr * direction. With momentum 0 the buffer is
    neither used nor updated (as torch), and nesterov has no effect (torch refuses the combination
    at construction; here momentum can be changed between steps, so it is not an error).
    """

    name = "sgd"
    buffer_names = ("momentum_buffer",)
    lazy_buffers = True

    def __init__(self, params: Iterable[Parameter], config: OptimizerConfig) -> None:
        super().__init__(params, config)
        self.momentum: float = float(config.momentum)  # weight of the previous direction
        self.nesterov: bool = bool(config.nesterov)  # g + momentum * buf instead of buf

    def step(self, lr: float | None = None) -> None:
        """One SGD update of every parameter, in place."""
        lr = self.learning_rate if lr is None else float(lr)
        self._check_gradients()
        momentum = float(self.momentum)
        if momentum == 0.0:
            for p in self.params:
                p.data -= lr * p.grad
            self.step_count += 1
            return
        first = "momentum_buffer" not in self._state
        buffers = self._allocate("momentum_buffer")
        nesterov = bool(self.nesterov)
        for p, buf, update in zip(self.params, buffers, self._update, strict=True):
            grad = p.grad
            if first:
                np.copyto(buf, grad)
            else:
                buf *= momentum
                buf += grad
            if nesterov:
                np.multiply(buf, momentum, out=update)
                update += grad
                update *= lr
            else:
                np.multiply(buf, lr, out=update)
            p.data -= update
        self.step_count += 1


class RMSprop(Optimizer):
    """RMSprop as torch.optim.RMSprop (no momentum, not centered).

    v = alpha * v + (1 - alpha) * g^2;  p -= lr * g / (sqrt(v) + eps).
    """

    name = "rmsprop"
    buffer_names = ("square_avg",)

    def __init__(self, params: Iterable[Parameter], config: OptimizerConfig) -> None:
        super().__init__(params, config)
        self.alpha: float = float(config.alpha)  # smoothing of g^2
        self.eps: float = float(config.eps)  # added to sqrt(v)

    def step(self, lr: float | None = None) -> None:
        """One RMSprop update of every parameter, in place."""
        lr = self.learning_rate if lr is None else float(lr)
        self._check_gradients()
        alpha = float(self.alpha)
        eps = float(self.eps)
        for p, square_avg, update, scaled in zip(
            self.params, self._state["square_avg"], self._update, self._scaled, strict=True
        ):
            grad = p.grad
            # torch: square_avg.mul_(alpha).addcmul_(g, g, value=1 - alpha)
            square_avg *= alpha
            np.multiply(grad, 1.0 - alpha, out=update)
            update *= grad
            square_avg += update
            # torch: p.addcdiv_(g, square_avg.sqrt().add_(eps), value=-lr)
            np.sqrt(square_avg, out=update)
            update += eps
            np.multiply(grad, lr, out=scaled)
            np.divide(scaled, update, out=update)
            p.data -= update
        self.step_count += 1


class Adam(Optimizer):
    """Adam with bias correction, as torch.optim.Adam (no amsgrad, no weight decay).

    m = b1 * m + (1 - b1) * g;  v = b2 * v + (1 - b2) * g^2;  t = steps taken including this one;
    p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
    """

    name = "adam"
    buffer_names = ("exp_avg", "exp_avg_sq")

    def __init__(self, params: Iterable[Parameter], config: OptimizerConfig) -> None:
        super().__init__(params, config)
        self.beta1: float = float(config.beta1)  # decay of m
        self.beta2: float = float(config.beta2)  # decay of v
        self.eps: float = float(config.eps)  # added to the denominator

    def step(self, lr: float | None = None) -> None:
        """One Adam update of every parameter, in place."""
        lr = self.learning_rate if lr is None else float(lr)
        self._check_gradients()
        beta1 = float(self.beta1)
        beta2 = float(self.beta2)
        eps = float(self.eps)
        t = self.step_count + 1
        step_size = lr / (1.0 - beta1**t)
        bias_correction2_sqrt = math.sqrt(1.0 - beta2**t)
        state = self._state
        for p, exp_avg, exp_avg_sq, update, scaled in zip(
            self.params,
            state["exp_avg"],
            state["exp_avg_sq"],
            self._update,
            self._scaled,
            strict=True,
        ):
            grad = p.grad
            # torch: exp_avg.lerp_(g, 1 - beta1), i.e. m += (1 - b1) * (g - m)
            np.subtract(grad, exp_avg, out=update)
            update *= 1.0 - beta1
            exp_avg += update
            # torch: exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2)
            exp_avg_sq *= beta2
            np.multiply(grad, 1.0 - beta2, out=update)
            update *= grad
            exp_avg_sq += update
            # torch: denom = sqrt(v) / sqrt(bc2) + eps;  p.addcdiv_(m, denom, value=-step_size)
            np.sqrt(exp_avg_sq, out=update)
            update /= bias_correction2_sqrt
            update += eps
            np.multiply(exp_avg, step_size, out=scaled)
            np.divide(scaled, update, out=update)
            p.data -= update
        self.step_count = t


_OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "rmsprop": RMSprop, "adam": Adam}


def build_optimizer(params: Iterable[Parameter], config: OptimizerConfig) -> Optimizer:
    """The optimizer named by config.name ("sgd", "rmsprop" or "adam") over params."""
    cls = _OPTIMIZERS.get(config.name)
    if cls is None:
        raise ValueError(f"optimizer: expected one of {OPTIMIZER_NAMES}, got {config.name!r}")
    return cls(params, config)


# --------------------------------------------------------------------------------------------
# Learning-rate schedules
# --------------------------------------------------------------------------------------------


def learning_rate_at(schedule: ScheduleConfig | None, base_lr: float, step: int) -> float:
    """The learning rate of the update that follows `step` completed updates (0 = the first).

    constant: base; step: base * gamma ** (step // step_size); exponential: base * gamma ** step;
    cosine: min_lr + (base - min_lr) * (1 + cos(pi * min(step, T) / T)) / 2 with T = total_steps
    (torch's StepLR, ExponentialLR and CosineAnnealingLR closed forms; cosine stays at min_lr
    after T instead of rising again). None means constant.
    """
    base = float(base_lr)
    if schedule is None or schedule.kind == "constant":
        return base
    if step < 0:
        raise ValueError(f"learning_rate_at: expected a step >= 0, got {step}")
    kind = schedule.kind
    if kind == "step":
        return _times_power(base, float(schedule.gamma), step // int(schedule.step_size))
    if kind == "exponential":
        return _times_power(base, float(schedule.gamma), step)
    if kind == "cosine":
        total = int(schedule.total_steps)
        low = float(schedule.min_lr)
        return low + (base - low) * (1.0 + math.cos(math.pi * min(step, total) / total)) / 2.0
    raise ValueError(f"schedule kind: expected one of {SCHEDULE_KINDS}, got {kind!r}")


def _times_power(base: float, gamma: float, exponent: int) -> float:
    """base * gamma ** exponent, infinite instead of OverflowError for gamma > 1."""
    try:
        return base * gamma**exponent
    except OverflowError:
        return math.copysign(math.inf, base)


# --------------------------------------------------------------------------------------------
# Gradient clipping
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class ClipReport:
    """What clip_gradients saw and did."""

    clipped: bool  # whether any gradient value changed
    norm_before: float  # global L2 norm of all gradients before clipping (inf/nan if non-finite)
    norm_after: float  # global L2 norm after clipping (== norm_before when nothing changed)
    fraction: float  # by value: fraction of values changed; by norm: 1 - scale; else 0
    norms: list[float]  # L2 norm of each gradient array, before clipping


def clip_gradients(grads: Sequence[np.ndarray], clip: ClipConfig | None) -> ClipReport:
    """Clip the gradient arrays in place and report their norms.

    clip None: nothing changes, only the norms are measured. "value": np.clip(g, -c, c).
    "norm": torch.nn.utils.clip_grad_norm_ rules, scale = c / (norm + 1e-6), applied only when
    it is < 1. Non-finite gradients are never clipped: norm_before is then inf or nan, which is
    how the trainer detects divergence (math.isfinite(report.norm_before)). The squared norms
    are summed in the gradients' dtype, so float32 gradients beyond ~1e19 also report inf.
    """
    squares = [float(np.vdot(g, g)) for g in grads]  # vdot flattens; real input: sum of g^2
    norms = [math.sqrt(s) for s in squares]
    total = math.sqrt(sum(squares))
    if clip is None or not math.isfinite(total):
        return ClipReport(False, total, total, 0.0, norms)
    threshold = float(clip.threshold)
    if clip.kind == "value":
        changed = 0
        for g, norm in zip(grads, norms, strict=True):
            if norm > threshold:  # max |g| <= ||g||, so smaller arrays have nothing to clip
                over = int(np.count_nonzero(np.abs(g) > threshold))
                if over:
                    np.clip(g, -threshold, threshold, out=g)
                    changed += over
        if not changed:
            return ClipReport(False, total, total, 0.0, norms)
        after = math.sqrt(sum(float(np.vdot(g, g)) for g in grads))
        size = sum(int(g.size) for g in grads)
        return ClipReport(True, total, after, changed / size, norms)
    if clip.kind == "norm":
        scale = threshold / (total + NORM_CLIP_EPS)
        if scale >= 1.0:
            return ClipReport(False, total, total, 0.0, norms)
        for g in grads:
            g *= scale
        return ClipReport(True, total, total * scale, 1.0 - scale, norms)
    raise ValueError(f"clip kind: expected one of {CLIP_KINDS}, got {clip.kind!r}")
