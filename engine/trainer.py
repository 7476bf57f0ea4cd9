"""The trainer: one run of one network on one dataset, step by step.

The trainer keeps the model (network), the optimizer, the step loop and the checkpoints.
`Trainer.train_step` is the whole training step on one screen: forward, loss, backward, clip,
update, record. `Trainer.train` repeats it until told to stop and reports through one callback
(tests pass `list.append`). What a report says is the recorder's (engine.recorder): the statistics
of the steps since the previous report, the evaluation budget, the update ratios, the rate. What
the page draws of the network is engine.introspect's. Everything a report carries is a plain
float or list: the server reads numbers, never live arrays.
"""

from __future__ import annotations

import io
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
from pydantic import ValidationError

from engine import cost, introspect, stats
from engine.config import (
    ConfigError,
    HyperparameterUpdate,
    RunConfig,
    errors_from_validation,
    parse_config,
)
from engine.data import Dataset, DatasetError, make_dataset
from engine.encoding import Encoding
from engine.network import Network, WeightsError
from engine.optim import build_optimizer, clip_gradients
from engine.recorder import Recorder, Report, finite

__all__ = ["Report", "StepResult", "Trainer", "WeightsError"]

_OPTIMIZER_FIELDS = ("learning_rate", "momentum", "nesterov", "beta1", "beta2", "eps", "alpha")
GOOD_WEIGHTS_EVERY = 256  # steps between copies of the last good (finite) weights
DIVERGENCE_UPDATE = 1e30  # lr * |g| above this is an explosion even if still finite
SPLITS = ("train", "test", "both")  # what Trainer.scores evaluates


# `make mutate` (docs/testing.md) mutates only the training step, Trainer.train_step to
# Trainer._early_stopping_check (what the step records is engine/recorder.py's, mutated there):
# set-up, the run loop, reports, evaluation and I/O are left out of the campaign.
# pragma: no mutate start
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


class Trainer:
    """Trains one network built from a RunConfig on its dataset, deterministically from the seed."""

    def __init__(
        self,
        config: RunConfig | dict[str, Any],
        dataset: Dataset | None = None,
        uploads: Callable[[str], Any] | None = None,
    ) -> None:
        cfg = parse_config(config)
        if dataset is None and (shape := cost.data_shape(cfg)) is not None:
            cost.check(cost.estimate(cfg, shape))  # refused before any array exists
        if dataset is None:
            try:
                dataset = make_dataset(cfg.dataset, cfg.seed, uploads)
            except DatasetError as exc:
                raise ConfigError.single(exc.field, exc.message) from None
        self.config: RunConfig = cfg  # current config; PATCHes are written here
        self.dataset: Dataset = dataset  # raw train/test split, as generated
        self.encoding = Encoding(dataset, cfg)  # features, dtype and target form of this run
        if _defaulted_features(cfg, self.encoding.features):  # 1-D data: x1, not x1 and x2
            cfg = self.config = cfg.model_copy(update={"features": self.encoding.features})
        # parameters, work and memory, checked before the network exists; sizes eval chunks
        self.cost = cost.check(cost.estimate(cfg, cost.data_shape(cfg, dataset)))
        self.x_train = self.encoding.inputs(dataset.x_train)  # (n, inputs...) network inputs
        self.x_test = self.encoding.inputs(dataset.x_test)  # (m, inputs...)
        self.y_train = self.encoding.targets(dataset.y_train)  # (n, outputs) or (n,) labels
        self.y_test = self.encoding.targets(dataset.y_test)  # (m, outputs) or (m,)
        # the run from its seed: reset() starts it again
        self._init_rng = np.random.default_rng([cfg.seed, 1])  # weights, then dropout masks
        self._batch_rng = np.random.default_rng([cfg.seed, 2])  # batch order
        self.network = Network(  # the model: layers, loss, one flat parameter array
            cfg.layers, self.x_train.shape[1:], cfg.loss, cfg.init, self._init_rng, cfg.dtype
        )
        self.optimizer = build_optimizer([self.network.flat], cfg.optimizer)  # owns the rate
        self.recorder = Recorder(self.network, time.perf_counter)  # what the reports say
        self._weight_params = [  # what l1/l2 penalise: weights, not biases or batchnorm
            p for name, p in self.network.named_parameters() if name.endswith(".W")
        ]
        self.step = 0  # completed training steps
        self.epoch = 0  # completed passes over the training set
        self.diverged: str | None = None  # why training stopped on a non-finite number
        self.stopped_early = False  # whether early stopping ended the run
        self._order = np.arange(len(self.x_train))  # sample order of the current epoch
        self._cursor = len(self.x_train)  # next sample in _order; past the end = new epoch
        self._xb, self._yb = self.x_train, self.y_train  # the epoch's shuffled copies
        self.best_step: int | None = None  # early stopping: step of the lowest test loss seen
        self.best_loss = math.inf  # that loss
        self._best_weights: dict[str, np.ndarray] | None = None  # its weights
        self._bad_evals = 0  # evaluations since the last improvement
        self._last_good: dict[str, np.ndarray] = self.network.get_weights()  # finite weights
        self._last_good_step = 0  # the step they belong to

    @property
    def features(self) -> list[str]:
        """The Playground features the network sees (none for images and tables)."""
        return self.encoding.features

    @property
    def learning_rate(self) -> float:
        """The rate of the next update (the optimizer's base rate under its schedule)."""
        return self.optimizer.rate(self.step)

    def reset(self) -> None:
        """Re-initialise from the seed: same first weights, step 0, empty optimizer state."""
        self.__init__(self.config, self.dataset)  # type: ignore[misc]

    # ------------------------------------------------------------------ training
    # pragma: no mutate end
    def train_step(self) -> StepResult:
        """One step: forward, loss, backward, clip, update, record."""
        net, cfg, recorder = self.network, self.config, self.recorder
        x, y = self._next_batch()  # (batch, inputs...), (batch, outputs)
        net.forward(x)  # forward: every layer caches input, preactivation and output
        data_loss, grad_loss = net.loss(net.loss_input(), y)  # loss and dL/d(prediction)
        net.backward(grad_loss)  # backward: every param.grad = dL/dparam
        penalty = self._regularize()  # l1/l2: its gradient joins each weight's
        grad = net.gather_grads()  # (parameters,) every gradient in one flat array
        clip = clip_gradients([grad], cfg.gradient_clip)  # clip, and measure the global norm
        lr = self.optimizer.rate(self.step)  # the schedule's rate for this step
        if not (math.isfinite(data_loss) and math.isfinite(clip.norm_before)) or (
            clip.norm_after * lr > DIVERGENCE_UPDATE
        ):
            return self._diverge(data_loss, clip.norm_before)  # keep the last finite weights
        before = net.flat.data.copy() if recorder.measure_update else None  # (parameters,)
        self.optimizer.step(lr)  # update: every weight -= lr * (direction from its gradient)
        self.step += 1
        recorder.record_step(self.step, data_loss + penalty, clip, cfg.gradient_clip, before)
        result = StepResult(
            self.step, data_loss + penalty, data_loss, clip.norm_before, clip.clipped, clip.fraction
        )
        es = cfg.early_stopping
        if es is not None and self.step % es.eval_every == 0:
            result.early_stopped = self._early_stopping_check()
        return result

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

    def _keep_good_weights(self) -> None:
        """Remember the current weights as the last good ones if every value is finite."""
        weights = self.network.get_weights()
        if all(np.isfinite(a).all() for a in weights.values()):
            self._last_good, self._last_good_step = weights, self.step

    def _diverge(self, data_loss: float, grad_norm: float) -> StepResult:
        """Stop on a non-finite loss or gradient; roll back to the last good weights."""
        where = introspect.first_non_finite(self.network)
        what = "loss" if not math.isfinite(data_loss) else "gradient norm"
        value = data_loss if what == "loss" else grad_norm
        self.network.set_weights(self._last_good)
        self.optimizer = build_optimizer([self.network.flat], self.config.optimizer)
        self.recorder.forget_evaluation()
        if where:
            where_text = f"; {where} went non-finite first"
        else:
            where = introspect.largest_gradient(self.network)
            where_text = f"; {where} had the largest gradient" if where else ""
        self.diverged = (
            f"the {what} became {value} at step {self.step + 1}"
            + where_text
            + f". The last good weights (step {self._last_good_step}) are kept and the optimizer "
            + "state is cleared. Try a lower learning rate, gradient clipping or batch norm."
        )
        if math.isfinite(value) and value > 0:
            self.diverged = self.diverged.replace(f"became {value}", f"exploded to {value:.3g}", 1)
        self.recorder.add_event(
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
            self.recorder.forget_evaluation()
        self.recorder.add_event(
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

    # pragma: no mutate start
    def train(
        self,
        steps: int | None = None,
        on_report: Callable[[Report], Any] | None = None,
        should_stop: Callable[[], bool] | None = None,
        report_interval: float = 1 / 30,
        pace: float | None = None,
        record_every: int | None = None,
    ) -> str:
        """Train until `steps` are done, should_stop(), divergence or early stop.

        Returns "steps", "stopped", "diverged" or "early_stopped". Reports go to on_report in this
        thread at most every report_interval seconds, at every step that is a multiple of
        `record_every` (engine.recorder.record_interval gives one for a run's length), and once
        at the end, evaluated at the last step unless the run diverged. With `pace`, at most that
        many steps per second (a pace a person can watch); without, as fast as it can.
        """
        if pace is not None and not (math.isfinite(pace) and pace > 0):
            raise ValueError(f"pace: expected a positive number of steps per second, got {pace!r}")
        if record_every is not None and record_every < 1:
            raise ValueError(f"record_every: expected an integer >= 1, got {record_every!r}")
        if self.diverged or self.stopped_early:
            self.diverged, self.stopped_early, self._bad_evals = None, False, 0
        self.recorder.start_clock(self.step)
        with np.errstate(all="ignore"):  # overflow is caught as divergence, not warned about
            reason = self._loop(steps, on_report, should_stop, report_interval, pace, record_every)
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
        pace: float | None,
        record_every: int | None,
    ) -> str:
        """The body of train(): step until a stop condition; returns the reason."""
        done, reason = 0, "steps"
        started = time.perf_counter()
        next_report = started + report_interval
        recorder = self.recorder
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
            if (
                measure_each
                or (steps is not None and done == steps - 1)
                or (record_every is not None and (self.step + 1) % record_every == 0)
            ):  # the next step is reported: the last of a bounded run, or one on the interval
                recorder.measure_update = True
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
            on_interval = record_every is not None and self.step % record_every == 0
            # a paced run reports before it waits, rather than one wait late
            if (
                on_interval
                or now >= next_report
                or (pace is not None and started + done / pace >= next_report)
            ):
                if recorder.measured(self.step):  # this step measured its update
                    next_report = now + report_interval  # any report restarts the time's count
                    on_report(self.report())
                else:
                    recorder.measure_update = True  # the next step measures it, then reports
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
        """Loss and accuracy on the whole train and test sets; no training state changes.

        None for a set without samples and for the accuracy of a regression.
        """
        result: dict[str, float | None] = {}
        with introspect.observing(self.network):
            for prefix, x, y in (
                ("", self.x_train, self.y_train),
                ("test_", self.x_test, self.y_test),
            ):
                loss, accuracy = self._score(x, y)
                result[prefix + "loss"] = loss
                result[prefix + "accuracy"] = accuracy
        self.recorder.record_evaluation(result, self.step)
        return result

    def scores(self, split: str = "both") -> dict[str, Any]:
        """{"step", "train", "test"}: the loss and accuracy over the whole of a split ("train",
        "test" or "both") at the current step, each {"loss", "accuracy"}, None when not asked
        for; non-finite numbers are None. Changes no training state; "both" is also the
        evaluation the next report shows, as it is the same one."""
        if split not in SPLITS:
            raise ValueError(f"split: expected one of {', '.join(SPLITS)}, got {split!r}")
        out: dict[str, Any] = {"step": self.step, "train": None, "test": None}
        if split == "both":
            ev = self.evaluate()
            out["train"] = {"loss": ev["loss"], "accuracy": ev["accuracy"]}
            out["test"] = {"loss": ev["test_loss"], "accuracy": ev["test_accuracy"]}
        else:
            x, y = (self.x_train, self.y_train) if split == "train" else (self.x_test, self.y_test)
            with introspect.observing(self.network):
                loss, accuracy = self._score(x, y)
            out[split] = {"loss": loss, "accuracy": accuracy}
        return finite(out)

    def _score(self, x: np.ndarray, y: np.ndarray) -> tuple[float | None, float | None]:
        """Mean loss and accuracy over (x, y) in eval mode (chunked)."""
        if len(x) == 0:
            return None, None
        net = self.network
        total_loss, correct = 0.0, 0
        chunk = self.cost.eval_chunk  # as many samples as fit in the evaluation memory budget
        for start in range(0, len(x), chunk):
            xb, yb = x[start : start + chunk], y[start : start + chunk]
            out = net.forward(xb)
            loss, _ = net.loss(net.loss_input(), yb)
            total_loss += loss * len(xb)
            correct += self.encoding.correct(out, yb)
        accuracy = None if self.encoding.kind == "values" else correct / len(x)
        return total_loss / len(x), accuracy

    def report(self) -> Report:
        """The run's state now; merges the steps since the previous report and starts a new one."""
        recorder = self.recorder
        rate = recorder.steps_per_second(self.step)
        recorder.evaluate_if_stale(self.step, self.evaluate)
        layers = recorder.layer_statistics()
        if all(math.isfinite(entry["weight_norm"]) for entry in layers):
            self._keep_good_weights()
        elif not self.diverged:  # a slow overflow that no single step showed
            self._diverge(math.inf, math.inf)
        return recorder.report(
            step=self.step,
            epoch=self.epoch,
            steps_per_second=rate,
            learning_rate=self.learning_rate,
            batch_size=min(self.config.batch_size, len(self.x_train)),
            best_step=self.best_step,
            layers=layers,
        )

    def _plane(self) -> introspect.Plane | None:
        """The run's 2-D input plane, for the maps over it; None for other data."""
        data = self.dataset
        if not data.is_2d or data.domain is None:
            return None
        return introspect.Plane(data.domain, self.encoding.features, self.encoding.inputs)

    def snapshot(self, grid_resolution: int | None = 40, compact: bool = False) -> dict[str, Any]:
        """What the page needs to redraw the network (see engine.introspect.snapshot)."""
        return introspect.snapshot(
            self.network, self.step, self._plane(), grid_resolution, compact, self.cost.eval_chunk
        )

    def trace(self, inputs: Any, targets: Any) -> dict[str, Any]:
        """Every intermediate value of one forward/backward pass; changes nothing."""
        x = self.prepare_inputs(inputs)
        y = self.prepare_targets(targets, len(x))
        traced = introspect.trace(self.network, x, y)
        return {**traced, "learning_rate": self.learning_rate, "features": self.features}

    def predict(self, inputs: Any) -> np.ndarray:
        """Outputs (after the output activation) for raw inputs."""
        x = self.prepare_inputs(inputs)
        chunk = self.cost.eval_chunk  # inputs per forward pass, within the evaluation budget
        with introspect.observing(self.network):
            parts = [
                self.network.forward(x[start : start + chunk]).astype(np.float64)
                for start in range(0, len(x), chunk)
            ]
        return np.concatenate(parts)  # (inputs, outputs)

    def grid(self, resolution: int = 100, neuron_budget: int | None = None) -> dict[str, Any]:
        """Output and every hidden neuron over the 2-D input plane; the neuron maps coarser
        when all of them would hold more than `neuron_budget` values."""
        plane = self._plane()
        if plane is None:
            raise ValueError("boundary: only 2-D datasets have a decision boundary")
        return introspect.grid(
            self.network, plane, resolution, neuron_budget, chunk=self.cost.eval_chunk
        )

    def histograms(self, bins: int = stats.HISTOGRAM_BINS) -> dict[str, Any]:
        """Gradient and weight histograms per observed layer."""
        return {
            layer.name: stats.layer_histograms(layer, bins)
            for layer in self.network.layers
            if stats.observed(layer)
        }

    def prepare_inputs(self, inputs: Any) -> np.ndarray:
        """Raw inputs (points, x values or images) -> network inputs; ValueError if they don't fit."""
        return self.encoding.check_inputs(inputs)

    def prepare_targets(self, targets: Any, count: int) -> np.ndarray:
        """Raw labels or values -> what the loss wants; ValueError if they don't fit."""
        return self.encoding.check_targets(targets, count)

    # ------------------------------------------------------------------ weights and state
    def get_weights(self) -> dict[str, np.ndarray]:
        """Copies of every parameter and buffer by stable name ("0.W", "0.b", ...)."""
        return self.network.get_weights()

    def set_weights(self, weights: dict[str, Any], partial: bool = False) -> None:
        """Replace weights by name (all of them unless partial); WeightsError names the array."""
        self.network.set_weights(weights, partial=partial)
        self._last_good, self._last_good_step = self.network.get_weights(), self.step
        self.recorder.forget_evaluation()

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
            if "features" not in self.config.model_fields_set:  # still the data's default
                del candidate["features"]
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
        for name in optimizer_fields:  # the live optimizer's attributes have the config's names
            if hasattr(self.optimizer, name):
                setattr(self.optimizer, name, getattr(new_config.optimizer, name))
        return changes

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
        self.recorder.forget_evaluation()
        self.recorder.start_clock(self.step)

    def param_count(self) -> int:
        """Number of trainable scalars."""
        return self.network.param_count()

    def flops_per_step(self) -> int:
        """Rough multiply-adds of one training step (forward + backward ~ 3x forward)."""
        return self.cost.flops_per_step


def _defaulted_features(config: RunConfig, used: list[str]) -> bool:
    """Whether the run's config should name the features the encoding chose for it: the client
    gave none and the data's default differs from the config's (x1 alone for 1-D points), so
    that the stored document rebuilds the same run. Uploads keep none: their columns are the
    inputs (engine.config.config_to_dict)."""
    if "features" in config.model_fields_set or config.dataset.name.startswith("upload:"):
        return False
    return bool(used) and used != list(config.features)


# pragma: no mutate end
