"""Sessions: create, list, read, change hyperparameters, start, stop, step, reset, delete."""

from __future__ import annotations

import asyncio
import base64
import functools
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Response, status
from fastapi.concurrency import run_in_threadpool

from engine import cost
from engine.config import ConfigError, FieldError
from engine.data import DatasetError, make_dataset
from server.deps import FieldErrors, HubDep, SessionDep, SessionsDep, StoreDep, error_item, errors
from server.errors import ConflictError, SessionError
from server.external import ExternalSession
from server.hub import CLOSE_NOT_FOUND
from server.limits import DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT
from server.schemas import (
    ControlRequest,
    ControlResult,
    CostEstimate,
    EstimateRequest,
    EvaluateRequest,
    EvaluateResult,
    PatchResult,
    SessionCreate,
    SessionList,
    SessionPatch,
    SessionPublic,
    StartRequest,
    StepRequest,
    StepResult,
    StopResult,
)
from server.uploads import load_upload

router = APIRouter(prefix="/sessions", tags=["sessions"])
CONFIG = ("body", "config")  # where a config's fields live in these requests


class TrainingFailedError(SessionError):
    """The steps stopped on an error (out of memory, an engine bug): nothing is wrong with the
    request, the server could not do it."""

    status_code = 500
    code = "step_failed"


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=SessionPublic,
    summary="Create a session from a run configuration",
    responses=errors(400, 409, 422, 507),
)
def create_session(body: SessionCreate, sessions: SessionsDep) -> Any:
    """Validate the config against its data (output units, features, size) and store it, idle.
    A config over a cost limit (parameters, multiply-adds, memory) is refused before anything
    is built, with the estimate under "estimate" next to the 422's "errors" (code over_limit). 507
    (code memory_budget) when the loaded sessions leave no room for it in the memory budget, even
    after unloading the idle ones."""
    try:
        session = sessions.create(body.config, body.name)
    except cost.CostError as exc:
        raise FieldErrors(exc.errors, CONFIG, {"estimate": exc.estimate.to_dict()}) from None
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
        "errors": [] if problem is None else [error_item(problem, code=cost.OVER_LIMIT)],
        "estimate": estimate.to_dict(),
    }


@router.get(
    "",
    response_model=SessionList,
    # leaves out an item's "config" when configs=false (every other key is always given)
    response_model_exclude_unset=True,
    summary="List sessions, newest first, a page at a time",
    responses=errors(422),
)
def list_sessions(
    sessions: SessionsDep,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIST_LIMIT, description="at most this many sessions")
    ] = DEFAULT_LIST_LIMIT,
    cursor: Annotated[
        str | None, Query(description="the next_cursor of the previous page; absent: the first")
    ] = None,
    configs: Annotated[
        bool, Query(description="false: leave out each session's config (a lighter listing)")
    ] = True,
) -> dict[str, Any]:
    """The stored sessions, newest first (the ones loaded in memory show their live state), at
    most `limit` of them; `next_cursor` continues the listing, null on the last page. A cursor
    is a position, not an offset: sessions created after the first page never reappear or
    shift the later pages, and a deleted one is simply not listed."""
    after = None if cursor is None else _decode_cursor(cursor)
    page, key = sessions.page(limit, after, configs)
    return {"sessions": page, "next_cursor": None if key is None else _encode_cursor(key)}


def _encode_cursor(key: tuple[str, int]) -> str:
    """A listing position (created_at, rowid) as an opaque URL-safe token."""
    return base64.urlsafe_b64encode(orjson.dumps(list(key))).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[str, int]:
    """The position of a cursor `_encode_cursor` made; a 422 naming "cursor" for anything else."""
    try:
        key = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        key = None
    valid = (
        isinstance(key, list)
        and len(key) == 2
        and isinstance(key[0], str)
        and isinstance(key[1], int)
        and not isinstance(key[1], bool)
    )
    if not valid:
        problem = "is not a cursor this server gave; pass next_cursor of the previous page as is"
        raise FieldErrors([FieldError("cursor", problem)], ("query",))
    return key[0], key[1]


@router.get(
    "/{session_id}", response_model=SessionPublic, summary="Read a session", responses=errors(404)
)
def get_session(session: SessionDep) -> dict[str, Any]:
    """Status, step, latest metrics and config."""
    return session.public()


@router.patch(
    "/{session_id}",
    response_model=PatchResult,
    summary="Change hyperparameters (even while training) or the display name",
    responses=errors(400, 404, 409, 422, 507),
)
def patch_session(update: SessionPatch, session: SessionDep) -> dict[str, Any]:
    """Hyperparameters apply between two steps and emit a "hyperparameters" event with the old
    and new values; a new name is stored and sent to the clients in a "status" frame. The name
    changes only once the hyperparameters were accepted. "applied_at_step" is the trainer's step
    count when the hyperparameters applied (the next step uses them; the event has the same
    step), which a training session's "step" can lag by a report; null for a rename alone."""
    renaming = "name" in update.model_fields_set
    applied_at_step = None
    if not renaming or update.model_fields_set != {"name"}:
        try:
            applied = session.update_hyperparameters(update.hyperparameters())
        except ConfigError as exc:
            raise FieldErrors(exc.errors, ("body",)) from None
        applied_at_step = applied["applied_at_step"]
    if renaming and update.name is not None:
        session.rename(update.name)
    return {**session.public(), "applied_at_step": applied_at_step}


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
    The metrics are evaluated at the last step (eval_step == step), so the same config, seed
    and steps give the same numbers. A row of history is recorded at every multiple of the
    smallest of 1, 2, 5, 10, 20, 50... steps that gives at most 500 such rows per call, at
    about 30 a second and at the last step. 500 with the error when they stopped on one (the
    session keeps its last good state); 507 when they cannot be saved (a save that fails also
    ends them early)."""
    steps = body.steps if body is not None else 1
    future = await run_in_threadpool(session.step, steps)
    result = await asyncio.wrap_future(future)
    public = result.get("session") or session.public()  # as these steps left it
    if result.get("outcome") is None:  # the worker caught an error: no outcome from training
        raise TrainingFailedError(public["message"] or "training stopped by an error")
    await run_in_threadpool(session.ensure_saved)
    return {
        "step": public["step"],
        "epoch": public["epoch"],
        "metrics": public["metrics"],
        "status": public["status"],
    }


@router.post(
    "/{session_id}/evaluate",
    response_model=EvaluateResult,
    summary="Evaluate the network on the whole train and/or test data at the current step",
    responses=errors(400, 404, 409, 422),
)
def evaluate_session(session: SessionDep, body: EvaluateRequest | None = None) -> dict[str, Any]:
    """Allowed at any time: while the session trains, it runs between two steps, on the
    weights of one step. Changes nothing; with "both" it is also the evaluation the next
    metrics report shows."""
    split = body.split if body is not None else "both"
    return session.call(lambda trainer: trainer.scores(split))


class ControlNotApplicableError(ConflictError):
    """/control on a session this server trains (it has start, stop and PATCH)."""

    code = "not_external"


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
        raise ControlNotApplicableError(
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
