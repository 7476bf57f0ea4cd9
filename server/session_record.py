"""A session's record: the fields the sessions table stores, and the public session document.

The document (SessionPublic in server/schemas.py) is built by `SessionRecord.public` and nowhere
else: the REST answers, the session list (loaded sessions and stored ones alike), the WebSocket
hello and every "status" frame all come from it, so they cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

_DOING = {
    "train": "running",
    "step": "running steps",
    "reset": "resetting",
    "weights": "loading weights",
}


@dataclass
class SessionRecord:
    """One session's stored fields (mutable: the owning Session updates them under its lock)."""

    id: str  # random hex, the {session_id} of every URL
    name: str  # the display name (the id when none was given)
    config: dict[str, Any]  # the run configuration document, with hyperparameter changes
    created_at: str  # ISO 8601 UTC
    updated_at: str  # ISO 8601 UTC, on every status, name or config change
    # idle, running, paused, diverged, stopped_early or interrupted; an external session's
    # (server/external.py) live, finished or disconnected
    status: str = "idle"
    step: int = 0  # completed training steps
    epoch: int = 0  # completed passes over the training set
    metrics: dict[str, Any] | None = None  # the latest report without layers and events
    message: str | None = None  # why the session is in its state, e.g. divergence
    best_step: int | None = None  # step of the best test loss (early stopping)
    save_error: str | None = None  # what could not be saved and what is kept (never stored)

    @classmethod
    def new(cls, id: str, name: str, config: dict[str, Any], now: str) -> SessionRecord:
        """An idle session at step 0, created `now`."""
        return cls(id=id, name=name, config=config, created_at=now, updated_at=now)

    @property
    def kind(self) -> str:
        """ "external" for a run watched from its own script (its config is the topology the
        script sent, marked so), else "engine"."""
        return "external" if self.config.get("kind") == "external" else "engine"

    @classmethod
    def from_stored(cls, row: dict[str, Any]) -> SessionRecord:
        """The record of a `Store.get_session` row (a stored name may be null: the id shows).
        An external run stored as live lost its connection with the server that stopped."""
        record = cls(
            id=row["id"],
            name=row.get("name") or row["id"],
            config=row["config"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            status=row["status"],
            step=int(row.get("step") or 0),
            epoch=int(row.get("epoch") or 0),
            metrics=row.get("metrics"),
            message=row.get("message"),
            best_step=row.get("best_step"),
        )
        if record.kind == "external" and record.status == "live":
            record.status = "disconnected"
        return record

    def public(self, pace: float | None = None) -> dict[str, Any]:
        """The SessionPublic document; `pace` is the steps per second of a paced run, given
        only while it runs."""
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "status": self.status,
            "step": self.step,
            "epoch": self.epoch,
            "metrics": self.metrics,
            "config": self.config,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "message": self.message,
            "best_step": self.best_step,
            "pace": pace,
            "save_error": self.save_error,
        }

    def stored_fields(self) -> dict[str, Any]:
        """The fields `Store.update_session` writes (id and created_at never change)."""
        return {
            "name": self.name,
            "status": self.status,
            "step": self.step,
            "epoch": self.epoch,
            "metrics": self.metrics,
            "message": self.message,
            "best_step": self.best_step,
            "updated_at": self.updated_at,
            "config": self.config,
        }


def default_name(config: dict[str, Any]) -> str:
    """The display name of a session created without one, e.g. 'spiral 8-8-1 tanh'."""
    layers = config.get("layers") or []
    sizes = [
        str(layer.get("units") or layer.get("filters") or layer.get("type")) for layer in layers
    ]
    activation = next((layer.get("activation") for layer in layers if layer.get("activation")), "")
    dataset = config.get("dataset", {}).get("name", "run")
    return f"{dataset} {'-'.join(sizes)} {activation}".strip()


def doing(busy: str) -> str:
    """What a session busy with `busy` is doing, for a refusal: 'running steps'."""
    return _DOING.get(busy, busy)
