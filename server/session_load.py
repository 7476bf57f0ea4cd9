"""Building a session's Trainer from what the store keeps, within the server's memory budget.

A session's Trainer is built when something first needs it (a run, a step, a trace...): when the
server loads a stored session, and again after an idle session was unloaded (server/session.py,
`Session.unload`). Either way it is rebuilt from the stored config and checkpoint, which restore
the weights, optimizer state, counters and random generators exactly, so an unloaded session
goes on as if it had stayed in memory. The memory it will hold is reserved first (engine/cost.py's
estimate, server/memory.py), so a Trainer that would not fit is refused before it exists.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from engine.config import ConfigError, HyperparameterUpdate, errors_from_validation, parse_config
from engine.data import DatasetError
from server.errors import ConflictError
from server.memory import MemoryBudget, estimate_cost
from server.session_writes import Checkpoint
from server.store import Store
from server.uploads import load_upload

if TYPE_CHECKING:
    from engine.trainer import Trainer

log = logging.getLogger("backprop_lens.sessions")

# What stored configs of earlier versions said for every upload: Playground's default features,
# which an upload of more than two columns now refuses (its columns are its inputs).
_OLD_UPLOAD_FEATURES = ["x1", "x2"]


def build_trainer(
    session_id: str,
    config: dict[str, Any],
    checkpoint: Checkpoint | None,
    store: Store,
    memory: MemoryBudget | None,
) -> Trainer:
    """The session's Trainer from its stored config, with `checkpoint` restored; its estimated
    memory reserved in `memory` first (MemoryBudgetError when it does not fit). ConflictError
    when the stored config no longer builds."""
    from engine.trainer import Trainer  # imported on first use: the server starts faster

    uploads = functools.partial(load_upload, store)
    try:
        run_config = parse_config(stored_config(config))
        if memory is not None:
            needed = estimate_cost(run_config, uploads).memory_bytes
            memory.reserve(session_id, needed, f"loading session {session_id}")
        trainer = Trainer(run_config, uploads=uploads)
        if checkpoint is not None:
            try:
                trainer.restore(checkpoint[1])
            except (ValueError, KeyError, OSError) as exc:
                log.error(
                    "session %s: cannot restore checkpoint of step %d: %s",
                    session_id,
                    checkpoint[0],
                    exc,
                )
        if memory is not None:  # the exact data shape is known now
            memory.reserve(session_id, trainer.cost.memory_bytes, f"loading session {session_id}")
    except (ConfigError, DatasetError) as exc:
        if memory is not None:
            memory.release(session_id)
        raise ConflictError(
            f"session {session_id} cannot be rebuilt from its stored config: {exc}"
        ) from exc
    except BaseException:
        if memory is not None:
            memory.release(session_id)
        raise
    return trainer


def stored_config(config: dict[str, Any]) -> dict[str, Any]:
    """A stored config as today's engine reads it: a run on an upload stored with the old
    default features trains on the file's columns as it did then."""
    name = (config.get("dataset") or {}).get("name", "")
    if str(name).startswith("upload:") and config.get("features") == _OLD_UPLOAD_FEATURES:
        return {key: value for key, value in config.items() if key != "features"}
    return config


def apply_update(
    session_id: str, trainer: Trainer, update: HyperparameterUpdate, memory: MemoryBudget | None
) -> dict[str, Any]:
    """trainer.update_hyperparameters(update), the memory of a larger batch reserved first (a
    step's working memory grows with the batch: MemoryBudgetError when it does not fit) and the
    reservation set to the new estimate after; returns the changes."""
    from engine import cost

    if memory is not None and update.batch_size is not None:
        bigger = trainer.config.model_copy(update={"batch_size": update.batch_size})
        needed = max(
            cost.estimate(bigger, trainer.cost.data).memory_bytes, trainer.cost.memory_bytes
        )
        memory.reserve(session_id, needed, f"batch_size {update.batch_size}")
    try:
        return trainer.update_hyperparameters(update)
    except ValidationError as exc:  # e.g. nesterov without momentum
        raise ConfigError(errors_from_validation(exc)) from None
    finally:
        if memory is not None:  # smaller or equal: always fits
            memory.reserve(session_id, trainer.cost.memory_bytes, "the session")
