"""WebSocket /ws/sessions/{id}: live frames out (hello, metrics, snapshot, status, event, error),
commands in ({"type": "command", "action": "start" | "stop" | "step" | "reset", "steps"?: n,
"pace"?: steps per second for "start"}).

A malformed client message (not JSON, unknown action, larger than 64 KiB) is answered with an
{"type": "error", "message"} frame; the connection stays open. An unknown session gets an error
frame and close code 4404 (an application code mirroring HTTP 404: browsers cannot read the HTTP
status of a refused handshake, but they can read a close code and reason); a session that already
has 32 clients closes the new one with code 1008 and a reason.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import APIRouter, WebSocket
from fastapi.concurrency import run_in_threadpool
from starlette.websockets import WebSocketDisconnect

from server.errors import NotFoundError, SessionError
from server.external import ExternalSession
from server.hub import CLOSE_NOT_FOUND, CLOSE_POLICY, Client, Hub, HubFullError, encode
from server.limits import MAX_PACE, MAX_STEPS_PER_REQUEST, MAX_WS_MESSAGE_BYTES
from server.sessions import AnySession, SessionManager

log = logging.getLogger("backprop_lens.ws")

router = APIRouter(tags=["stream"])

MAX_MESSAGE_BYTES = MAX_WS_MESSAGE_BYTES
ACTIONS = ("start", "stop", "step", "reset")
MAX_STEPS = MAX_STEPS_PER_REQUEST


@router.websocket("/ws/sessions/{session_id}")
async def stream(websocket: WebSocket, session_id: str) -> None:
    """Stream one session's frames to one client and run its commands."""
    sessions: SessionManager = websocket.app.state.sessions
    hub: Hub = websocket.app.state.hub
    try:
        session = await run_in_threadpool(sessions.get, session_id)
    except NotFoundError as exc:
        await websocket.accept()
        await websocket.send_text(encode({"type": "error", "message": str(exc)}))
        await websocket.close(code=CLOSE_NOT_FOUND, reason=str(exc)[:120])
        return
    await websocket.accept()
    try:
        client = hub.add(session_id, websocket)
    except HubFullError as exc:
        await websocket.close(code=CLOSE_POLICY, reason=str(exc)[:120])
        return
    try:
        hello, histograms = await run_in_threadpool(_first_frames, session)  # up to ~1 MB
        client.start(hello)
        # An external run's histograms come only when its script sends them, so a page opened
        # between two (or after the run ended) gets the latest now. Offered with no await after
        # start: a newer one the hub published meanwhile is already in the mailbox and wins.
        if histograms is not None and client.snapshot is None:
            client.offer("snapshot", histograms)
        await _receive_loop(websocket, client, session)
    except WebSocketDisconnect:
        pass
    finally:
        hub.remove(client)


def _first_frames(session: AnySession) -> tuple[str, str | None]:
    """The hello, and for an external session its latest histograms (None before any)."""
    snapshot = session.latest_snapshot() if isinstance(session, ExternalSession) else None
    return encode(session.hello()), None if snapshot is None else encode(snapshot)


def _error(client: Client, message: str) -> None:
    client.offer("error", encode({"type": "error", "message": message}))


async def _receive_loop(websocket: WebSocket, client: Client, session: AnySession) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        raw: str | bytes | None = message.get("text")
        if raw is None:
            raw = message.get("bytes")
        if raw is None:
            continue
        size = len(raw.encode()) if isinstance(raw, str) else len(raw)
        if size > MAX_MESSAGE_BYTES:
            _error(client, f"message too large: {size} bytes, at most {MAX_MESSAGE_BYTES}")
            continue
        try:
            command = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            _error(client, f"expected a JSON message, got invalid JSON: {exc}")
            continue
        problem = _check(command)
        if problem is not None:
            _error(client, problem)
            continue
        try:
            await _run(command, session)
        except SessionError as exc:
            _error(client, str(exc))


def _check(command: Any) -> str | None:
    """What is wrong with a client message, or None."""
    if not isinstance(command, dict) or command.get("type") != "command":
        return 'expected {"type": "command", "action": ...}'
    action = command.get("action")
    if action not in ACTIONS:
        return f"unknown action {action!r}, expected one of {', '.join(ACTIONS)}"
    if action == "step":
        steps = command.get("steps", 1)
        if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= MAX_STEPS:
            return f"steps: must be an integer from 1 to {MAX_STEPS}, got {steps!r}"
    if action == "start":
        pace = command.get("pace")
        if pace is not None and (
            not isinstance(pace, int | float)
            or isinstance(pace, bool)
            or not 0 < pace <= MAX_PACE  # NaN fails this too
        ):
            return f"pace: must be a number of steps per second in (0, {MAX_PACE:g}], got {pace!r}"
    return None


async def _run(command: dict[str, Any], session: AnySession) -> None:
    """Run one command off the event loop; status and metrics frames report the outcome."""
    action = command["action"]
    if action == "start":
        await run_in_threadpool(session.start, command.get("pace"))
    elif action == "stop":
        await run_in_threadpool(session.stop)
        await run_in_threadpool(session.ensure_saved)  # an error frame when it could not save
    elif action == "step":
        await run_in_threadpool(session.step, int(command.get("steps", 1)))
    else:
        await run_in_threadpool(session.reset)
