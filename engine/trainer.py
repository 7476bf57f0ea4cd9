"""The trainer: one run of one network on one dataset, step by step.

`Trainer.train_step` is the whole training step on one screen: forward, loss, backward, clip,
update, record. `Trainer.train` repeats it until told to stop and reports through one callback
(tests pass `list.append`). Everything a report carries is a plain float or list: the server
reads numbers, never live arrays.
"""

from __future__ import annotations

import io
import json
import math
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import numpy as np
from pydantic import ValidationError

from engine import cost, inspect, stats
from engine.config import (
    ConfigError,
    HyperparameterUpdate,
    RunConfig,
    errors_from_validation,
    parse_config,
)
from engine.data import Dataset, DatasetError, apply_features, make_dataset
from engine.network import Network, WeightsError
from engine.optim import build_optimizer, clip_gradients, learning_rate_at

__all__ = ["Report", "StepResult", "Trainer", "WeightsError"]

_OPTIMIZER_FIELDS = ("learning_rate", "momentum", "nesterov", "beta1", "beta2", "eps", "alpha")
EVAL_BUDGET = 0.02  # time-based evaluations take at most this share of training time
MAX_EVAL_AGE = 1.0  # seconds: what the page shows is never evaluated longer ago than this
GOOD_WEIGHTS_EVERY = 256  # steps between copies of the last good (finite) weights
DIVERGENCE_UPDATE = 1e30  # lr * |g| above this is an explosion even if still finite


@dataclass
class StepResult:
    """What one training step did."""

    step: int  # steps completed after this one
    loss: float  # training loss of the batch: data loss + regularization penalty
    data_loss: float  # the loss of the predictions alone
    grad_norm: float  # global L2 norm of the gradients before clipping
    clipped: bool  # whether clipping changed the gradients
    clip_fraction: float  # by value: share of values clipped; by norm: 1 - scale
    diverged: str | None = None  # why the run stopped on a non-finite number, if it did
    early_stopped: bool = False  # whether early stopping ended the run at this step


@dataclass
class Report:
    """The run's state at one moment, merged over the steps since the previous report."""

    step: int
    epoch: int
    loss: float | None  # loss over the whole training set at eval_step
    test_loss: float | None  # loss over the test set at eval_step
    accuracy: float | None  # None for regression
    test_accuracy: float | None
    batch_loss: float | None  # mean of the batch losses since the previous report
    learning_rate: float
    steps_per_second: float
    eval_step: int | None  # the step the four evaluation numbers belong to
    max_grad_norm: float  # largest global gradient norm since the previous report
    clip_count: int  # steps whose gradients were clipped since the previous report
    best_step: int | None  # early stopping: the step with the lowest test loss so far
    layers: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-able plain data (non-finite numbers become None)."""
        out = {name: getattr(self, name) for name in _REPORT_SCALARS}
        for name in _REPORT_FLOATS:
            value = out[name]
            if value is not None and not math.isfinite(value):
                out[name] = None
        out["layers"] = self.layers  # built from finite-checked floats by engine.stats
        out["events"] = [_finite(e) for e in self.events]
        return out


_REPORT_SCALARS = (
    "step",
    "epoch",
    "loss",
    "test_loss",
    "accuracy",
    "test_accuracy",
    "batch_loss",
    "learning_rate",
    "steps_per_second",
    "eval_step",
    "max_grad_norm",
    "clip_count",
    "best_step",
)
_REPORT_FLOATS = ("loss", "test_loss", "accuracy", "test_accuracy", "batch_loss", "max_grad_norm")


def _finite(value: Any) -> Any:
    """Replace NaN/Inf anywhere in nested data by None, so nothing non-finite is stored."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


class Trainer:
    """Trains one network built from a RunConfig on its dataset, deterministically from the seed."""

    def __init__(
        self,
        config: RunConfig | dict[str, Any],
        dataset: Dataset | None = None,
        uploads: Callable[[str], Any] | None = None,
    ) -> None:
        self.config: RunConfig = parse_config(config)  # current config; PATCHes are written here
        if dataset is None and (shape := cost.data_shape(self.config)) is not None:
            cost.check(cost.estimate(self.config, shape))  # refused before any array exists
        if dataset is None:
            try:
                dataset = make_dataset(self.config.dataset, self.config.seed, uploads)
            except DatasetError as exc:
                raise ConfigError.single(exc.field, exc.message) from None
        self.dataset: Dataset = dataset  # raw train/test split, as generated
        self.dtype = np.dtype(self.config.dtype)  # float32 for speed, float64 for checks
        self.features: list[str] = self._resolve_features()  # Playground features actually used
        self.x_train = self._inputs(dataset.x_train)  # (n, inputs...) network inputs
        self.x_test = self._inputs(dataset.x_test)  # (m, inputs...)
        self.y_train = self._targets(dataset.y_train)  # (n, outputs) or (n,) class labels
        self.y_test = self._targets(dataset.y_test)  # (m, outputs) or (m,)
        # parameters, work and memory, checked before the network exists; sizes eval chunks
        self.cost = cost.check(cost.estimate(self.config, self._data_shape()))
        self._build()

    # ------------------------------------------------------------------ set-up
    def _resolve_features(self) -> list[str]:
        """The config's features for 1-D/2-D data (defaults fit the data); none for others."""
        data = self.dataset
        if data.is_image or data.x_train.shape[1] not in (1, 2):
            return []
        chosen = list(self.config.features)
        if "features" not in self.config.model_fields_set and data.x_train.shape[1] == 1:
            chosen = ["x1"]
        try:
            apply_features(data.x_train[:1], chosen)
        except DatasetError as exc:
            raise ConfigError.single("features", exc.message) from None
        return chosen

    def _inputs(self, raw: np.ndarray) -> np.ndarray:
        """Raw dataset inputs -> network inputs in the training dtype."""
        raw = np.asarray(raw, dtype=np.float64)
        x = apply_features(raw, self.features) if self.features else raw
        return np.ascontiguousarray(x, dtype=self.dtype)

    def _data_shape(self) -> cost.DataShape:
        """The data's sizes, for the cost estimate."""
        raw = self.dataset.x_train
        return cost.DataShape(
            self.x_train.shape[1:], math.prod(raw.shape[1:]), len(self.x_train), len(self.x_test)
        )

    def _output_spec(self) -> tuple[str, float]:
        """How labels become targets: ("onehot"|"labels"|"pm1"|"01"|"values", threshold)."""
        data, cfg = self.dataset, self.config
        last = cfg.layers[-1]
        units, where = last.units, f"layers[{len(cfg.layers) - 1}].units"
        if data.task == "regression":
            if cfg.loss != "mse":
                raise ConfigError.single("loss", f"regression data needs 'mse', got {cfg.loss!r}")
            outputs = data.y_train.shape[1] if data.y_train.ndim == 2 else 1
            if units != outputs:
                raise ConfigError.single(
                    where, f"regression output needs {outputs} unit(s), got {units}"
                )
            return "values", 0.0
        classes = data.num_classes
        if cfg.loss == "cross_entropy":
            if units != classes:
                raise ConfigError.single(
                    where, f"cross_entropy needs one unit per class ({classes}), got {units}"
                )
            return "labels", 0.0
        if units == 1 and classes == 2:
            if cfg.loss == "bce" or last.activation == "sigmoid":
                return "01", 0.5
            return "pm1", 0.0
        if units != classes:
            hint = " (or 1 unit for two classes)" if classes == 2 else ""
            raise ConfigError.single(
                where, f"the output needs {classes} units for {classes} classes{hint}, got {units}"
            )
        return "onehot", 0.0

    def _targets(self, labels: np.ndarray) -> np.ndarray:
        """Labels or values as the loss wants them (Playground: -1/+1 for tanh with mse)."""
        kind, _ = self._output_spec()
        if kind == "values":
            return np.asarray(labels, dtype=self.dtype).reshape(len(labels), -1)
        labels = np.asarray(labels, dtype=np.int64)
        if kind == "labels":
            return labels
        if kind == "pm1":
            return (2.0 * labels - 1.0).astype(self.dtype).reshape(-1, 1)
        if kind == "01":
            return labels.astype(self.dtype).reshape(-1, 1)
        return np.eye(self.dataset.num_classes, dtype=self.dtype)[labels]

    def _build(self) -> None:
        """Network, optimizer and counters from the seed (also what reset() does)."""
        cfg = self.config
        self._init_rng = np.random.default_rng([cfg.seed, 1])  # weights, then dropout masks
        self._batch_rng = np.random.default_rng([cfg.seed, 2])  # batch order
        self.network = Network(
            cfg.layers, self.x_train.shape[1:], cfg.loss, cfg.init, self._init_rng, self.dtype
        )
        self.optimizer = build_optimizer([self.network.flat], cfg.optimizer)  # one flat array
        self._weight_params = [  # what l1/l2 penalise: weights, not biases or batchnorm
            p for name, p in self.network.named_parameters() if name.endswith(".W")
        ]
        self._slices = self.network.param_slices  # (layer index, slice of the flat array)
        self.step = 0  # completed training steps
        self.epoch = 0  # completed passes over the training set
        self.diverged: str | None = None  # why training stopped on a non-finite number
        self.stopped_early = False  # whether early stopping ended the run
        self._order = np.arange(len(self.x_train))  # sample order of the current epoch
        self._cursor = len(self.x_train)  # next sample in _order; past the end = new epoch
        self._xb, self._yb = self.x_train, self.y_train  # the epoch's shuffled copies
        self._last_update_norms: list[float] | None = None  # per layer, of the last report step
        self._want_update = False  # measure the next step's update (for update_ratio)
        self._update_step = -1  # the step whose update _last_update_norms measured
        self._last_clip_layers: set[int] = set()  # layers whose gradients the last step clipped
        self._eval_due = 0.0  # perf_counter time of the next time-based evaluation
        self._eval_cost: float | None = None  # smoothed seconds one evaluation takes
        # early stopping
        self.best_step: int | None = None  # step of the lowest test loss seen
        self.best_loss = math.inf  # that loss
        self._best_weights: dict[str, np.ndarray] | None = None  # its weights
        self._bad_evals = 0  # evaluations since the last improvement
        self._last_good: dict[str, np.ndarray] = self.network.get_weights()  # finite weights
        self._last_good_step = 0  # the step they belong to
        self._last_eval: dict[str, float | None] | None = None  # latest evaluate()
        self._last_eval_step: int | None = None
        self._interval_reset()

    def _interval_reset(self) -> None:
        """Start a new reporting interval."""
        self._int_steps = 0  # steps since the last report
        self._int_loss = 0.0  # sum of their batch losses
        self._int_max_norm = 0.0  # largest global gradient norm among them
        self._int_clips = 0  # how many of them clipped
        self._int_layer_max = [0.0] * len(self.network.layers)  # per layer, max grad norm
        self._int_events: list[dict[str, Any]] = []  # events raised among them

    # ------------------------------------------------------------------ training
    def _next_batch(self) -> tuple[np.ndarray, np.ndarray]:
        """The next mini-batch of the epoch; reshuffles when the epoch is used up."""
        size = min(self.config.batch_size, len(self.x_train))
        if self._cursor + size > len(self.x_train):
            if self.step > 0:
                self.epoch += 1
            self._order = self._batch_rng.permutation(len(self.x_train))
            self._xb = self.x_train[self._order]  # (n, inputs...) this epoch's order
            self._yb = self.y_train[self._order]
            self._cursor = 0
        start, self._cursor = self._cursor, self._cursor + size
        return self._xb[start : self._cursor], self._yb[start : self._cursor]

    def train_step(self) -> StepResult:
        """One step: forward, loss, backward, clip, update, record."""
        net, cfg = self.network, self.config
        x, y = self._next_batch()  # (batch, inputs...), (batch, outputs)
        net.forward(x)  # forward: every layer caches input, preactivation and output
        data_loss, grad_loss = net.loss(net.loss_input(), y)  # loss and dL/d(prediction)
        net.backward(grad_loss)  # backward: every param.grad = dL/dparam
        penalty = self._regularize() if cfg.regularization.kind != "none" else 0.0  # l1/l2
        grad = net.gather_grads()  # (parameters,) every gradient in one flat array
        clip = clip_gradients([grad], cfg.gradient_clip)  # clip, and measure the global norm
        opt = cfg.optimizer
        lr = opt.learning_rate  # the schedule's rate for this step (constant: the base rate)
        if opt.schedule.kind != "constant":
            lr = learning_rate_at(opt.schedule, lr, self.step)
        if not (math.isfinite(data_loss) and math.isfinite(clip.norm_before)) or (
            clip.norm_after * lr > DIVERGENCE_UPDATE
        ):
            return self._diverge(data_loss, clip.norm_before)  # keep the last finite weights
        before = net.flat.data.copy() if self._want_update else None
        self.optimizer.step(lr)  # update: every weight -= lr * (direction from its gradient)
        self.step += 1  # record
        self._int_steps += 1
        self._int_loss += data_loss + penalty
        self._int_max_norm = max(self._int_max_norm, clip.norm_before)
        if clip.clipped:
            self._int_clips += 1
            self._note_clip(clip)
        if before is not None:
            self._measure_update(before)
        elif self._int_steps % 8 == 1:  # sampled; the step before each report is always measured
            self._fold_layer_norms()
        result = StepResult(
            self.step, data_loss + penalty, data_loss, clip.norm_before, clip.clipped, clip.fraction
        )
        es = cfg.early_stopping
        if es is not None and self.step % es.eval_every == 0:
            result.early_stopped = self._early_stopping_check()
        return result

    def _regularize(self) -> float:
        """Add the l1/l2 penalty's gradient to every weight gradient; return the penalty."""
        reg = self.config.regularization
        if reg.kind == "none" or reg.rate == 0.0:
            return 0.0
        penalty = 0.0
        for p in self._weight_params:
            if reg.kind == "l2":  # rate/2 * sum w^2 -> rate * w
                penalty += 0.5 * reg.rate * float(np.dot(p.data.ravel(), p.data.ravel()))
                p.grad = p.grad + reg.rate * p.data
            else:  # l1: rate * sum |w| -> rate * sign(w)
                penalty += reg.rate * float(np.abs(p.data).sum())
                p.grad = p.grad + reg.rate * np.sign(p.data)
        return penalty

    def _fold_layer_norms(self) -> None:
        """Keep each layer's largest gradient norm of the interval (from the flat gradient)."""
        grad = self.network.flat.grad
        per_layer = [0.0] * len(self.network.layers)
        for index, part in self._slices:
            g = grad[part]
            per_layer[index] += float(np.dot(g, g))
        maxima = self._int_layer_max
        for index, sq in enumerate(per_layer):
            if sq > maxima[index] ** 2:
                maxima[index] = math.sqrt(sq)

    def _measure_update(self, before: np.ndarray) -> None:
        """Per-layer L2 norm of the update this step made (for update/weight ratios)."""
        delta = (self.network.flat.data - before).astype(np.float64)  # (parameters,)
        sq = [0.0] * len(self.network.layers)
        for index, part in self._slices:
            d = delta[part]
            sq[index] += float(np.dot(d, d))
        self._last_update_norms = [math.sqrt(s) for s in sq]
        self._update_step = self.step
        self._want_update = False
        self._fold_layer_norms()

    def _note_clip(self, clip: Any) -> None:
        """Record which layers were clipped and raise one clip event per interval."""
        threshold = self.config.gradient_clip.threshold  # type: ignore[union-attr]
        if self.config.gradient_clip.kind == "norm":  # type: ignore[union-attr]
            self._last_clip_layers = {index for index, _ in self._slices}
        else:
            grad = self.network.flat.grad
            self._last_clip_layers = {
                index
                for index, part in self._slices
                if grad[part].size and float(np.abs(grad[part]).max()) >= threshold
            }
        if not any(e["type"] == "clip" for e in self._int_events):
            self._int_events.append(
                {
                    "type": "clip",
                    "step": self.step,
                    "kind": self.config.gradient_clip.kind,  # type: ignore[union-attr]
                    "threshold": threshold,
                    "norm_before": clip.norm_before,
                    "norm_after": clip.norm_after,
                    "fraction": clip.fraction,
                    "message": (
                        f"gradient clipped by {self.config.gradient_clip.kind}: "  # type: ignore[union-attr]
                        f"norm {clip.norm_before:.3g} -> {clip.norm_after:.3g}"
                    ),
                }
            )

    def _keep_good_weights(self) -> None:
        """Remember the current weights as the last good ones if every value is finite."""
        weights = self.network.get_weights()
        if all(np.isfinite(a).all() for a in weights.values()):
            self._last_good, self._last_good_step = weights, self.step

    def _diverge(self, data_loss: float, grad_norm: float) -> StepResult:
        """Stop on a non-finite loss or gradient; roll back to the last good weights."""
        where = inspect.first_non_finite(self.network)
        what = "loss" if not math.isfinite(data_loss) else "gradient norm"
        value = data_loss if what == "loss" else grad_norm
        self.network.set_weights(self._last_good)
        self.optimizer = build_optimizer([self.network.flat], self.config.optimizer)
        self._last_eval = None
        if where:
            where_text = f"; {where} went non-finite first"
        else:
            where = inspect.largest_gradient(self.network)
            where_text = f"; {where} had the largest gradient" if where else ""
        self.diverged = (
            f"the {what} became {value} at step {self.step + 1}"
            + where_text
            + f". The last good weights (step {self._last_good_step}) are kept and the optimizer "
            + "state is cleared. Try a lower learning rate, gradient clipping or batch norm."
        )
        if math.isfinite(value) and value > 0:
            self.diverged = self.diverged.replace(f"became {value}", f"exploded to {value:.3g}", 1)
        self._int_events.append(
            {"type": "diverged", "step": self.step, "layer": where, "message": self.diverged}
        )
        return StepResult(self.step, data_loss, data_loss, grad_norm, False, 0.0, self.diverged)

    def _early_stopping_check(self) -> bool:
        """Evaluate; remember the best step; True when patience has run out."""
        es = self.config.early_stopping
        ev = self.evaluate()
        watched = ev["test_loss"] if ev["test_loss"] is not None else ev["loss"]
        if watched is not None and watched < self.best_loss - es.min_delta:  # type: ignore[union-attr]
            self.best_loss, self.best_step, self._bad_evals = watched, self.step, 0
            self._best_weights = self.network.get_weights()
            return False
        self._bad_evals += 1
        if self._bad_evals < es.patience:  # type: ignore[union-attr]
            return False
        self.stopped_early = True
        restored = bool(es.restore_best and self._best_weights is not None)  # type: ignore[union-attr]
        if restored:
            self.network.set_weights(self._best_weights)  # type: ignore[arg-type]
            self._last_eval = None
        self._int_events.append(
            {
                "type": "early_stop",
                "step": self.step,
                "best_step": self.best_step,
                "best_loss": self.best_loss,
                "restored": restored,
                "message": (
                    f"no improvement of the test loss for {es.patience} evaluations; "  # type: ignore[union-attr]
                    f"best step {self.best_step} (loss {self.best_loss:.4g})"
                    + ("; its weights were restored" if restored else "")
                ),
            }
        )
        return True

    def train(
        self,
        steps: int | None = None,
        on_report: Callable[[Report], Any] | None = None,
        should_stop: Callable[[], bool] | None = None,
        report_interval: float = 1 / 30,
        pace: float | None = None,
    ) -> str:
        """Train until `steps` are done, should_stop(), divergence or early stop.

        Returns "steps", "stopped", "diverged" or "early_stopped". Reports go to on_report in this
        thread at most every report_interval seconds, and once at the end. With `pace`, at most
        that many steps per second (a pace a person can watch); without, as fast as it can.
        """
        if pace is not None and not (math.isfinite(pace) and pace > 0):
            raise ValueError(f"pace: expected a positive number of steps per second, got {pace!r}")
        if self.diverged or self.stopped_early:
            self.diverged, self.stopped_early, self._bad_evals = None, False, 0
        start = time.perf_counter()
        self._rate_clock = (start, self.step)
        next_report = start + report_interval
        with np.errstate(all="ignore"):  # overflow is caught as divergence, not warned about
            reason = self._loop(steps, on_report, should_stop, report_interval, next_report, pace)
        if on_report is not None:
            if steps is not None and reason != "diverged":
                self.evaluate()  # a bounded run's last report is exact: evaluated at its last step
            on_report(self.report())
        return reason

    def _loop(
        self,
        steps: int | None,
        on_report: Callable[[Report], Any] | None,
        should_stop: Callable[[], bool] | None,
        report_interval: float,
        next_report: float,
        pace: float | None,
    ) -> str:
        """The body of train(): step until a stop condition; returns the reason."""
        done, reason = 0, "steps"
        started = time.perf_counter()
        # At a slow pace nearly every step is followed by a report: measure each step's update
        # then, rather than one step late (a lag of a whole second at 1 step/s).
        measure_each = pace is not None and 1 / pace >= report_interval / 2
        while steps is None or done < steps:
            if should_stop is not None and should_stop():
                reason = "stopped"
                break
            if pace is not None and not self._wait_for_pace(started + done / pace, should_stop):
                reason = "stopped"
                break
            if measure_each or (steps is not None and done == steps - 1):
                self._want_update = True  # the last step of a bounded run reports its update
            result = self.train_step()
            if result.diverged:
                reason = "diverged"
                break
            done += 1
            if self.step % GOOD_WEIGHTS_EVERY == 0:
                self._keep_good_weights()
            if result.early_stopped:
                reason = "early_stopped"
                break
            if on_report is None or done == steps:  # train() reports the last step itself
                continue
            now = time.perf_counter()
            # a paced run reports before it waits, rather than one wait late
            if now >= next_report or (pace is not None and started + done / pace >= next_report):
                if self._update_step == self.step:  # this step measured its update
                    next_report = now + report_interval
                    on_report(self.report())
                else:
                    self._want_update = True  # the next step measures its update, then reports
        return reason

    @staticmethod
    def _wait_for_pace(due: float, should_stop: Callable[[], bool] | None) -> bool:
        """Sleep until `due` (perf_counter time), waking to check should_stop; False if told
        to stop. Waits shorter than a millisecond are skipped: the steps then run in small
        bursts rather than with one sleep each, which the eye cannot tell apart."""
        while True:
            ahead = due - time.perf_counter()
            if ahead <= 0.001:
                return True
            time.sleep(min(ahead, 0.05))
            if should_stop is not None and should_stop():
                return False

    # ------------------------------------------------------------------ observing
    def evaluate(self) -> dict[str, float | None]:
        """Loss and accuracy on the whole train and test sets; no training state changes."""
        result: dict[str, float | None] = {}
        with self.observing():
            for prefix, x, y in (
                ("", self.x_train, self.y_train),
                ("test_", self.x_test, self.y_test),
            ):
                loss, accuracy = self._score(x, y)
                result[prefix + "loss"] = loss
                result[prefix + "accuracy"] = accuracy
        self._last_eval, self._last_eval_step = result, self.step
        return result

    def _score(self, x: np.ndarray, y: np.ndarray) -> tuple[float | None, float | None]:
        """Mean loss and accuracy over (x, y) in eval mode (chunked)."""
        if len(x) == 0:
            return None, None
        net = self.network
        total_loss, correct = 0.0, 0
        kind, threshold = self._output_spec()
        chunk = self.cost.eval_chunk  # as many samples as fit in the evaluation memory budget
        for start in range(0, len(x), chunk):
            xb, yb = x[start : start + chunk], y[start : start + chunk]
            out = net.forward(xb)
            loss, _ = net.loss(net.loss_input(), yb)
            total_loss += loss * len(xb)
            if kind in ("labels", "onehot"):
                labels = yb if kind == "labels" else yb.argmax(axis=1)
                correct += int(np.sum(out.argmax(axis=1) == labels))
            elif kind in ("pm1", "01"):
                correct += int(np.sum((out[:, 0] > threshold) == (yb[:, 0] > threshold)))
        accuracy = None if kind == "values" else correct / len(x)
        loss = total_loss / len(x)
        return (loss if math.isfinite(loss) else None), accuracy

    @contextmanager
    def observing(self) -> Any:
        """Eval mode, with the training caches and gradients put back afterwards."""
        saved = inspect.save_caches(self.network)
        self.network.train(False)
        try:
            yield self.network
        finally:
            self.network.train(True)
            inspect.restore_caches(self.network, saved)

    def report(self) -> Report:
        """The run's state now; merges the steps since the previous report and starts a new one."""
        now = time.perf_counter()
        clock_start, clock_step = getattr(self, "_rate_clock", (now, self.step))
        elapsed = now - clock_start
        rate = (self.step - clock_step) / elapsed if elapsed > 0 else 0.0
        self._rate_clock = (now, self.step)
        self._maybe_evaluate(elapsed)
        ev = self._last_eval or {}
        updates = self._last_update_norms
        layers = []
        for index, layer in enumerate(self.network.layers):
            if not stats.observed(layer):
                continue
            entry = stats.layer_statistics(
                layer,
                None if updates is None else updates[index],
                index in self._last_clip_layers and self._int_clips > 0,
            )
            entry["max_grad_norm"] = max(self._int_layer_max[index], entry["grad_norm"] or 0.0)
            layers.append(entry)
        if all(math.isfinite(e["weight_norm"] or math.inf) for e in layers):
            self._keep_good_weights()
        elif not self.diverged:  # a slow overflow that no single step showed
            self._diverge(math.inf, math.inf)
        cfg = self.config
        report = Report(
            step=self.step,
            epoch=self.epoch,
            loss=ev.get("loss"),
            test_loss=ev.get("test_loss"),
            accuracy=ev.get("accuracy"),
            test_accuracy=ev.get("test_accuracy"),
            batch_loss=self._int_loss / self._int_steps if self._int_steps else None,
            learning_rate=learning_rate_at(
                cfg.optimizer.schedule, cfg.optimizer.learning_rate, self.step
            ),
            steps_per_second=rate,
            eval_step=self._last_eval_step if self._last_eval else None,
            max_grad_norm=self._int_max_norm,
            clip_count=self._int_clips,
            best_step=self.best_step,
            layers=layers,
            events=self._int_events,
        )
        self._interval_reset()
        return report

    def _maybe_evaluate(self, elapsed: float) -> None:
        """Re-evaluate when stale, spending about EVAL_BUDGET of the training time on it but
        never letting the numbers grow older than MAX_EVAL_AGE. The cost is smoothed, so one
        evaluation slowed by a busy machine does not postpone the next ones for seconds."""
        if self._last_eval is not None and self._last_eval_step == self.step:
            return
        now = time.perf_counter()
        if self._last_eval is None or now >= self._eval_due:
            self.evaluate()
            cost = time.perf_counter() - now
            smooth = self._eval_cost
            self._eval_cost = cost if smooth is None else 0.8 * smooth + 0.2 * cost
            self._eval_due = now + min(self._eval_cost / EVAL_BUDGET, MAX_EVAL_AGE)

    def snapshot(self, grid_resolution: int | None = 40, compact: bool = False) -> dict[str, Any]:
        """What the page needs to redraw the network (see engine.inspect.snapshot)."""
        return inspect.snapshot(self, grid_resolution, compact)

    def trace(self, inputs: Any, targets: Any) -> dict[str, Any]:
        """Every intermediate value of one forward/backward pass; changes nothing."""
        return inspect.trace(self, inputs, targets)

    def predict(self, inputs: Any) -> np.ndarray:
        """Outputs (after the output activation) for raw inputs."""
        x = self.prepare_inputs(inputs)
        chunk = self.cost.eval_chunk  # inputs per forward pass, within the evaluation budget
        with self.observing():
            parts = [
                self.network.forward(x[start : start + chunk]).astype(np.float64)
                for start in range(0, len(x), chunk)
            ]
        return np.concatenate(parts)  # (inputs, outputs)

    def grid(self, resolution: int = 100, neuron_budget: int | None = None) -> dict[str, Any]:
        """Output and every hidden neuron over the 2-D input plane; the neuron maps coarser
        when all of them would hold more than `neuron_budget` values."""
        return inspect.grid(self, resolution, neuron_budget)

    def histograms(self, bins: int = stats.HISTOGRAM_BINS) -> dict[str, Any]:
        """Gradient and weight histograms per observed layer."""
        return {
            layer.name: stats.layer_histograms(layer, bins)
            for layer in self.network.layers
            if stats.observed(layer)
        }

    def prepare_inputs(self, inputs: Any) -> np.ndarray:
        """Raw inputs (points, x values or images) -> network inputs; ValueError if they don't fit."""
        raw_shape = self.dataset.x_train.shape[1:]
        try:
            raw = np.asarray(inputs, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError("inputs: expected a list of rows of numbers") from None
        if raw.ndim == 1 and len(raw_shape) == 1:
            raw = raw.reshape(1, -1) if raw.shape[0] == raw_shape[0] else raw.reshape(-1, 1)
        if raw.ndim >= 2 and raw.shape[1:] != raw_shape and raw[0].size == math.prod(raw_shape):
            raw = raw.reshape((len(raw), *raw_shape))  # flattened images
        if raw.shape[1:] != raw_shape:
            raise ValueError(
                f"inputs: expected rows of shape {list(raw_shape)}, got {list(raw.shape[1:])}"
            )
        if len(raw) == 0:
            raise ValueError("inputs: expected at least one row")
        if not np.all(np.isfinite(raw)):
            raise ValueError("inputs: contains NaN or infinite values")
        return self._inputs(raw)

    def prepare_targets(self, targets: Any, count: int) -> np.ndarray:
        """Raw labels or values -> what the loss wants; ValueError if they don't fit."""
        try:
            raw = np.asarray(targets, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError("targets: expected a list of numbers") from None
        if raw.ndim == 2 and raw.shape[1] == 1 and self.dataset.task != "regression":
            raw = raw[:, 0]
        if len(raw) != count:
            raise ValueError(f"targets: expected {count} values (one per input), got {len(raw)}")
        if not np.all(np.isfinite(raw)):
            raise ValueError("targets: contains NaN or infinite values")
        if self.dataset.task != "regression":
            classes = self.dataset.num_classes
            labels = raw.astype(np.int64)
            if np.any(labels != raw) or np.any((labels < 0) | (labels >= classes)):
                raise ValueError(f"targets: expected class labels 0..{classes - 1}")
            return self._targets(labels)
        return self._targets(raw)

    # ------------------------------------------------------------------ weights and state
    def get_weights(self) -> dict[str, np.ndarray]:
        """Copies of every parameter and buffer by stable name ("0.W", "0.b", ...)."""
        return self.network.get_weights()

    def set_weights(self, weights: dict[str, Any], partial: bool = False) -> None:
        """Replace weights by name (all of them unless partial); WeightsError names the array."""
        self.network.set_weights(weights, partial=partial)
        self._last_good, self._last_good_step = self.network.get_weights(), self.step
        self._last_eval = None

    def save_weights(self, file: str | BinaryIO) -> None:
        """Write every parameter and buffer to an .npz file."""
        np.savez(file, **self.network.get_weights())

    def load_weights(self, file: str | BinaryIO) -> None:
        """Read weights from an .npz file written by save_weights (or with the same names)."""
        with np.load(file, allow_pickle=False) as archive:
            self.set_weights({name: archive[name] for name in archive.files})

    def update_hyperparameters(
        self, update: HyperparameterUpdate | dict[str, Any]
    ) -> dict[str, dict[str, Any]]:
        """Change learning rate, batch size, regularization, clipping or optimizer settings.

        The whole update is validated against the current config first (ConfigError naming the
        field), then applied at once: a bad field never leaves half an update behind.
        """
        try:
            if not isinstance(update, HyperparameterUpdate):
                update = HyperparameterUpdate.model_validate(update)
            given = {name: getattr(update, name) for name in update.model_fields_set}
            optimizer_fields = {
                k: v for k, v in given.items() if k in _OPTIMIZER_FIELDS and v is not None
            }
            candidate = self.config.model_dump()
            candidate["optimizer"].update(optimizer_fields)
            for name in ("batch_size", "regularization"):
                if given.get(name) is not None:
                    candidate[name] = given[name]
            if "gradient_clip" in given:
                candidate["gradient_clip"] = given["gradient_clip"]
            new_config = RunConfig.model_validate(candidate)
            new_cost = cost.check(cost.estimate(new_config, self.cost.data))  # batch_size
        except ValidationError as exc:
            errors = errors_from_validation(exc)
            for error in errors:  # PATCH bodies are flat: "optimizer.momentum" -> "momentum"
                if error["field"].removeprefix("optimizer.") in _OPTIMIZER_FIELDS:
                    error["field"] = error["field"].removeprefix("optimizer.")
            raise ConfigError(errors) from None
        old_config = self.config
        changes: dict[str, dict[str, Any]] = {}
        for name in given:
            if name in _OPTIMIZER_FIELDS:
                old, new = getattr(old_config.optimizer, name), getattr(new_config.optimizer, name)
            else:
                old, new = getattr(old_config, name), getattr(new_config, name)
                old = old.model_dump() if hasattr(old, "model_dump") else old
                new = new.model_dump() if hasattr(new, "model_dump") else new
            if old != new:
                changes[name] = {"old": old, "new": new}
        self.config, self.cost = new_config, new_cost
        for name in optimizer_fields:
            self._apply_to_optimizer(name, getattr(new_config.optimizer, name))
        return changes

    def _apply_to_optimizer(self, name: str, value: Any) -> None:
        """Set one hyperparameter on the live optimizer (attribute names as in engine.optim)."""
        opt = self.optimizer
        if name == "learning_rate":
            opt.learning_rate = value
        elif name in ("beta1", "beta2") and hasattr(opt, "betas"):
            b1, b2 = opt.betas
            opt.betas = (value, b2) if name == "beta1" else (b1, value)
        elif hasattr(opt, name):
            setattr(opt, name, value)

    def reset(self) -> None:
        """Re-initialise from the seed: same first weights, step 0, empty optimizer state."""
        self._build()

    def checkpoint(self) -> bytes:
        """Weights, buffers, optimizer state, counters and RNG states as .npz bytes."""
        arrays: dict[str, np.ndarray] = {}
        for name, array in self.network.named_arrays():
            arrays[f"net/{name}"] = array
        for key, array in self.optimizer.state_dict().items():
            arrays[f"opt/{key}"] = np.asarray(array)
        arrays["batch/order"] = self._order
        meta = {
            "step": self.step,
            "epoch": self.epoch,
            "cursor": self._cursor,
            "init_rng": self._init_rng.bit_generator.state,
            "batch_rng": self._batch_rng.bit_generator.state,
            "best_step": self.best_step,
            "best_loss": self.best_loss if math.isfinite(self.best_loss) else None,
            "bad_evals": self._bad_evals,
            "config": self.config.model_dump(mode="json"),
        }
        if self._best_weights is not None:
            for name, array in self._best_weights.items():
                arrays[f"best/{name}"] = array
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        return buffer.getvalue()

    def restore(self, blob: bytes) -> None:
        """Continue exactly from a checkpoint() of a trainer with the same architecture."""
        with np.load(io.BytesIO(blob), allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        meta = json.loads(arrays.pop("meta").tobytes().decode())
        self.network.set_weights(
            {k[4:]: v for k, v in arrays.items() if k.startswith("net/")}, partial=False
        )
        self.optimizer.load_state_dict(
            {k[4:]: v for k, v in arrays.items() if k.startswith("opt/")}
        )
        best = {k[5:]: v for k, v in arrays.items() if k.startswith("best/")}
        self._best_weights = best or None
        self._order = arrays["batch/order"]
        self._xb, self._yb = self.x_train[self._order], self.y_train[self._order]
        self.step, self.epoch, self._cursor = meta["step"], meta["epoch"], meta["cursor"]
        self._init_rng.bit_generator.state = meta["init_rng"]
        self._batch_rng.bit_generator.state = meta["batch_rng"]
        self.best_step = meta["best_step"]
        self.best_loss = meta["best_loss"] if meta["best_loss"] is not None else math.inf
        self._bad_evals = meta["bad_evals"]
        self._last_good, self._last_good_step = self.network.get_weights(), self.step
        self._last_eval = None

    def param_count(self) -> int:
        """Number of trainable scalars."""
        return self.network.param_count()

    def flops_per_step(self) -> int:
        """Rough multiply-adds of one training step (forward + backward ~ 3x forward)."""
        return self.cost.flops_per_step
