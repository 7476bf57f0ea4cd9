"""WebSocket /ws/ingest: a training script's watcher (backprop_lens.torch.watch) feeds an external
session (server/external.py).

Guarded like every route (server/security.py): the token when one is configured (close 4401),
the Origin check, and messages above 1 MiB close the socket with 1009. Here: the first frame,
within FIRST_FRAME_TIMEOUT seconds, must be a valid topology (else an error frame and close
4422); the server answers {"type": "session", "session": {...}}. Every later frame is validated
(server/ingest_schema.py); an invalid one is answered with {"type": "error", "message"} naming
the field, and dropped, as are frames beyond FRAME_RATE per second (BURST at once) but the
finish frame. A message may also hold a JSON array of up to MAX_BATCH frames, taken in order
and each counted against the rate as if sent alone: the watcher sends what gathered in a tenth
of a second as one message, which costs the training script's process far less than one
message per frame. Controls from the page reach the script as {"type": "control", ...} frames
on the same connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import orjson
from fastapi import APIRouter, WebSocket
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError
from starlette.websockets import WebSocketDisconnect

from engine.config import errors_from_validation
from server.errors import SessionError
from server.external import ExternalSession, Link, rate_limiter
from server.hub import encode
from server.ingest_schema import (
    INGEST_FRAME,
    EventFrame,
    FinishFrame,
    MetricsFrame,
    SnapshotFrame,
    TopologyFrame,
)
from server.sessions import SessionManager

log = logging.getLogger("backprop_lens.ws")

router = APIRouter(tags=["ingest"])

FIRST_FRAME_TIMEOUT = 10.0  # seconds a new connection has to send its topology
FRAME_RATE = 200.0  # frames per second a connection may send (the watcher sends at most 100)
BURST = 400.0
MAX_BATCH = 1000  # frames in one message (an array); the 1 MiB message limit comes first
CLOSE_INVALID = 4422  # the topology was refused (like HTTP 422)
CLOSE_CONFLICT = 4409  # no room for the session, or it is live elsewhere (like HTTP 409)


def _problem(exc: ValidationError) -> str:
    return "; ".join(str(error) for error in errors_from_validation(exc))


@router.websocket("/ws/ingest")
async def ingest(websocket: WebSocket) -> None:
    """Take one watched run's frames: topology first, then metrics, snapshots and events."""
    sessions: SessionManager = websocket.app.state.sessions
    await websocket.accept()
    try:
        first = await asyncio.wait_for(websocket.receive_text(), FIRST_FRAME_TIMEOUT)
    except (TimeoutError, WebSocketDisconnect, KeyError):
        with contextlib.suppress(Exception):
            await websocket.close(code=CLOSE_INVALID, reason="expected a topology frame")
        return
    try:
        topology = TopologyFrame.model_validate(orjson.loads(first))
    except (ValidationError, orjson.JSONDecodeError) as exc:
        message = _problem(exc) if isinstance(exc, ValidationError) else f"invalid JSON: {exc}"
        await _refuse(websocket, CLOSE_INVALID, f"topology frame: {message}")
        return
    link = Link(asyncio.get_running_loop())
    try:
        session = await run_in_threadpool(sessions.open_external, topology, link)
    except SessionError as exc:
        await _refuse(websocket, CLOSE_CONFLICT, str(exc))
        return
    await websocket.send_text(encode({"type": "session", "session": session.public()}))
    writer = asyncio.create_task(_write(websocket, link))
    finished = False
    try:
        finished = await _read(websocket, session)
    except WebSocketDisconnect:
        pass
    finally:
        writer.cancel()
        session.detach(finished=finished)
        await run_in_threadpool(session.persist)
    if finished:
        with contextlib.suppress(Exception):
            await websocket.close()


async def _refuse(websocket: WebSocket, code: int, message: str) -> None:
    with contextlib.suppress(Exception):
        await websocket.send_text(encode({"type": "error", "message": message}))
        await websocket.close(code=code, reason=message[:120])


async def _read(websocket: WebSocket, session: ExternalSession) -> bool:
    """Apply the script's frames until it finishes (True) or goes away (False)."""
    allowed = rate_limiter(FRAME_RATE, BURST)
    refused = 0
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return False
        raw = message.get("text")
        if raw is None:
            raw = message.get("bytes")
        if raw is None:
            continue
        try:
            document = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            await _error(websocket, f"expected a JSON frame, got invalid JSON: {exc}")
            continue
        batch = document if isinstance(document, list) else [document]
        if len(batch) > MAX_BATCH:
            await _error(
                websocket, f"expected at most {MAX_BATCH} frames in one message, got {len(batch)}"
            )
            continue
        for item in batch:
            finishing = isinstance(item, dict) and item.get("type") == "finish"
            if not finishing and not allowed():  # the end of a run is never dropped
                refused += 1
                if refused == 1 or refused % 100 == 0:
                    await _error(
                        websocket, f"{refused} frames dropped: more than {FRAME_RATE:g} a second"
                    )
                continue
            try:
                frame = INGEST_FRAME.validate_python(item)
            except ValidationError as exc:
                await _error(websocket, f"frame refused: {_problem(exc)}")
                continue
            if isinstance(frame, MetricsFrame):
                session.ingest_metrics(frame)
            elif isinstance(frame, SnapshotFrame):
                session.ingest_snapshot(frame)
            elif isinstance(frame, EventFrame):
                session.ingest_event(frame.event)
            elif isinstance(frame, FinishFrame):
                session.finish(frame.step)
                return True


async def _error(websocket: WebSocket, message: str) -> None:
    await websocket.send_text(encode({"type": "error", "message": message}))


async def _write(websocket: WebSocket, link: Link) -> None:
    """Send the frames queued for the script (controls), or close when asked to."""
    while True:
        frame = await link.outbox.get()
        if frame["type"] == "_close":
            with contextlib.suppress(Exception):
                await websocket.close(code=frame["code"], reason=frame["reason"])
            return
        with contextlib.suppress(Exception):
            await websocket.send_text(encode(frame))
