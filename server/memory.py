"""The server-wide memory budget: what loaded sessions may hold together, from engine/cost.py's
estimate of each, and the rule that unloads idle sessions to make room.

A session is *loaded* while its Trainer exists (its parameters, data and working memory are in
RAM); it then holds a reservation of `Cost.memory_bytes`, its estimated peak. A session not
loaded holds nothing here: its record, history and checkpoint are in the store, and its Trainer
is rebuilt from them the next time it is used. Reserving checks the sum of every reservation
against the budget (--memory-budget) before the Trainer is built, so a run that would not fit is
refused before any of its arrays exist; the SessionManager first unloads idle sessions, least
recently used first, to make room (`MemoryBudget.make_room`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine import cost
from engine.config import ConfigError, RunConfig
from engine.data import DatasetError, make_dataset
from server.errors import SessionError

# Share of the machine's memory (physical RAM, or the cgroup's limit when lower) the sessions may
# hold by default: the rest is for the server itself, answers being encoded and everything else
# running on the machine. engine/cost.py's estimate is of a session's peak, so the sum of the
# peaks staying under half the memory leaves room for its error.
DEFAULT_BUDGET_FRACTION = 0.5
FALLBACK_MEMORY_BYTES = 8 * cost.GiB  # when the machine's memory cannot be read
UNLIMITED = 2**62  # a budget nothing reaches (sessions built outside a server, in tests)
_CGROUP_LIMITS = (
    Path("/sys/fs/cgroup/memory.max"),  # cgroup v2
    Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),  # cgroup v1
)


class MemoryBudgetError(SessionError):
    """Loading the session would take the loaded sessions' estimated memory over the budget,
    even after unloading every idle one."""

    status_code = 507
    code = "memory_budget"


def machine_memory_bytes() -> int:
    """Physical RAM, or the memory limit of this process's cgroup when that is lower."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = FALLBACK_MEMORY_BYTES
    for path in _CGROUP_LIMITS:
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text.isdigit() and 0 < int(text) < total:  # "max" (no limit) is not a number
            total = int(text)
    return total


def default_memory_budget() -> int:
    """--memory-budget's default: DEFAULT_BUDGET_FRACTION of the machine's memory."""
    return int(machine_memory_bytes() * DEFAULT_BUDGET_FRACTION)


def parse_bytes(text: str) -> int:
    """A size from the command line: '4GiB', '512M', '2g', '1073741824' (bytes)."""
    units = {"k": cost.KiB, "m": cost.MiB, "g": cost.GiB, "t": 1024 * cost.GiB}
    raw = text.strip().lower().removesuffix("ib").removesuffix("b")
    scale = units.get(raw[-1:], 1)
    number = raw[:-1] if raw[-1:] in units else raw
    try:
        value = int(float(number) * scale)
    except (ValueError, OverflowError):
        raise ValueError(
            f"expected a size such as 4GiB, 512MiB or 1073741824, got {text!r}"
        ) from None
    if value < 1:
        raise ValueError(f"expected a size > 0, got {text!r}")
    return value


def estimate_cost(config: RunConfig, uploads: Callable[[str], Any]) -> cost.Cost:
    """engine/cost.py's estimate of a session with this config, before building it: from the
    config alone for built-in data; an upload's arrays (bounded by the upload limits) are read
    for their shape. `uploads` is load_upload bound to a store; ConfigError naming the field
    for data that does not fit."""
    shape = cost.data_shape(config)
    if shape is None:
        try:
            dataset = make_dataset(config.dataset, config.seed, uploads)
        except DatasetError as exc:
            raise ConfigError.single(exc.field, exc.message) from None
        shape = cost.data_shape(config, dataset)
    return cost.estimate(config, shape)


class MemoryBudget:
    """Reservations of the loaded sessions against `budget` bytes (thread-safe)."""

    def __init__(self, budget: int) -> None:
        if budget < 1:
            raise ValueError(f"memory_budget: expected a number of bytes >= 1, got {budget}")
        self.budget = budget
        self._held: dict[str, int] = {}  # session id -> bytes reserved
        self._lock = threading.Lock()  # guards _held
        # Set by the SessionManager: make_room(nbytes, keep) unloads idle sessions other than
        # `keep` until `keep` could hold `nbytes`, or none is left to unload.
        self.make_room: Callable[[int, str], None] = lambda nbytes, keep: None

    def reserved(self) -> int:
        """Bytes reserved by every loaded session."""
        with self._lock:
            return sum(self._held.values())

    def held(self, session_id: str) -> int:
        """Bytes reserved by one session (0 when it is not loaded)."""
        with self._lock:
            return self._held.get(session_id, 0)

    def fits(self, session_id: str, nbytes: int) -> bool:
        """Whether `session_id` could hold `nbytes` now."""
        with self._lock:
            return sum(v for k, v in self._held.items() if k != session_id) + nbytes <= self.budget

    def reserve(self, session_id: str, nbytes: int, what: str) -> None:
        """Reserve `nbytes` for `session_id` (replacing what it held), unloading idle sessions
        when that would pass the budget; MemoryBudgetError naming `what` (e.g. "creating this
        session"), the estimate and the budget when even that is not enough."""
        if self._try(session_id, nbytes):
            return
        self.make_room(nbytes, session_id)
        if self._try(session_id, nbytes):
            return
        with self._lock:
            others = {k: v for k, v in self._held.items() if k != session_id}
        raise MemoryBudgetError(
            f"{what} needs about {cost.format_bytes(nbytes)} of memory (engine/cost.py's "
            f"estimate), but {len(others)} loaded session(s) hold "
            f"{cost.format_bytes(sum(others.values()))} of the server's memory budget of "
            f"{cost.format_bytes(self.budget)} (--memory-budget) and none of them can be "
            "unloaded now; stop a training session, delete one, or use a smaller network or "
            "batch"
        )

    def release(self, session_id: str) -> None:
        """Forget what `session_id` held (it was unloaded or deleted)."""
        with self._lock:
            self._held.pop(session_id, None)

    def _try(self, session_id: str, nbytes: int) -> bool:
        """Check and reserve in one step, so reservations that arrive together cannot all fit;
        holding less than before always fits."""
        with self._lock:
            others = sum(v for k, v in self._held.items() if k != session_id)
            if others + nbytes > self.budget and nbytes > self._held.get(session_id, 0):
                return False
            self._held[session_id] = nbytes
            return True
