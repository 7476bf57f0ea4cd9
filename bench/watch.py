"""What backprop_lens.torch.watch costs a PyTorch training loop, as a ratio of plain step speed.

For a 784-256-256-10 MLP and a small CNN (1x28x28 -> conv 16 -> pool -> conv 32 -> pool -> 10),
batch 64, SGD, it measures training steps per second of

  plain                       the loop without any watcher;
  every=10, server up/down    watch(..., every=10) with a live server (`python -m server` in a
                              subprocess), and with nobody listening at the URL;
  every=None, server up/down  the adaptive interval (statistics at most ~3 % of step time);
  wandb                       wandb.watch(model, log="gradients", log_freq=10) plus a wandb.log
                              per step, offline (WANDB_MODE=offline, its files in a temporary
                              WANDB_DIR), when wandb is installed (it is not a dependency; the
                              bench says so when it is missing);

each state with its own model and optimizer (and its own watcher, kept for the whole bench), in
windows of --window seconds taken in turn, the order reversed every round, so each round gives a
ratio to the plain window next to it; the bench prints the geometric mean of those ratios with a
90 % bootstrap interval. Then, per net, the extra time of a logged step from the 10th
percentile of single-step times taken in turn with a plain loop, and what every=10 keeps by it:
on a machine busy with other work the window ratios swing widely, that percentile much less.
Last, with wandb installed, blocks of 10 steps (each with one logged step, for every=10 and for
wandb's log_freq=10 alike) of plain, every=10 with the server up, and wandb, taken in turn: the
ratios of their 10th percentiles and medians, again steadier than the windows under load.
Target (issue 18): every=10 with the server up keeps >= 0.9 of plain, ahead of wandb.

Run from the repository root: `.venv/bin/python -m bench.watch [--rounds 8] [--window 1.0]
[--threads 1]`.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from backprop_lens.torch import watch
from tests.support import LiveServer, free_port

BATCH = 64


def mlp() -> nn.Module:
    return nn.Sequential(
        nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
        nn.Linear(256, 10),
    )  # fmt: skip


def cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 10),
    )  # fmt: skip


NETS: dict[str, Callable[[], nn.Module]] = {"mlp 784-256-256-10": mlp, "cnn 16-32 conv": cnn}


class Loop:
    """One state: a model, its optimizer, maybe a watcher, and a step function."""

    def __init__(self, make: Callable[[], nn.Module], kind: str, url: str | None) -> None:
        torch.manual_seed(0)
        self.model = make()
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.01)
        self.x = torch.randn(BATCH, 1, 28, 28)
        self.y = torch.randint(0, 10, (BATCH,))
        self.watcher: Any = None
        self.wandb: Any = None
        if kind.startswith("every") and url is not None:
            every = None if kind.startswith("every=None") else 10
            self.watcher = watch(self.model, self.optimizer, url=url, name=kind, every=every)
        elif kind == "wandb":
            import wandb  # only when installed: see main()

            self.wandb = wandb.init(project="backprop-lens-bench", mode="offline", name=kind)
            wandb.watch(self.model, log="gradients", log_freq=10)

    def one(self) -> None:
        """One training step (and its log call)."""
        self.optimizer.zero_grad()
        loss = nn.functional.cross_entropy(self.model(self.x), self.y)
        loss.backward()
        self.optimizer.step()
        if self.watcher is not None:
            self.watcher.log(loss=loss)
        elif self.wandb is not None:
            self.wandb.log({"loss": loss.item()})

    def steps(self, seconds: float) -> float:
        """Train for about `seconds`; steps per second."""
        count = 0
        started = time.perf_counter()
        end = started + seconds
        while time.perf_counter() < end:
            self.one()
            count += 1
        return count / (time.perf_counter() - started)

    def close(self) -> None:
        if self.watcher is not None:
            self.watcher.close()
        if self.wandb is not None:
            self.wandb.finish()


def logged_step_cost(make: Callable[[], nn.Module], down: str, steps: int = 300) -> None:
    """The extra time of a logged step (every=1, norms only: histograms are paced to one a
    second), from the 10th percentile of per-step times taken in turn with a plain loop: a
    percentile a busy machine moves much less than the window rates above."""
    plain, watched = Loop(make, "plain", None), Loop(make, "every=1", None)
    watched.watcher = watch(watched.model, watched.optimizer, url=down, every=1)
    times: dict[str, list[float]] = {"plain": [], "logged": []}
    try:
        for loop in (plain, watched):
            loop.steps(0.3)
        for _ in range(steps):
            for key, loop in (("plain", plain), ("logged", watched)):
                started = time.perf_counter()
                loop.one()
                times[key].append(time.perf_counter() - started)
        p10 = {key: sorted(values)[len(values) // 10] for key, values in times.items()}
        extra = max(p10["logged"] - p10["plain"], 0.0)
        steps_worth = extra / p10["plain"]
        print(
            f"  a logged step costs {extra * 1e3:.2f} ms more ({steps_worth:.2f} plain steps of "
            f"{p10['plain'] * 1e3:.2f} ms): every=10 keeps about {10 / (10 + steps_worth):.3f}"
        )
    finally:
        watched.close()


def block_ratios(make: Callable[[], nn.Module], up: str, seconds: float = 20.0) -> None:
    """Blocks of 10 steps of plain, every=10 (server up) and wandb, taken in turn for about
    `seconds`: what each keeps of plain by the 10th percentile and the median of block times."""
    loops = {kind: Loop(make, kind, up) for kind in ("plain", "every=10, server up", "wandb")}
    times: dict[str, list[float]] = {kind: [] for kind in loops}
    try:
        for loop in loops.values():
            loop.steps(0.3)
            while getattr(loop.watcher, "step", 0) % 10:  # blocks end on a logged step
                loop.one()
        end = time.perf_counter() + seconds
        while time.perf_counter() < end or len(times["plain"]) < 20:
            for kind, loop in loops.items():
                started = time.perf_counter()
                for _ in range(10):
                    loop.one()
                times[kind].append(time.perf_counter() - started)
        p10 = {kind: sorted(values)[len(values) // 10] for kind, values in times.items()}
        median = {kind: statistics.median(values) for kind, values in times.items()}
        for kind in ("every=10, server up", "wandb"):
            print(
                f"  blocks of 10 steps, {kind:<20} keeps {p10['plain'] / p10[kind]:.3f} of plain "
                f"(10th percentile), {median['plain'] / median[kind]:.3f} (median)"
            )
    finally:
        for loop in loops.values():
            loop.close()


def geometric_mean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def interval(values: list[float], draws: int = 2000) -> tuple[float, float]:
    """90 % bootstrap interval of the geometric mean."""
    rng = random.Random(0)
    means = sorted(geometric_mean([rng.choice(values) for _ in values]) for _ in range(draws))
    return means[int(0.05 * draws)], means[int(0.95 * draws) - 1]


def bench(name: str, make: Callable[[], nn.Module], up: str, down: str, args: Any) -> None:
    kinds = ["plain", "every=10, server up", "every=None, server up", "every=10, server down",
             "every=None, server down"]  # fmt: skip
    if args.wandb:
        kinds.append("wandb")
    loops = {
        kind: Loop(make, kind, up if "up" in kind else down if "down" in kind else None)
        for kind in kinds
    }
    try:
        for loop in loops.values():  # warm up: first steps allocate, first logs connect
            loop.steps(0.3)
        ratios: dict[str, list[float]] = {kind: [] for kind in kinds[1:]}
        plain_rates = []
        for round_ in range(args.rounds):
            order = kinds if round_ % 2 == 0 else kinds[::-1]
            rates = {kind: loops[kind].steps(args.window) for kind in order}
            plain_rates.append(rates["plain"])
            for kind in kinds[1:]:
                ratios[kind].append(rates[kind] / rates["plain"])
        print(f"{name}: plain {geometric_mean(plain_rates):,.0f} steps/s")
        for kind, values in ratios.items():
            low, high = interval(values)
            print(f"  {kind:<24} {geometric_mean(values):.3f} of plain  [{low:.3f}, {high:.3f}]")
        if args.wandb:  # the two peers compared round by round
            ahead = [
                w / p for w, p in zip(ratios["every=10, server up"], ratios["wandb"], strict=True)
            ]
            low, high = interval(ahead)
            print(
                f"  every=10, server up / wandb: {geometric_mean(ahead):.2f}x  "
                f"[{low:.2f}, {high:.2f}]"
            )
        for kind, loop in loops.items():
            if loop.watcher is not None and loop.watcher.every is None:
                print(f"  ({kind}: {loop.watcher.step} steps)")
    finally:
        for loop in loops.values():
            loop.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--window", type=float, default=1.0, help="seconds per window")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tmp = tempfile.TemporaryDirectory()
    # wandb offline, its run files in the temporary directory, no console chatter: it sends
    # nothing (what it writes is for a later `wandb sync`, which the bench never runs)
    os.environ.update(WANDB_MODE="offline", WANDB_DIR=tmp.name, WANDB_SILENT="true")
    try:
        import wandb  # noqa: F401

        args.wandb = True
    except ImportError:
        args.wandb = False
        print(
            "wandb: not installed, so the peer (wandb.watch(log='gradients', log_freq=10) plus "
            "a wandb.log per step, offline) is not measured in this run; `pip install wandb` "
            "to add it"
        )
    print(f"torch {torch.__version__}, {args.threads} thread(s), batch {BATCH}, "
          f"{args.rounds} rounds of {args.window:g} s windows")  # fmt: skip
    with tmp:
        live = LiveServer(Path(tmp.name) / "data").start()
        try:
            down = f"http://127.0.0.1:{free_port()}"  # nobody listens there
            for name, make in NETS.items():
                bench(name, make, live.url, down, args)
                logged_step_cost(make, down)
                if args.wandb:
                    block_ratios(make, live.url)
        finally:
            live.stop()


if __name__ == "__main__":
    main()
