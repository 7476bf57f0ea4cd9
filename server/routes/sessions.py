"""Sessions: create, list, read, change hyperparameters, start, stop, step, reset, delete."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from fastapi import APIRouter, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from engine import cost
from engine.config import ConfigError, FieldError
from engine.data import DatasetError, make_dataset
from server.deps import FieldErrors, HubDep, SessionDep, SessionsDep, StoreDep, error_item, errors
from server.errors import ConflictError, SessionError
from server.external import ExternalSession
from server.hub import CLOSE_NOT_FOUND
from server.schemas import (
    ControlRequest,
    ControlResult,
    CostEstimate,
    EstimateRequest,
    SessionCreate,
    SessionList,
    SessionPatch,
    SessionPublic,
    StartRequest,
    StepRequest,
    StepResult,
    StopResult,
)
from server.session import load_upload

router = APIRouter(prefix="/sessions", tags=["sessions"])
CONFIG = ("body", "config")  # where a config's fields live in these requests


class TrainingFailedError(SessionError):
    """The steps stopped on an error (out of memory, an engine bug): nothing is wrong with the
    request, the server could not do it."""

    status_code = 500


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=SessionPublic,
    summary="Create a session from a run configuration",
    responses=errors(400, 409, 422),
)
def create_session(body: SessionCreate, sessions: SessionsDep) -> Any:
    """Validate the config against its data (output units, features, size) and store it, idle.
    A config over a cost limit (parameters, multiply-adds, memory) is refused before anything
    is built, with the estimate under "estimate" next to the 422's "detail"."""
    try:
        session = sessions.create(body.config, body.name)
    except cost.CostError as exc:
        return JSONResponse(
            status_code=422,
            content={
                "detail": [error_item(e, CONFIG) for e in exc.errors],
                "estimate": exc.estimate.to_dict(),
            },
        )
    except ConfigError as exc:
        raise FieldErrors(exc.errors, CONFIG) from None
    return session.public()


@router.post(
    "/estimate",
    response_model=CostEstimate,
    summary="What a run configuration would cost (parameters, multiply-adds, memory)",
    responses=errors(400, 422),
)
def estimate_session(body: EstimateRequest, store: StoreDep) -> dict[str, Any]:
    """The estimate POST /api/sessions checks, computed from the config without building
    anything (an uploaded dataset is read for its shape); `errors` lists the limit it breaks,
    as the 422 of POST /api/sessions would. Only the cost is checked here."""
    config = body.config
    shape = cost.data_shape(config)
    if shape is None:
        try:
            uploads = functools.partial(load_upload, store)
            shape = cost.data_shape(config, make_dataset(config.dataset, config.seed, uploads))
        except DatasetError as exc:
            raise FieldErrors([FieldError(exc.field, exc.message)], CONFIG) from None
    estimate = cost.estimate(config, shape)
    problem = cost.first_problem(estimate)
    return {
        "fits": problem is None,
        "errors": [] if problem is None else [error_item(problem, CONFIG)],
        "estimate": estimate.to_dict(),
    }


@router.get("", response_model=SessionList, summary="List sessions, newest first")
def list_sessions(sessions: SessionsDep) -> dict[str, Any]:
    """Every stored session (the ones loaded in memory show their live state)."""
    return {"sessions": sessions.list()}


@router.get(
    "/{session_id}", response_model=SessionPublic, summary="Read a session", responses=errors(404)
)
def get_session(session: SessionDep) -> dict[str, Any]:
    """Status, step, latest metrics and config."""
    return session.public()


@router.patch(
    "/{session_id}",
    response_model=SessionPublic,
    summary="Change hyperparameters (even while training) or the display name",
    responses=errors(400, 404, 409, 422),
)
def patch_session(update: SessionPatch, session: SessionDep) -> dict[str, Any]:
    """Hyperparameters apply between two steps and emit a "hyperparameters" event with the old
    and new values; a new name is stored and sent to the clients in a "status" frame. The name
    changes only once the hyperparameters were accepted."""
    renaming = "name" in update.model_fields_set
    if not renaming or update.model_fields_set != {"name"}:
        try:
            session.update_hyperparameters(update.hyperparameters())
        except ConfigError as exc:
            raise FieldErrors(exc.errors, ("body",)) from None
    if renaming and update.name is not None:
        session.rename(update.name)
    return session.public()


@router.post(
    "/{session_id}/start",
    response_model=SessionPublic,
    summary="Start training in the background",
    responses=errors(400, 404, 409, 422, 429, 507),
)
def start_session(session: SessionDep, body: StartRequest | None = None) -> dict[str, Any]:
    """409 if it is running already; 429 if --max-training sessions train already. With
    {"pace": n} it trains at most n steps per second, as the page does at a watchable speed.
    507 while what the session recorded cannot be written (it is tried again first)."""
    return session.start(pace=body.pace if body is not None else None)


@router.post(
    "/{session_id}/stop",
    response_model=StopResult,
    summary="Stop training after the current step",
    responses=errors(404, 409, 507),
)
def stop_session(session: SessionDep) -> dict[str, Any]:
    """Waits for the step in progress, checkpoints and answers the step reached; 507 when the
    checkpoint or history cannot be written (the detail says what the data directory keeps)."""
    stopped = session.stop()
    session.ensure_saved()
    return stopped


@router.post(
    "/{session_id}/step",
    response_model=StepResult,
    summary="Run exactly n training steps and wait for them",
    responses=errors(400, 404, 409, 422, 429, 500, 507),
)
async def step_session(session: SessionDep, body: StepRequest | None = None) -> dict[str, Any]:
    """409 while the session is running; the steps run in a worker thread, not the event loop.
    500 with the error when they stopped on one (the session keeps its last good state); 507
    when they cannot be saved (a save that fails also ends them early)."""
    steps = body.steps if body is not None else 1
    future = await run_in_threadpool(session.step, steps)
    result = await asyncio.wrap_future(future)
    if result.get("outcome") is None:  # the worker caught an error: no outcome from training
        raise TrainingFailedError(session.public()["message"] or "training stopped by an error")
    await run_in_threadpool(session.ensure_saved)
    public = session.public()
    return {
        "step": public["step"],
        "epoch": public["epoch"],
        "metrics": public["metrics"],
        "status": public["status"],
    }


@router.post(
    "/{session_id}/control",
    response_model=ControlResult,
    summary="Pause, resume or stop a watched script, or give it a new learning rate",
    responses=errors(400, 404, 409, 422),
)
def control_session(body: ControlRequest, session: SessionDep) -> dict[str, Any]:
    """For an external session (a script running backprop_lens.torch.watch): the control is
    sent to the script, which applies it at its next logged step and reports it as a
    "control" event. 409 when the script is not connected, and for engine sessions (they
    have start, stop and PATCH)."""
    if not isinstance(session, ExternalSession):
        raise ConflictError(
            f"session {session.id} is trained by this server: use start, stop and PATCH; "
            "/control is for external sessions"
        )
    return session.control(body.action, body.learning_rate)


@router.post(
    "/{session_id}/reset",
    response_model=SessionPublic,
    summary="Stop, re-initialise the weights from the seed and clear the history",
    responses=errors(404, 409),
)
def reset_session(session: SessionDep) -> dict[str, Any]:
    """Back to step 0 with the same seed; an "reset" event starts the new history."""
    return session.reset()


@router.delete(
    "/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete a session with its history and checkpoint",
    responses=errors(404),
)
async def delete_session(session: SessionDep, sessions: SessionsDep, hub: HubDep) -> Response:
    """Stops it first; its WebSocket clients are closed with code 4404."""
    await run_in_threadpool(sessions.delete, session)
    await hub.close_session(session.id, CLOSE_NOT_FOUND, "session deleted")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
