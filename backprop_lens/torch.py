"""Watch a PyTorch training run in Backprop Lens: `watch(model, optimizer, url=...)`.

    with watch(model, optimizer, url="http://127.0.0.1:8000") as watcher:
        for x, y in batches:
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            watcher.log(loss=loss)
            if watcher.should_stop:  # the page's Stop button
                break

Where the numbers come from. The optimizer's step pre-hook reads the gradients when they are
final, after DistributedDataParallel's all-reduce and GradScaler's unscale (both happen before
optimizer.step runs), so under DDP rank 0's numbers are those of a single process on the full
batch; the post-hook measures the update. Both run only on logged steps, and only on rank 0;
the statistics are computed on the model's device (backprop_lens/_torch_stats.py) and copied
to the host once. Steps are completed optimizer steps (GradScaler's skipped steps are not);
a step taken inside DDP's no_sync() is not logged, since its gradients are this rank's alone.

How often. `every=N` logs steps N, 2N, 3N...; `every=None` measures what a logged step costs
against a plain step and logs as often as keeps that cost near BUDGET (3 %) of the training
time, and at most MAX_LOGS_PER_SECOND times a second. Under DDP rank 0 decides the next logged
step and broadcasts it, with the page's controls, at each logged step, so all ranks agree.

Never hurts training: the hooks and `log` swallow their own errors (a warning, then the watcher
turns itself off), sending happens in a background thread (backprop_lens/_wire.py), and
`close` returns within CLOSE_TIMEOUT seconds whatever the server does.
"""

from __future__ import annotations

import logging
import math
import time
from types import TracebackType
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from backprop_lens._torch_stats import LayerStats, observed_layers, topology
from backprop_lens._wire import WIRE_VERSION, Control, Sender

log = logging.getLogger("backprop_lens.watch")

BUDGET = 0.03  # share of the training time the statistics may take with every=None
MAX_LOGS_PER_SECOND = 30.0  # the page redraws about this often; more is not seen
MAX_EVERY = 100_000
HISTOGRAM_INTERVAL = 1.0  # seconds between histograms at least (they cost several norms)
CLOSE_TIMEOUT = 3.0  # seconds close() waits for the server at most
PAUSE_POLL = 0.1  # seconds between looks at the page's controls while paused
# seconds a paused script waits for a server it lost before it resumes on its own: nobody could
# resume it from a page meanwhile, and a job held forever by a crashed server is worse
ORPHANED_PAUSE = 60.0
_TOP_LEVEL = ("test_loss", "accuracy", "test_accuracy")  # log() keywords with their own column


def watch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    url: str,
    token: str | None = None,
    name: str | None = None,
    every: int | None = None,
) -> Watcher:
    """Start watching `model` (a plain module or a DistributedDataParallel one) trained by
    `optimizer`, sending to the Backprop Lens server at `url` (e.g. "http://127.0.0.1:8000")
    with its access `token` if it has one. The session is called `name` (default: the model's
    class). `every`: log every N optimizer steps; None adapts it (see the module docstring)."""
    return Watcher(model, optimizer, url=url, token=token, name=name, every=every)


class Watcher:
    """Hooks on an optimizer that send per-layer statistics of logged steps to a server."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        *,
        url: str,
        token: str | None = None,
        name: str | None = None,
        every: int | None = None,
    ) -> None:
        if every is not None and (not isinstance(every, int) or isinstance(every, bool)):
            raise TypeError(f"every: expected an integer >= 1 or None, got {every!r}")
        if every is not None and every < 1:
            raise ValueError(f"every: expected an integer >= 1 or None, got {every}")
        self._ddp = model if isinstance(model, DistributedDataParallel) else None
        module = model.module if self._ddp is not None else model
        self._optimizer = optimizer
        self._every = every
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        self.rank = torch.distributed.get_rank() if distributed else 0
        self.world_size = torch.distributed.get_world_size() if distributed else 1
        self._distributed = distributed and self.world_size > 1
        self.step = 0  # completed optimizer steps
        self.should_stop = False  # the page asked the script to stop
        self._next_log = every if every is not None else 1
        self._stats = LayerStats(observed_layers(module))
        self._logging = False  # the step in progress is logged
        self._pending: dict[str, Any] | None = None  # the last logged step's frame, not sent
        self._early: dict[str, Any] | None = None  # log() values given before their step
        # log() is called before optimizer.step() (its values are the coming step's) when its
        # first call came before the first step; else after it (as documented)
        self._log_before: bool | None = None
        self._epoch = 0
        self._control_seq = 0  # the last control state applied
        self._paused = False  # waiting in the post-hook for the page's resume
        self._learning_rate: float | None = None
        self._step_time: float | None = None  # smoothed seconds of a step without statistics
        self._cost: float | None = None  # smoothed seconds of a logged step's statistics
        self._pre_cost = 0.0
        self._mark: float | None = None  # when the previous post-hook ended
        self._rate_mark = (time.perf_counter(), 0)  # (time, step) of the last logged step
        self._next_histograms = 0.0  # perf_counter time from which histograms are due
        self._with_histograms = False  # the logged step in progress counts histograms
        self._closed = False
        self._failed = False
        self._sender: Sender | None = None
        if self.rank == 0:
            self._sender = Sender(
                url,
                token,
                {
                    "type": "topology",
                    "version": WIRE_VERSION,
                    "name": name or type(module).__name__,
                    "framework": "pytorch",
                    "model": type(module).__name__,
                    "parameters": int(sum(p.numel() for p in module.parameters())),
                    "world_size": self.world_size,
                    "layers": topology(module),
                },
            )
        self._handles = [
            optimizer.register_step_pre_hook(self._pre_hook),
            optimizer.register_step_post_hook(self._post_hook),
        ]

    # ---- public -------------------------------------------------------------------------------

    @property
    def session_id(self) -> str | None:
        """The server's id of this run's session (None before it connected, and off rank 0)."""
        return self._sender.session_id if self._sender is not None else None

    @property
    def every(self) -> int | None:
        """The fixed interval, or None when it adapts."""
        return self._every

    @property
    def dropped(self) -> int:
        """Metrics frames dropped because the server could not take them in time."""
        return self._sender.dropped if self._sender is not None else 0

    def log(self, loss: Any = None, **scalars: Any) -> None:
        """Attach the step's loss (a number or a tensor) and other scalars (test_loss,
        accuracy, test_accuracy and epoch have columns of their own; any other name is kept
        under "scalars") to the step just taken. Call it once per step, after
        optimizer.step(); on a step that is not logged it does nothing (no tensor is read)."""
        if self._log_before is None:  # the first call tells which way round the script goes
            self._log_before = self.step == 0
        pending = self._pending
        if not self._log_before and pending is not None and pending["step"] == self.step:
            target = pending
        elif self._log_before and self._due(self.step + 1):
            target = self._early = {"step": self.step + 1}
        else:
            return
        try:
            started = time.perf_counter()
            _fill(target, loss, scalars)
            if target is pending:
                self._send_pending()
            self._pre_cost += time.perf_counter() - started
        except Exception as exc:
            self._fail("log", exc)

    def close(self) -> None:
        """Remove the hooks, send what is left and tell the server the run finished; returns
        within CLOSE_TIMEOUT seconds whatever the server does."""
        if self._closed:
            return
        self._closed = True
        for handle in self._handles:
            handle.remove()
        if self._sender is not None:
            if self._pending is not None:
                self._send_pending()
            self._sender.final_step = self.step
            self._sender.close(CLOSE_TIMEOUT)

    def __enter__(self) -> Watcher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ---- hooks --------------------------------------------------------------------------------

    def _due(self, step: int) -> bool:
        """Whether `step` is logged (not inside DDP's no_sync). The same on every rank, whatever
        happened to one of them: the logged steps are where the ranks meet for a broadcast."""
        if step < self._next_log:
            return False
        # DDP sets this flag to False inside no_sync(): such gradients are not all-reduced.
        return self._ddp is None or bool(self._ddp.require_backward_grad_sync)

    def _pre_hook(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        self._pre_cost = 0.0
        self._logging = self._due(self.step + 1)
        if not self._logging:  # most steps: nothing to do
            return
        started = time.perf_counter()
        sender = self._sender
        if sender is None or sender.gave_up is not None or self._failed:
            return  # off rank 0, or nobody to send to: the schedule stays, the work does not
        histograms = self._with_histograms = started >= self._next_histograms
        if histograms:
            self._next_histograms = started + HISTOGRAM_INTERVAL
        try:
            self._stats.before_step(histograms)
        except Exception as exc:
            self._fail("gradient statistics", exc)
        self._pre_cost = time.perf_counter() - started

    def _post_hook(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        self.step += 1
        if self._every is not None and not self._logging:  # no clock needed: nothing to do
            return
        started = time.perf_counter()
        if self._mark is not None:  # a plain step: from the last hook's end to now, less stats
            plain = started - self._mark - self._pre_cost
            if plain > 0:
                self._step_time = _smooth(self._step_time, plain)
        if self._logging:
            self._logging = False
            try:
                self._record(started)
            except Exception as exc:
                self._fail("update statistics", exc)
            self._next_log = self._plan_next(self.step)
            control = self._sender.control if self._sender is not None else Control()
            if self._distributed:  # every rank comes here at the same steps, failed or not
                control = self._broadcast(control)
            self._apply(control)
        self._mark = time.perf_counter()

    def _record(self, started: float) -> None:
        """The logged step's statistics into frames (rank 0)."""
        if self._sender is None or self._failed:
            return
        layers = self._stats.after_step()
        if layers is not None:
            self._frames(self.step, layers)
        if self._cost is None or not self._with_histograms:  # those are paced by time
            self._cost = _smooth(self._cost, self._pre_cost + time.perf_counter() - started)

    def _frames(self, step: int, layers: list[dict[str, Any]]) -> None:
        """Queue the snapshot (histograms) and keep the metrics frame for log()."""
        sender = self._sender
        if sender is None:  # off rank 0 there is nothing to send (_record checks it first)
            return
        now = time.perf_counter()
        mark_time, mark_step = self._rate_mark
        rate = (step - mark_step) / (now - mark_time) if now > mark_time else 0.0
        self._rate_mark = (now, step)
        histograms = {
            entry["name"]: {
                "grad": entry.pop("grad_histogram"),
                "weight": entry.pop("weight_histogram"),
            }
            for entry in layers
            if "grad_histogram" in entry
        }
        if self._pending is not None:  # the previous logged step never got its log() call
            self._send_pending()
        frame: dict[str, Any] = {
            "type": "metrics",
            "step": step,
            "epoch": self._epoch,
            "loss": None,
            "learning_rate": _learning_rate(self._optimizer),
            "steps_per_second": rate,
            "max_grad_norm": math.sqrt(sum(entry["grad_norm"] ** 2 for entry in layers)),
            "layers": layers,
            "scalars": {},
        }
        early = self._early
        self._early = None
        if early is not None and early["step"] == step:  # log() came first: the frame is whole
            early.pop("step")
            scalars = early.pop("scalars", {})
            frame.update(early)
            frame["scalars"].update(scalars)
            if "epoch" in frame:
                self._epoch = int(frame["epoch"])
            sender.put_metrics(frame)
        else:
            self._pending = frame
        if histograms:
            sender.put_snapshot({"type": "snapshot", "step": step, "histograms": histograms})

    def _send_pending(self) -> None:
        frame, self._pending = self._pending, None
        if frame is None or self._sender is None:
            return
        if "epoch" in frame:
            self._epoch = int(frame["epoch"])
        self._sender.put_metrics(frame)

    def _plan_next(self, step: int) -> int:
        """The next logged step: the next multiple of `every`, or as the budget allows."""
        if self._every is not None:
            return (step // self._every + 1) * self._every
        if self._sender is not None and self._sender.gave_up is not None:
            return step + MAX_EVERY  # nobody will see them
        cost, plain = self._cost, self._step_time
        if cost is None or plain is None or plain <= 0:
            return step + 2  # the next step is plain, so it measures what a plain one costs
        interval = max(cost / (BUDGET * plain), 1.0 / (MAX_LOGS_PER_SECOND * plain), 1.0)
        return step + min(math.ceil(interval), MAX_EVERY)

    def _broadcast(self, control: Control) -> Control:
        """Rank 0's next logged step and control state, given to every rank."""
        backend = torch.distributed.get_backend()
        device = torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else None
        lr = control.learning_rate if control.learning_rate is not None else -1.0
        state = torch.tensor(
            [self._next_log, control.seq, control.paused, control.stop, lr],
            dtype=torch.float64,
            device=device,
        )
        torch.distributed.broadcast(state, src=0)
        next_log, seq, paused, stop, lr = state.tolist()
        self._next_log = int(next_log)
        return Control(int(seq), bool(paused), bool(stop), None if lr < 0 else lr)

    def _apply(self, control: Control) -> None:
        """Apply the page's controls at this step boundary; wait here while paused (rank 0
        resumes on its own when the server is gone: see ORPHANED_PAUSE)."""
        lost_since: float | None = None  # when the paused script last saw its server go
        while True:
            if control.seq != self._control_seq:
                self._control_seq = control.seq
                self._apply_changes(control)
            if not control.paused or control.stop:
                return
            time.sleep(PAUSE_POLL)
            sender = self._sender
            control = sender.control if sender is not None else Control()
            if sender is not None:
                now = time.monotonic()
                lost_since = None if sender.connected else lost_since or now
                reason = None
                if sender.gave_up is not None:
                    reason = "the watcher stopped sending"
                elif lost_since is not None and now - lost_since >= ORPHANED_PAUSE:
                    reason = f"the server was unreachable for {ORPHANED_PAUSE:g} s"
                if reason is not None:  # nobody can resume it from a page: it resumes
                    control = sender.release_pause()
                    self._resume_alone(reason)
            if self._distributed:
                control = self._broadcast(control)

    def _resume_alone(self, reason: str) -> None:
        self._paused = False
        log.warning("backprop_lens: paused at step %d, resuming: %s", self.step, reason)
        self._control_event("resume", f"resumed without the page at step {self.step}: {reason}")

    def _apply_changes(self, control: Control) -> None:
        step = self.step
        lr = control.learning_rate
        if lr is not None and lr != self._learning_rate:
            old = _learning_rate(self._optimizer)
            for group in self._optimizer.param_groups:
                group["lr"] = lr
            self._learning_rate = lr
            message = f"learning rate {old:g} -> {lr:g} at step {step}"
            self._control_event("learning_rate", message, old=old, new=lr)
        if control.stop and not self.should_stop:
            self.should_stop = True
            self._control_event("stop", f"stop asked; the script sees it after step {step}")
        elif control.paused and not self._paused:
            self._paused = True
            self._control_event("pause", f"paused after step {step}")
        elif not control.paused and self._paused:
            self._paused = False
            self._control_event("resume", f"running again from step {step}")

    def _control_event(self, action: str, message: str, **extra: Any) -> None:
        """Tell the page a control took effect at this step (rank 0 sends it)."""
        self._event(
            {"type": "control", "action": action, "step": self.step, **extra, "message": message}
        )

    def _event(self, event: dict[str, Any]) -> None:
        if self._sender is not None:
            self._sender.put_event(event)

    def _fail(self, where: str, exc: BaseException) -> None:
        """Turn the watcher off rather than let an error of its own reach the training loop."""
        if not self._failed:
            self._failed = True
            log.warning("backprop_lens: %s failed (%r); the watcher stops logging", where, exc)


def _fill(frame: dict[str, Any], loss: Any, scalars: dict[str, Any]) -> None:
    """Put log()'s values into a metrics frame (or the early values of one)."""
    if loss is not None:
        frame["loss"] = _number(loss)
    extra: dict[str, float | None] = frame.setdefault("scalars", {})
    for key, value in scalars.items():
        if key == "epoch":
            frame["epoch"] = int(value)
        elif key in _TOP_LEVEL:
            frame[key] = _number(value)
        else:
            extra[str(key)[:100]] = _number(value)


def _number(value: Any) -> float | None:
    """A logged value as a float; a tensor's mean (item() alone when it holds one number: this
    runs on logged steps only, when the CPU's caches hold little of it, and each op costs)."""
    if torch.is_tensor(value):
        number = float(value.item() if value.numel() == 1 else value.detach().float().mean())
    else:
        number = float(value)
    return number if math.isfinite(number) else None


def _learning_rate(optimizer: torch.optim.Optimizer) -> float | None:
    groups = optimizer.param_groups
    value = groups[0].get("lr") if groups else None
    return float(value) if isinstance(value, int | float) else None


def _smooth(average: float | None, value: float) -> float:
    return value if average is None else 0.7 * average + 0.3 * value
