"""Typed WebSocket frames (docs/websocket.md; JSON Schemas at GET /api/ws-schema).

`parse_frame` turns one decoded frame into its dataclass. Each keeps the decoded JSON in `data`,
so a field a later server adds is still at hand (the schemas allow extra fields).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FRAME_TYPES = ("hello", "metrics", "snapshot", "status", "event", "error")


@dataclass(frozen=True)
class Frame:
    """Any frame: its `type` and the decoded JSON object."""

    type: str
    data: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class HelloFrame(Frame):
    """The first frame: the session document, its config and its recorded history (as
    GET /metrics columns, thinned)."""

    session: dict[str, Any] = field(repr=False)
    config: dict[str, Any] = field(repr=False)
    history: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class LayerStats:
    """One layer with weights in a metrics frame (its index in the config's layers is `name`)."""

    name: str
    type: str
    grad_norm: float | None
    weight_norm: float | None
    update_ratio: float | None
    grad_mean_abs: float | None
    grad_max_abs: float | None
    max_grad_norm: float | None
    activation_mean: float | None
    activation_std: float | None
    dead_fraction: float | None
    saturated_fraction: float | None
    data: dict[str, Any] = field(repr=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LayerStats:
        """A layer entry of a metrics frame (missing statistics are None)."""
        return cls(
            name=str(data.get("name")),
            type=str(data.get("type")),
            grad_norm=data.get("grad_norm"),
            weight_norm=data.get("weight_norm"),
            update_ratio=data.get("update_ratio"),
            grad_mean_abs=data.get("grad_mean_abs"),
            grad_max_abs=data.get("grad_max_abs"),
            max_grad_norm=data.get("max_grad_norm"),
            activation_mean=data.get("activation_mean"),
            activation_std=data.get("activation_std"),
            dead_fraction=data.get("dead_fraction"),
            saturated_fraction=data.get("saturated_fraction"),
            data=data,
        )


@dataclass(frozen=True)
class MetricsFrame(Frame):
    """A training report: whole-set loss and accuracy evaluated at `eval_step`, the batch loss,
    the learning rate and per-layer statistics (`layers`, in config order)."""

    step: int
    epoch: int
    loss: float | None
    test_loss: float | None
    accuracy: float | None
    test_accuracy: float | None
    eval_step: int | None
    batch_loss: float | None
    learning_rate: float | None
    steps_per_second: float | None
    max_grad_norm: float | None
    clip_count: int | None
    best_step: int | None
    layers: list[LayerStats] = field(repr=False)
    t: float | None = None
    time: str | None = None


@dataclass(frozen=True)
class SnapshotFrame(Frame):
    """What the page redraws the network from: `weights` and `grads` are "0.W"-style names to
    nested lists in the engine's layout (layers too large for a frame are left out)."""

    step: int
    weights: dict[str, Any] = field(repr=False)
    grads: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class StatusFrame(Frame):
    """The session document after its status, name or save state changed."""

    status: str
    step: int
    session: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class EventFrame(Frame):
    """Something that happened at a step: `kind` is the event's type ("hyperparameters",
    "clip", "diverged", "early_stop", "weights", "reset", "save_failed", "saved")."""

    kind: str
    step: int | None
    message: str
    event: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class ErrorFrame(Frame):
    """The server refused a message this client sent (the connection stays open)."""

    message: str


def parse_frame(data: dict[str, Any]) -> Frame:
    """The typed frame for one decoded WebSocket message (a plain Frame for an unknown type)."""
    kind = str(data.get("type"))
    if kind == "metrics":
        return MetricsFrame(
            type=kind,
            data=data,
            step=int(data["step"]),
            epoch=int(data.get("epoch", 0)),
            loss=data.get("loss"),
            test_loss=data.get("test_loss"),
            accuracy=data.get("accuracy"),
            test_accuracy=data.get("test_accuracy"),
            eval_step=data.get("eval_step"),
            batch_loss=data.get("batch_loss"),
            learning_rate=data.get("learning_rate"),
            steps_per_second=data.get("steps_per_second"),
            max_grad_norm=data.get("max_grad_norm"),
            clip_count=data.get("clip_count"),
            best_step=data.get("best_step"),
            layers=[LayerStats.from_dict(layer) for layer in data.get("layers") or []],
            t=data.get("t"),
            time=data.get("time"),
        )
    if kind == "hello":
        return HelloFrame(
            type=kind,
            data=data,
            session=data.get("session") or {},
            config=data.get("config") or {},
            history=data.get("history") or {},
        )
    if kind == "snapshot":
        return SnapshotFrame(
            type=kind,
            data=data,
            step=int(data.get("step", 0)),
            weights=data.get("weights") or {},
            grads=data.get("grads") or {},
        )
    if kind == "status":
        session = data.get("session") or {}
        return StatusFrame(
            type=kind,
            data=data,
            status=str(session.get("status")),
            step=int(session.get("step", 0)),
            session=session,
        )
    if kind == "event":
        event = data.get("event") or {}
        return EventFrame(
            type=kind,
            data=data,
            kind=str(event.get("type")),
            step=event.get("step"),
            message=str(event.get("message", "")),
            event=event,
        )
    if kind == "error":
        return ErrorFrame(type=kind, data=data, message=str(data.get("message", "")))
    return Frame(type=kind, data=data)
