"""GET /api/ws-schema: the JSON Schema of every WebSocket frame (server/ws_schema.py), and the
text that puts the WebSocket into the OpenAPI document, so /docs and /redoc show it although
OpenAPI cannot describe a WebSocket route itself."""

from __future__ import annotations

import functools
from typing import Any

from fastapi import APIRouter

from server.ws_schema import CLOSE_CODES, WS_PATH, ws_schema

router = APIRouter(tags=["stream"])

_FRAMES = (
    "`hello` (first, once: the session, its config, its history), "
    "`metrics` (~30/s while training: losses, eval_step, learning rate, per-layer gradient "
    "statistics), `snapshot` (weights, gradients, node values, decision grid), "
    "`status` (the session document when it changes), `event` (clip, diverged, early_stop, "
    "reset, weights, hyperparameters, save_failed, saved) and `error`"
)
_CLOSES = "; ".join(f"{code} {why}" for code, why in CLOSE_CODES.items())

API_DESCRIPTION = f"""Script everything the page does: create a session from a run
configuration, start, stop and step it, change hyperparameters while it trains, read its
history, weights, predictions and decision surface.

**Live frames: the WebSocket** `ws://<host>:<port>{WS_PATH}` streams one session as JSON text
frames told apart by `"type"`: {_FRAMES}. It takes
`{{"type": "command", "action": "start" | "stop" | "step" | "reset"}}` messages (`"steps"` for
step, `"pace"` for start). Authentication is the HTTP one (header, `?token=` or the cookie);
a browser's Origin must be this server's. Close codes: {_CLOSES}.
The JSON Schema of every frame and message: [GET /api/ws-schema](/api/ws-schema); the fields
one by one: `docs/websocket.md` in the source tree.
"""

STREAM_TAG = {
    "name": "stream",
    "description": f"The WebSocket {WS_PATH}: {_FRAMES}. Schemas at GET /api/ws-schema.",
}


@functools.cache
def _document() -> dict[str, Any]:
    return ws_schema()


@router.get(
    "/ws-schema",
    response_model=dict[str, Any],
    summary="JSON Schemas of the WebSocket's frames and messages",
)
def get_ws_schema() -> dict[str, Any]:
    """{"url", "docs", "server_frames": {frame type: JSON Schema (draft 2020-12)},
    "client_messages": {"command": JSON Schema}, "close_codes": {code: meaning}}. Every frame
    the server sends validates against the schema named by its "type"; objects are open to
    fields added later, the frame and event types are closed."""
    return _document()
