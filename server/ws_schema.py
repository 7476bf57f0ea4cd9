"""JSON Schemas (draft 2020-12) of every WebSocket frame on /ws/sessions/{id}, as GET
/api/ws-schema serves them and docs/websocket.md describes them.

Where each frame is built: "hello", "status" and "event" in server/session.py (hello, the
status publisher, `_emit_event`), "metrics" from engine.recorder.Report.to_dict (its "events"
go out as separate "event" frames) plus the server's clock "t", "snapshot" from
engine.introspect.snapshot, "error" in server/routes/ws.py. Each schema is self-contained.
Objects list every field the server sends today and stay open (additionalProperties) where
fields may be added, so a new field is not a breaking change; what a frame's type and an event's
type may be is closed, so a new kind of frame needs a schema here (tests/server/test_ws_schema.py
fails without one).
"""

from __future__ import annotations

from typing import Any

from engine.stats import LAYER_STAT_KEYS
from server.limits import MAX_PACE, MAX_STEPS_PER_REQUEST
from server.schemas import MetricsColumns, SessionPublic

DRAFT = "https://json-schema.org/draft/2020-12/schema"
WS_PATH = "/ws/sessions/{session_id}"

NUMBER = {"type": "number"}
NULLABLE_NUMBER = {"type": ["number", "null"]}
NULLABLE_INT = {"type": ["integer", "null"]}
NUMBERS = {"type": "array", "items": NULLABLE_NUMBER}


def _nested() -> dict[str, Any]:
    """An array of numbers (or of such arrays) of any depth, as a local $def of each frame."""
    return {"type": "array", "items": {"anyOf": [NULLABLE_NUMBER, {"$ref": "#/$defs/nested"}]}}


def _frame(kind: str, properties: dict[str, Any], required: list[str], **extra: Any) -> dict:
    """The schema of one frame type: {"type": kind, ...properties}, open to new fields."""
    return {
        "$schema": DRAFT,
        "title": f"{kind} frame",
        "type": "object",
        "properties": {"type": {"const": kind}, **properties},
        "required": ["type", *required],
        "additionalProperties": True,
        **extra,
    }


def _hoist(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """A pydantic model's schema without its "$defs", which go into `defs`: its "#/$defs/..."
    references then resolve against the frame's schema, where it is embedded."""
    schema = dict(schema)
    defs.update(schema.pop("$defs", {}))
    schema.pop("title", None)
    return schema


LAYER_STATS = {
    "type": "object",
    "description": "engine.stats.layer_statistics of one observed layer after the last step",
    "properties": {
        "name": {"type": "string", "description": "the layer's index in the config, e.g. '0'"},
        "type": {"type": "string", "description": "dense, conv2d, batchnorm, ..."},
        "grad_norm": NULLABLE_NUMBER,
        "grad_mean_abs": NULLABLE_NUMBER,
        "grad_max_abs": NULLABLE_NUMBER,
        "weight_norm": NULLABLE_NUMBER,
        "update_ratio": {**NULLABLE_NUMBER, "description": "null when not measured this report"},
        "clipped": {"type": "boolean"},
        "activation_mean": NULLABLE_NUMBER,
        "activation_std": NULLABLE_NUMBER,
        "dead_fraction": NULLABLE_NUMBER,
        "saturated_fraction": NULLABLE_NUMBER,
        "max_grad_norm": {**NULLABLE_NUMBER, "description": "largest since the last frame"},
        "grad_norm_after_clip": {**NULLABLE_NUMBER, "description": "the last step's, clipped"},
        "batch_mean": {**NUMBERS, "description": "batchnorm only: the last batch's means"},
        "batch_var": {**NUMBERS, "description": "batchnorm only: the last batch's variances"},
    },
    "required": list(LAYER_STAT_KEYS),
    "additionalProperties": True,
}

METRICS = _frame(
    "metrics",
    {
        "step": {"type": "integer", "description": "completed training steps"},
        "epoch": {"type": "integer"},
        "loss": {**NULLABLE_NUMBER, "description": "loss over the training set at eval_step"},
        "test_loss": {**NULLABLE_NUMBER, "description": "loss over the test set at eval_step"},
        "accuracy": {**NULLABLE_NUMBER, "description": "null for regression"},
        "test_accuracy": NULLABLE_NUMBER,
        "batch_loss": {**NULLABLE_NUMBER, "description": "mean batch loss since the last frame"},
        "learning_rate": {**NULLABLE_NUMBER, "description": "the rate of the next update"},
        "batch_size": {"type": "integer", "description": "samples per training step"},
        "steps_per_second": NULLABLE_NUMBER,
        "eval_step": {
            **NULLABLE_INT,
            "description": "the step loss, test_loss, accuracy and test_accuracy were taken at "
            "(null before any evaluation)",
        },
        "max_grad_norm": {**NULLABLE_NUMBER, "description": "largest global norm, unclipped"},
        "clip_count": {**NULLABLE_INT, "description": "steps clipped since the last frame"},
        "best_step": {**NULLABLE_INT, "description": "early stopping: the best test loss's step"},
        "layers": {"type": "array", "items": LAYER_STATS},
        "t": {**NUMBER, "description": "the server's monotonic clock in seconds"},
        "time": {
            "type": "string",
            "format": "date-time",
            "description": "wall-clock ISO 8601 UTC time of the report",
        },
    },
    [
        "step",
        "epoch",
        "loss",
        "test_loss",
        "accuracy",
        "test_accuracy",
        "batch_loss",
        "learning_rate",
        "steps_per_second",
        "max_grad_norm",
        "clip_count",
        "best_step",
        "layers",
        "t",
    ],
    description="about 30 a second while training (latest wins: a slow client skips some)",
)

HISTOGRAM = {
    "type": "object",
    "properties": {"edges": NUMBERS, "counts": {"type": "array", "items": {"type": "integer"}}},
    "required": ["edges", "counts"],
}

SNAPSHOT = _frame(
    "snapshot",
    {
        "step": {"type": "integer"},
        "batch_size": {"type": "integer", "description": "samples in the last training batch"},
        "samples_shown": {"type": "integer", "description": "of them, in nodes[...].samples"},
        "weights": {
            "type": "object",
            "description": "'0.W' -> nested lists (engine layout); large layers left out",
            "additionalProperties": {"$ref": "#/$defs/nested"},
        },
        "grads": {
            "type": "object",
            "description": "the gradients of those weights",
            "additionalProperties": {"$ref": "#/$defs/nested"},
        },
        "nodes": {
            "type": "object",
            "description": "per layer: mean activation and |delta| per unit over the batch",
            "additionalProperties": {
                "type": "object",
                "properties": {
                    "activation": NUMBERS,
                    "delta": {"anyOf": [NUMBERS, {"type": "null"}]},
                    "samples": {
                        "type": "object",
                        "properties": {
                            "a": {"$ref": "#/$defs/nested"},
                            "delta": {"$ref": "#/$defs/nested"},
                        },
                    },
                },
                "required": ["activation", "delta"],
            },
        },
        "grid": {
            "description": "the decision surface over the input plane (2-D inputs only)",
            "anyOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "properties": {
                        "resolution": {"type": "integer"},
                        "x": NUMBERS,
                        "y": NUMBERS,
                        "output": {"$ref": "#/$defs/nested"},
                        "neurons": {"type": "object"},
                    },
                    "required": ["resolution", "x", "y", "output", "neurons"],
                },
            ],
        },
        "histograms": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "properties": {"grad": HISTOGRAM, "weight": HISTOGRAM},
                "required": ["grad", "weight"],
            },
        },
        "conv": {
            "type": "object",
            "description": "per conv layer: a sample's input, filters, per-filter gradient "
            "norms and feature maps (the first channels that fit)",
            "additionalProperties": {"type": "object"},
        },
    },
    ["step", "batch_size", "samples_shown", "weights", "grads", "nodes", "grid", "histograms"],
    description="a few a second while training, and after reset or new weights (latest wins)",
    **{"$defs": {"nested": _nested()}},
)

# event "type" -> (its fields beyond type/step/message, the required ones)
EVENTS: dict[str, tuple[dict[str, Any], list[str]]] = {
    "clip": (
        {
            "kind": {"enum": ["value", "norm"]},
            "threshold": NUMBER,
            "norm_before": NULLABLE_NUMBER,
            "norm_after": NULLABLE_NUMBER,
            "fraction": NULLABLE_NUMBER,
        },
        ["kind", "threshold"],
    ),
    "diverged": ({"layer": {"type": ["string", "null"]}}, []),
    "early_stop": (
        {
            "best_step": NULLABLE_INT,
            "best_loss": NULLABLE_NUMBER,
            "restored": {"type": "boolean"},
        },
        ["best_step", "restored"],
    ),
    "reset": ({}, []),
    "weights": ({"names": {"type": "array", "items": {"type": "string"}}}, ["names"]),
    "hyperparameters": (
        {
            "changes": {
                "type": "object",
                "description": "field -> {old, new}",
                "additionalProperties": {
                    "type": "object",
                    "properties": {"old": {}, "new": {}},
                    "required": ["old", "new"],
                },
            }
        },
        ["changes"],
    ),
    "save_failed": ({}, []),
    "saved": ({}, []),
}


def _event() -> dict[str, Any]:
    """The "event" frame: one of EVENTS, each with step and message."""
    branches = [
        {
            "if": {"properties": {"type": {"const": kind}}},
            "then": {"properties": fields, "required": required},
        }
        for kind, (fields, required) in EVENTS.items()
    ]
    event = {
        "type": "object",
        "properties": {
            "type": {"enum": list(EVENTS)},
            "step": {"type": "integer"},
            "message": {"type": "string"},
        },
        "required": ["type", "step", "message"],
        "additionalProperties": True,
        "allOf": branches,
    }
    return _frame(
        "event",
        {"event": event},
        ["event"],
        description="in order, never dropped: something happened at a step",
    )


def frame_schemas() -> dict[str, dict[str, Any]]:
    """Frame type -> JSON Schema of the frames the server sends."""
    hello_defs: dict[str, Any] = {}
    status_defs: dict[str, Any] = {}
    history = _hoist(MetricsColumns.model_json_schema(), hello_defs)
    return {
        "hello": _frame(
            "hello",
            {
                "session": _hoist(SessionPublic.model_json_schema(), hello_defs),
                "config": {"type": "object", "description": "the run configuration document"},
                "history": {**history, "description": "GET /metrics's columns, thinned"},
            },
            ["session", "config", "history"],
            description="first, once: the session, its config and its history",
            **{"$defs": hello_defs},
        ),
        "metrics": METRICS,
        "snapshot": SNAPSHOT,
        "status": _frame(
            "status",
            {"session": _hoist(SessionPublic.model_json_schema(), status_defs)},
            ["session"],
            description="in order, never dropped: the session changed (status, name, error)",
            **{"$defs": status_defs},
        ),
        "event": _event(),
        "error": _frame(
            "error",
            {"message": {"type": "string"}},
            ["message"],
            description="a message from this client was refused, or the session is unknown",
        ),
    }


COMMAND = {
    "$schema": DRAFT,
    "title": "command message",
    "type": "object",
    "properties": {
        "type": {"const": "command"},
        "action": {"enum": ["start", "stop", "step", "reset"]},
        "steps": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_STEPS_PER_REQUEST,
            "description": "step: how many (default 1)",
        },
        "pace": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": MAX_PACE,
            "description": "start: at most this many steps per second (absent: full speed)",
        },
    },
    "required": ["type", "action"],
}

CLOSE_CODES = {
    "1008": "too many clients on this session, or this client stopped reading",
    "1009": "a message from the client was larger than the 1 MiB frame limit",
    "4401": "the access token is missing or wrong (like HTTP 401)",
    "4404": "no such session, or it was deleted (like HTTP 404)",
}


def ws_schema() -> dict[str, Any]:
    """The document GET /api/ws-schema answers."""
    return {
        "url": WS_PATH,
        "docs": "docs/websocket.md",
        "server_frames": frame_schemas(),
        "client_messages": {"command": COMMAND},
        "close_codes": CLOSE_CODES,
    }
