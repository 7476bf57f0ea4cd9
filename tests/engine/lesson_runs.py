"""How the lesson tests (test_presets.py) run the lessons: the seeds and checkpoints of each lesson,
the worker functions that run a lesson in a worker process (plain data in, plain data out), the
list of every run the tests read, the pool that runs them (`Runs`), and the readers of the curves
they return.
"""

from __future__ import annotations

import copy
import json
import math
import threading
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from engine.lessons import horizon
from engine.presets import get_preset
from engine.recipes import drawn_points, exploding, with_batchnorm
from engine.trainer import Trainer

OTHER_SEEDS: tuple[int, ...] = (7, 42)  # besides each lesson's own seed
EXTRA_SEEDS: dict[str, tuple[int, ...]] = {
    # the 2-4-1 xor net gets stuck predicting 0 everywhere on about 1 seed in 11; this is one
    "how-a-step-works": (55555,),
    # relu + he on raw inputs up to 6 starts with its tanh output saturated on about 1 seed in
    # 100 and never learns; its gradients must still not fade (the try's claim)
    "vanishing-gradients": (2082,),
}
EARLY = (1, 3, 10, 30, 100, 300, 1000, 3000, 10_000, 20_000)


def lesson(lesson_id: str) -> dict[str, Any]:
    return get_preset(lesson_id)


def seeds(lesson_id: str) -> list[int]:
    """The lesson's own seed first, then the others."""
    own = lesson(lesson_id)["config"]["seed"]
    return [own, *[s for s in (*OTHER_SEEDS, *EXTRA_SEEDS.get(lesson_id, ())) if s != own]]


def checkpoints(lesson_id: str, every: int) -> list[int]:
    """The early steps plus every `every` steps up to the lesson's horizon."""
    end = horizon(lesson(lesson_id))
    return sorted({*[s for s in EARLY if s < end], *range(every, end + 1, every)})


def seeded(config: dict[str, Any], seed: int) -> dict[str, Any]:
    out = copy.deepcopy(config)
    out["seed"] = seed
    return out


# ------------------------------------------------------------------------------------- workers
# Run in worker processes: plain data in, plain data out.


def curve(config: dict[str, Any], steps: list[int], grads: bool = False) -> list[dict[str, Any]]:
    """evaluate() at step 0 and at every checkpoint (with report()'s per-layer gradient norms if
    grads), until the last checkpoint or until training stops (diverged, early-stopped)."""
    trainer = Trainer(config)
    points = [{"step": 0, "status": "steps", **trainer.evaluate()}]
    for step in steps:
        status = trainer.train(step - trainer.step)
        point = {"step": trainer.step, "status": status, **trainer.evaluate()}
        if grads:
            point["grads"] = [layer["grad_norm"] for layer in trainer.report().layers]
        points.append(point)
        if status != "steps":
            break
    return points


def lr_switch(
    config: dict[str, Any], at: list[int], high: float, back: float, window: int, every: int
) -> dict[int, dict[str, Any]]:
    """For each step in `at`: the run's loss there, then every `every` steps for `window` steps
    at learning rate `high`, then for 2 * window steps back at `back` (a fork of the same run)."""
    trainer = Trainer(config)
    out: dict[int, dict[str, Any]] = {}
    for step in at:
        trainer.train(step - trainer.step)
        fork = Trainer(config)
        fork.restore(trainer.checkpoint())
        result: dict[str, Any] = {"before": fork.evaluate()["loss"], "high": [], "back": []}
        for rate, phase, steps in ((high, "high", window), (back, "back", 2 * window)):
            fork.update_hyperparameters({"learning_rate": rate})
            for _ in range(steps // every):
                fork.train(every)
                result[phase].append(fork.evaluate()["loss"])
        out[step] = result
    return out


def early_stop(config: dict[str, Any], steps: int) -> dict[str, Any]:
    """Train with early stopping for at most `steps`; where it stopped and what it kept."""
    trainer = Trainer(config)
    status = trainer.train(steps)
    return {
        "status": status,
        "step": trainer.step,
        "best_step": trainer.best_step,
        "best_loss": trainer.best_loss,
        **trainer.evaluate(),
    }


def sample_losses(config: dict[str, Any], steps: list[int]) -> list[dict[str, Any]]:
    """The explainer's loss (trace) of every training point, and evaluate()'s, at each step."""
    trainer = Trainer(config)
    xs, ys = trainer.dataset.x_train, trainer.dataset.y_train
    out = []
    for step in [0, *steps]:
        trainer.train(step - trainer.step)
        losses = [trainer.trace([list(x)], [int(y)])["loss"] for x, y in zip(xs, ys, strict=True)]
        out.append({"step": step, **trainer.evaluate(), "samples": losses})
    return out


def divergence(config: dict[str, Any], steps: int) -> dict[str, Any]:
    """Train with reports: why it stopped, where, and the largest gradient norm reported."""
    trainer = Trainer(config)
    reports: list[Any] = []
    status = trainer.train(steps, on_report=reports.append, report_interval=0.0)
    return {
        "status": status,
        "step": trainer.step,
        "message": trainer.diverged,
        "max_grad_norms": [r.max_grad_norm for r in reports],
    }


WORKERS: dict[str, Callable[..., Any]] = {
    f.__name__: f for f in (curve, lr_switch, early_stop, sample_losses, divergence)
}


def work(name: str, kwargs: dict[str, Any]) -> Any:
    return WORKERS[name](**kwargs)


# ----------------------------------------------------------------------------------- the runs

LR_SWITCH_AT = [300, 3000, 10_000, 40_000]
DRAWN_AMONG_ORANGE = [[-2.0, -3.8, 1], [-3.8, -2.2, 1], [-2.6, -2.2, 1]]  # blue in the orange


def jobs() -> list[tuple[tuple[str, str, int], str, dict[str, Any]]]:
    """Every run the tests read, in test order: ((lesson, run, seed), worker, arguments)."""
    out: list[tuple[tuple[str, str, int], str, dict[str, Any]]] = []

    def add(lesson_id: str, run: str, worker: str, config: dict, **kwargs: Any) -> None:
        for seed in seeds(lesson_id):
            out.append(((lesson_id, run, seed), worker, {"config": seeded(config, seed), **kwargs}))

    def add_curves(lesson_id: str, every: int, grads: bool = False, main: bool = True) -> None:
        """The lesson's side-by-side runs (or its own run if it has none) and its try."""
        preset = lesson(lesson_id)
        steps = checkpoints(lesson_id, every)
        for entry in preset.get("compare", []):
            add(lesson_id, entry["label"], "curve", entry["config"], steps=steps, grads=grads)
        if main and not preset.get("compare"):
            add(lesson_id, "lesson", "curve", preset["config"], steps=steps, grads=grads)
        if "config" in preset["try"]:
            add(lesson_id, "try", "curve", preset["try"]["config"], steps=steps, grads=grads)

    xor = lesson("how-a-step-works")
    add("how-a-step-works", "samples", "sample_losses", xor["config"], steps=[*EARLY, 40_000])
    add_curves("learning-rate", 250)
    add(
        "learning-rate",
        "switch",
        "lr_switch",
        lesson("learning-rate")["config"],
        at=LR_SWITCH_AT,
        high=0.3,
        back=0.03,
        window=1000,
        every=50,
    )
    add_curves("vanishing-gradients", 500, grads=True)
    explode = lesson("exploding-gradients")
    add("exploding-gradients", "lesson", "divergence", explode["config"], steps=100)
    tenth = exploding(learning_rate=explode["config"]["optimizer"]["learning_rate"] / 10)
    add("exploding-gradients", "lr / 10", "divergence", tenth, steps=100)
    add_curves("exploding-gradients", 1000, main=False)
    with_bn = with_batchnorm(explode["config"])
    steps = checkpoints("exploding-gradients", 1000)
    add("exploding-gradients", "+ batch norm", "curve", with_bn, steps=steps)
    add_curves("gradient-clipping", 1000)
    add_curves("overfitting", 250)
    stopping = lesson("early-stopping")
    end = horizon(stopping)
    add("early-stopping", "lesson", "early_stop", stopping["config"], steps=end)
    add("early-stopping", "try", "early_stop", stopping["try"]["config"], steps=end)
    add_curves("relu-vs-sigmoid", 250)
    add_curves("batch-normalization", 100)
    add_curves("convolutional-network", 1000)
    add_curves("optimizers", 250)
    add_curves("your-own-data", 500)
    steps = checkpoints("your-own-data", 500)
    add("your-own-data", "try", "curve", drawn_points(DRAWN_AMONG_ORANGE), steps=steps)
    return out


class Runs:
    """The module's runs on a process pool, at most one per worker at a time; identical runs are
    shared. They start in lesson order, and a test that asks for a lesson's run moves that
    lesson's runs to the front (the tests run in random order, and `-k` runs only what it needs).
    """

    def __init__(self, pool: ProcessPoolExecutor, workers: int) -> None:
        self._pool, self._workers = pool, workers
        self._ready = threading.Condition(threading.RLock())  # guards everything below
        self._ident: dict[tuple[str, str, int], str] = {}  # (lesson, run, seed) -> job identity
        self._spec: dict[str, tuple[str, dict[str, Any]]] = {}  # identity -> (worker, arguments)
        self._waiting: list[str] = []  # identities not yet handed to the pool, in start order
        self._started: dict[str, Future] = {}
        self._running = 0
        for key, worker, kwargs in jobs():
            ident = json.dumps([worker, kwargs], sort_keys=True)
            self._ident[key] = ident
            if ident not in self._spec:
                self._spec[ident] = (worker, kwargs)
                self._waiting.append(ident)
        with self._ready:
            self._start_more()

    def _start_more(self) -> None:
        while self._running < self._workers and self._waiting:
            ident = self._waiting.pop(0)
            future = self._pool.submit(work, *self._spec[ident])
            self._started[ident] = future
            self._running += 1
            self._ready.notify_all()
            future.add_done_callback(self._finished)

    def _finished(self, _: Future) -> None:
        with self._ready:
            self._running -= 1
            self._start_more()

    def get(self, lesson_id: str, run: str, seed: int) -> Any:
        ident = self._ident[(lesson_id, run, seed)]
        with self._ready:
            if ident in self._waiting:
                first = [i for k, i in self._ident.items() if k[0] == lesson_id]
                first = [i for i in dict.fromkeys([ident, *first]) if i in self._waiting]
                self._waiting = first + [i for i in self._waiting if i not in first]
            self._ready.wait_for(lambda: ident in self._started)
            future = self._started[ident]
        return future.result()

    def stop(self) -> None:
        with self._ready:
            self._waiting.clear()


# ---------------------------------------------------------------------------- reading curves


def losses(points: list[dict[str, Any]], key: str = "loss", start: int = 0) -> dict[int, float]:
    """step -> value from the first checkpoint at or after `start`."""
    return {p["step"]: p[key] for p in points if p["step"] >= start}


def largest_rise(values: list[float], floor: float = math.inf) -> float:
    """The largest amount by which a value exceeds the lowest value before it (and `floor`)."""
    rise, low = 0.0, floor
    for value in values:
        rise = max(rise, value - low)
        low = min(low, value)
    return rise


def largest_factor(values: list[float]) -> float:
    """The largest ratio of a value to the lowest value before it (a jump on a log scale)."""
    factor, low = 1.0, math.inf
    for value in values:
        factor = max(factor, value / low)
        low = min(low, value)
    return factor


def completed(points: list[dict[str, Any]], end: int) -> bool:
    return points[-1]["step"] == end and all(p["status"] == "steps" for p in points)
