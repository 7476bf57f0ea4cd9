"""The recorder: what a run reports, merged over the steps between two reports.

A network trains thousands of steps a second and the page redraws about 30 times a second, so a
report stands for the steps since the previous one. The recorder keeps them: the batch losses,
the largest gradient norms, the clipped steps and the events (the interval statistics); the loss
and accuracy over the whole data, evaluated again within a time budget; the update of the step
before a report, asked for one step ahead (the update-ratio handshake); and the clock of the
steps per second. Reports come by time (about 30 a second, for the page) and, in a run of a known
length, also by step (`record_interval`): a script's history then has rows at regular steps
however fast the machine is. `Recorder.report` turns all of it into a `Report`, and `Report.to_dict` is where
its numbers leave the engine: the one place NaN and infinity become None (JSON and SQLite have
no NaN).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from engine import stats

if TYPE_CHECKING:
    from engine.config import ClipConfig
    from engine.network import Network
    from engine.optim import ClipReport

EVAL_BUDGET = 0.02  # time-based evaluations take at most this share of training time
MAX_EVAL_AGE = 1.0  # seconds: what the page shows is never evaluated longer ago than this
LAYER_NORM_EVERY = 8  # the 1st, 9th, 17th... step of an interval sample the layers' gradient norms
RECORD_ROWS = 500  # a run of known length reports at most this many times by step (and by time)


def record_interval(steps: int) -> int:
    """The step interval of the reports of a run of `steps` steps: the smallest of 1, 2, 5, 10,
    20, 50, ... that gives at most RECORD_ROWS reports. A round number, so the reported steps are
    its multiples (10, 20, 30...) and a history filtered to every 100th step still finds them."""
    if steps < 1:
        raise ValueError(f"steps: expected an integer >= 1, got {steps}")
    scale = 1
    while True:
        for every in (scale, 2 * scale, 5 * scale):
            if every * RECORD_ROWS >= steps:
                return every
        scale *= 10


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
    learning_rate: float  # the rate of the next update
    batch_size: int  # samples per step: the configured batch size, at most the training set
    steps_per_second: float
    eval_step: int | None  # the step the four evaluation numbers belong to
    max_grad_norm: float  # largest global gradient norm (before clipping) since the last report
    clip_count: int  # steps whose gradients were clipped since the previous report
    best_step: int | None  # early stopping: the step with the lowest test loss so far
    layers: list[dict[str, Any]] = field(default_factory=list)  # engine.stats per observed layer
    events: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-able plain data: NaN and infinity, anywhere, become None."""
        out: dict[str, Any] = {name: getattr(self, name) for name in REPORT_SCALARS}
        out["layers"] = self.layers
        out["events"] = self.events
        return finite(out)


# the report's plain fields, in its JSON; server/ws_schema.py describes each (a test checks)
REPORT_SCALARS = (
    "step",
    "epoch",
    "loss",
    "test_loss",
    "accuracy",
    "test_accuracy",
    "batch_loss",
    "learning_rate",
    "batch_size",
    "steps_per_second",
    "eval_step",
    "max_grad_norm",
    "clip_count",
    "best_step",
)


def finite(value: Any) -> Any:
    """A copy of nested dicts and lists with every non-finite float replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value


# `make mutate` (docs/testing.md) mutates what a training step records, Recorder.record_step to
# Recorder.add_event, and Report.to_dict and finite, where numbers leave the engine: set-up, the
# evaluation budget, the rate clock and the assembly of a report are left out of the campaign.
class Recorder:
    """Interval statistics, evaluation budget, update measurement and rate clock of one run."""

    # pragma: no mutate start
    def __init__(self, network: Network, clock: Callable[[], float]) -> None:
        self._network = network  # the network the reports describe
        self._clock = clock  # seconds of a monotonic clock (time.perf_counter, or a test's)
        # the interval: the steps since the previous report
        self.steps = 0  # steps since the previous report
        self._loss_sum = 0.0  # the sum of their batch losses (data loss + penalty)
        self._max_norm = 0.0  # the largest global gradient norm among them, before clipping
        self._clips = 0  # how many of them clipped
        self._layer_max = [0.0] * len(network.layers)  # per layer, largest sampled gradient norm
        self._events: list[dict[str, Any]] = []  # events raised among them
        self._clipped_layers: set[int] = set()  # layers whose gradients the last clipping changed
        # the update-ratio handshake
        self.measure_update = False  # the trainer copies the weights so the next step is measured
        self._update_norms: list[float] | None = None  # per layer, the measured update's L2 norm
        self._update_step = -1  # the step whose update _update_norms holds
        # the evaluation budget
        self._evaluation: dict[str, float | None] | None = None  # the latest evaluate() result
        self._evaluation_step: int | None = None  # the step it belongs to
        self._eval_due = 0.0  # clock time of the next time-based evaluation
        self._eval_cost: float | None = None  # smoothed seconds one evaluation takes
        # the rate clock
        self._clock_start = clock()  # when the steps per second are counted from
        self._clock_step = 0  # the step count then

    # ------------------------------------------------------------------ steps
    # pragma: no mutate end
    def record_step(
        self,
        step: int,
        batch_loss: float,
        clip: ClipReport,
        clip_config: ClipConfig | None,
        before: np.ndarray | None,
    ) -> None:
        """Fold one step into the interval: its loss, gradient norm and clipping, and its update
        when `before` holds the weights from before it (because measure_update asked for it)."""
        self.steps += 1
        self._loss_sum += batch_loss
        self._max_norm = max(self._max_norm, clip.norm_before)
        if clip.clipped and clip_config is not None:
            self._clips += 1
            self._note_clip(step, clip, clip_config)
        if before is not None:
            self._measure_update(step, before)
        elif self.steps % LAYER_NORM_EVERY == 1:  # sampled; a measured step is always sampled
            self._sample_layer_norms()

    def _sample_layer_norms(self) -> None:
        """Fold each layer's gradient norm (engine.stats' definition) into the interval maxima."""
        maxima = self._layer_max
        for index, layer in enumerate(self._network.layers):
            if layer.params:
                maxima[index] = max(maxima[index], stats.norm(stats.gradient_vector(layer)))

    def _measure_update(self, step: int, before: np.ndarray) -> None:
        """Per-layer L2 norm of the update this step made (for update/weight ratios)."""
        delta = (self._network.flat.data - before).astype(np.float64)  # (parameters,)
        self._update_norms = self._layer_norms(delta)
        self._update_step = step
        self.measure_update = False
        self._sample_layer_norms()

    def _layer_norms(self, flat: np.ndarray) -> list[float]:
        """Per layer, the L2 norm of its slice of a float64 vector laid out like the network's
        flat parameters (0.0 for layers without parameters)."""
        return [
            0.0 if part is None else stats.norm(flat[part]) for part in self._network.layer_slices
        ]

    def _note_clip(self, step: int, clip: ClipReport, clip_config: ClipConfig) -> None:
        """Remember which layers this step clipped; raise one clip event per interval."""
        slices = self._network.layer_slices
        if clip_config.kind == "norm":  # every gradient is scaled
            self._clipped_layers = {i for i, part in enumerate(slices) if part is not None}
        else:  # by value: the layers holding a value cut to the threshold
            grad = self._network.flat.grad  # (parameters,) as clipped
            self._clipped_layers = {
                i
                for i, part in enumerate(slices)
                if part is not None and float(np.abs(grad[part]).max()) >= clip_config.threshold
            }
        if not any(e["type"] == "clip" for e in self._events):
            self._events.append(
                {
                    "type": "clip",
                    "step": step,
                    "kind": clip_config.kind,
                    "threshold": clip_config.threshold,
                    "norm_before": clip.norm_before,
                    "norm_after": clip.norm_after,
                    "fraction": clip.fraction,
                    "message": (
                        f"gradient clipped by {clip_config.kind}: "
                        f"norm {clip.norm_before:.3g} -> {clip.norm_after:.3g}"
                    ),
                }
            )

    def add_event(self, event: dict[str, Any]) -> None:
        """An event (divergence, early stop) for the next report."""
        self._events.append(event)

    # pragma: no mutate start
    def measured(self, step: int) -> bool:
        """Whether the update of `step` was measured (a report after it shows its ratios)."""
        return self._update_step == step

    # ------------------------------------------------------------------ evaluation
    def record_evaluation(self, result: dict[str, float | None], step: int) -> None:
        """The latest loss and accuracy over the whole data, and the step they belong to."""
        self._evaluation, self._evaluation_step = result, step

    def forget_evaluation(self) -> None:
        """The weights changed without a step: the next report evaluates again."""
        self._evaluation = None

    def evaluate_if_stale(self, step: int, evaluate: Callable[[], Any]) -> None:
        """Call evaluate() when the latest evaluation is stale, spending about EVAL_BUDGET of the
        training time on it but never letting the numbers grow older than MAX_EVAL_AGE. The cost
        is smoothed, so one evaluation slowed by a busy machine does not postpone the next ones
        for seconds."""
        if self._evaluation is not None and self._evaluation_step == step:
            return
        now = self._clock()
        if self._evaluation is None or now >= self._eval_due:
            evaluate()
            cost = self._clock() - now
            smooth = self._eval_cost
            self._eval_cost = cost if smooth is None else 0.8 * smooth + 0.2 * cost
            self._eval_due = now + min(self._eval_cost / EVAL_BUDGET, MAX_EVAL_AGE)

    # ------------------------------------------------------------------ reports
    def start_clock(self, step: int) -> None:
        """Count the steps per second from now, at `step`."""
        self._clock_start, self._clock_step = self._clock(), step

    def steps_per_second(self, step: int) -> float:
        """Steps per second since the clock started; starts it again."""
        now = self._clock()
        elapsed = now - self._clock_start
        rate = (step - self._clock_step) / elapsed if elapsed > 0 else 0.0
        self._clock_start, self._clock_step = now, step
        return rate

    def layer_statistics(self) -> list[dict[str, Any]]:
        """engine.stats per observed layer, with the interval's largest gradient norm and the
        gradient norm the last update used (after clipping)."""
        network = self._network
        after = self._layer_norms(network.flat.grad.astype(np.float64))
        out = []
        for index, layer in enumerate(network.layers):
            if not stats.observed(layer):
                continue
            entry = stats.layer_statistics(
                layer,
                None if self._update_norms is None else self._update_norms[index],
                index in self._clipped_layers and self._clips > 0,
            )
            entry["max_grad_norm"] = max(self._layer_max[index], entry["grad_norm"])
            entry["grad_norm_after_clip"] = after[index]
            out.append(entry)
        return out

    def report(
        self,
        *,
        step: int,
        epoch: int,
        steps_per_second: float,
        learning_rate: float,
        batch_size: int,
        best_step: int | None,
        layers: list[dict[str, Any]],
    ) -> Report:
        """The report of the interval (with the latest evaluation); starts a new interval."""
        evaluation = self._evaluation or {}
        report = Report(
            step=step,
            epoch=epoch,
            loss=evaluation.get("loss"),
            test_loss=evaluation.get("test_loss"),
            accuracy=evaluation.get("accuracy"),
            test_accuracy=evaluation.get("test_accuracy"),
            batch_loss=self._loss_sum / self.steps if self.steps else None,
            learning_rate=learning_rate,
            batch_size=batch_size,
            steps_per_second=steps_per_second,
            eval_step=self._evaluation_step if self._evaluation else None,
            max_grad_norm=self._max_norm,
            clip_count=self._clips,
            best_step=best_step,
            layers=layers,
            events=self._events,
        )
        self.steps = 0
        self._loss_sum = 0.0
        self._max_norm = 0.0
        self._clips = 0
        self._layer_max = [0.0] * len(self._layer_max)
        self._events = []
        return report


# pragma: no mutate end
