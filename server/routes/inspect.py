"""Looking inside a session: metric history, traces, predictions, the decision grid, the data,
weights (JSON and .npz), the config and snapshots.

Large answers are encoded once with orjson (`JSONBytes`) instead of being walked by the response
validator; their models are still declared for the OpenAPI document.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Body, Query, Response

from engine import torch_layout
from engine.config import RunConfig
from engine.cost import EVAL_MEMORY_BYTES, MAX_FLOPS_PER_EVALUATION, format_bytes
from engine.network import WeightsError
from server.deps import JSONBytes, SessionDep, errors
from server.errors import BadRequestError, ConflictError, InvalidFieldsError, TooLargeError
from server.external import ExternalSession
from server.limits import (
    BOUNDARY_NEURON_VALUES,
    MAX_ANSWER_VALUES,
    MAX_BOUNDARY_RESOLUTION,
    MAX_DATA_POINTS,
    MAX_METRICS_ROWS,
)
from server.schemas import (
    DataOut,
    Grid,
    MetricsColumns,
    PredictRequest,
    PredictResult,
    Snapshot,
    TraceRequest,
    TraceResult,
    WeightsResult,
)

if TYPE_CHECKING:
    from engine.trainer import Trainer

router = APIRouter(prefix="/sessions/{session_id}", tags=["inspect"])
LayoutQuery = Annotated[
    Literal["engine", "torch"],
    Query(
        description="engine: dense W (fan_in, units); torch: PyTorch's names and layout, "
        "dense weight (units, fan_in) as torch.nn.Linear.weight"
    ),
]


class AnswerTooLargeError(TooLargeError):
    """The answer would be larger than MAX_ANSWER_VALUES numbers (or its work or working memory
    larger than an evaluation's): refused before it is computed."""


TOO_LARGE = errors(413, descriptions={413: "the answer or its work would pass a limit"})


@router.get(
    "/metrics",
    response_model=MetricsColumns,
    response_class=JSONBytes,
    summary="The metric history as columns",
    responses=errors(404, 422),
)
def get_metrics(
    session: SessionDep,
    since: Annotated[int | None, Query(ge=-1, description="only steps after this one")] = None,
    limit: Annotated[
        int | None, Query(ge=1, le=MAX_METRICS_ROWS, description="at most this many rows")
    ] = None,
    max_points: Annotated[
        int | None, Query(ge=2, le=1_000_000, description="down-sample evenly to this many rows")
    ] = None,
    tail: Annotated[
        bool, Query(description="with limit: the latest `limit` rows, not the first")
    ] = False,
    every: Annotated[
        int | None,
        Query(ge=1, le=1_000_000_000, description="only rows whose step is a multiple of this"),
    ] = None,
) -> JSONBytes:
    """Rows ascending by step. Page forward with `since` = the last step received; `tail=true`
    with `limit=N` gives the latest N. Rows come about 30 a second while training and, in a
    POST .../step call, at every multiple of its interval (10 for 5,000 steps), so `every=K`
    for such a K gives a regular grid. Events come with the steps the rows cover."""
    query = {"since": since, "limit": limit, "max_points": max_points}
    return JSONBytes(session.columns(**query, tail=tail, every=every))


@router.post(
    "/trace",
    response_model=TraceResult,
    response_class=JSONBytes,
    summary="Trace a forward and backward pass of some inputs, without changing anything",
    responses={**errors(404, 409, 422), **TOO_LARGE},
)
def trace(body: TraceRequest, session: SessionDep) -> JSONBytes:
    """Every layer's input, pre-activation, output and gradients for these raw inputs; 413 when
    the answer would carry more than MAX_ANSWER_VALUES numbers."""

    def run(trainer: Trainer) -> dict[str, Any]:
        try:
            count = len(trainer.prepare_inputs(body.inputs))
            _check_trace_size(trainer, count)
            return trainer.trace(body.inputs, body.targets)
        except (ValueError, TypeError, IndexError) as exc:
            raise _invalid("cannot trace these inputs", exc, ("inputs", "targets")) from None

    return JSONBytes(session.call(run))


@router.post(
    "/predict",
    response_model=PredictResult,
    response_class=JSONBytes,
    summary="The network's outputs for some raw inputs",
    responses={**errors(404, 409, 422), **TOO_LARGE},
)
def predict(body: PredictRequest, session: SessionDep) -> JSONBytes:
    """Outputs after the output activation (softmax probabilities for cross-entropy)."""

    def run(trainer: Trainer) -> np.ndarray:
        try:
            _check_work(trainer, len(trainer.prepare_inputs(body.inputs)), "inputs")
            return trainer.predict(body.inputs)
        except (ValueError, TypeError, IndexError) as exc:
            raise _invalid("cannot predict these inputs", exc, ("inputs",)) from None

    return JSONBytes({"outputs": session.call(run)})


@router.get(
    "/boundary",
    response_model=Grid,
    response_class=JSONBytes,
    summary="The decision surface over the plane (2-D data only)",
    responses={**errors(400, 404, 409, 422), **TOO_LARGE},
)
def boundary(
    session: SessionDep,
    resolution: Annotated[
        int, Query(ge=2, le=MAX_BOUNDARY_RESOLUTION, description="grid points per side")
    ] = 100,
) -> JSONBytes:
    """The output and every neuron over a resolution x resolution grid; 400 for other data.
    The neuron maps of wide networks come at a coarser "neuron_resolution", so that together
    they hold at most BOUNDARY_NEURON_VALUES numbers."""

    def run(trainer: Trainer) -> dict[str, Any]:
        _check_work(trainer, resolution * resolution, "grid points")
        try:
            return trainer.grid(resolution, neuron_budget=BOUNDARY_NEURON_VALUES)
        except ValueError as exc:
            raise BadRequestError(str(exc)) from None

    return JSONBytes(session.call(run))


@router.get(
    "/data",
    response_model=DataOut,
    response_class=JSONBytes,
    summary="The session's train and test data (raw inputs)",
    responses=errors(404, 409, 422),
)
def data(
    session: SessionDep,
    limit: Annotated[
        int, Query(ge=1, le=MAX_DATA_POINTS, description="at most this many per split")
    ] = 2000,
) -> JSONBytes:
    """Points, x values or images ([1][16][16]) with their targets, capped at `limit` per split."""

    def run(trainer: Trainer) -> dict[str, Any]:
        ds = trainer.dataset
        if ds.is_image:
            kind = "image"
        elif ds.is_2d:
            kind = "2d"
        elif ds.x_train.ndim == 2 and ds.x_train.shape[1] == 1:
            kind = "1d"
        else:
            kind = "table"

        def split(x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
            y = y[:limit]
            if y.ndim == 2 and y.shape[1] == 1:
                y = y[:, 0]  # (n,) regression targets
            return {"x": np.ascontiguousarray(x[:limit]), "y": np.ascontiguousarray(y)}

        domain = [list(pair) for pair in ds.domain] if ds.domain is not None else None
        return {
            "task": ds.task,
            "input_kind": kind,
            "domain": domain,
            "class_names": list(ds.class_names),
            "input_names": list(ds.input_names),
            "train": split(ds.x_train, ds.y_train),
            "test": split(ds.x_test, ds.y_test),
        }

    return JSONBytes(session.call(run))


@router.get(
    "/weights",
    response_model=dict[str, Any],
    response_class=JSONBytes,
    summary="Every weight and buffer as nested lists",
    responses={**errors(404, 409), **TOO_LARGE},
)
def get_weights(session: SessionDep, layout: LayoutQuery = "engine") -> JSONBytes:
    """The engine's layout: names like "0.W" (fan_in, units; the transpose of
    torch.nn.Linear.weight), "0.b", conv "1.W" (filters, in_channels, kh, kw), "2.gamma",
    "2.running_mean". With ?layout=torch: PyTorch's names and layout ("0.weight" (units,
    fan_in), "0.bias", "2.weight", "2.running_var", ...; engine/torch_layout.py). 413 for a
    network with more than MAX_ANSWER_VALUES of them (GET /weights.npz has them all)."""

    def run(trainer: Trainer) -> dict[str, Any]:
        size = trainer.cost.parameters + trainer.cost.buffers
        if size > MAX_ANSWER_VALUES:
            raise AnswerTooLargeError(
                f"the network has {size:,} weights and buffers, GET /weights answers at most "
                f"{MAX_ANSWER_VALUES:,} numbers as JSON; GET /weights.npz has them all"
            )
        return _in_layout(trainer, layout)

    return JSONBytes(session.call(run))


def _in_layout(trainer: Trainer, layout: str) -> dict[str, np.ndarray]:
    """The trainer's weights and buffers in the engine's layout or PyTorch's."""
    weights = trainer.get_weights()
    return torch_layout.to_torch(weights, trainer.network) if layout == "torch" else weights


@router.put(
    "/weights",
    response_model=WeightsResult,
    summary="Replace weights (same names and shapes as GET)",
    responses=errors(404, 409, 422),
)
def put_weights(
    session: SessionDep,
    weights: Annotated[dict[str, Any], Body(description='{"0.W": [[...]], ...}')],
    layout: LayoutQuery = "engine",
) -> dict[str, Any]:
    """422 naming the array (its name is the field) on a shape mismatch, unknown name or
    non-finite value; 409 while running. With ?layout=torch the body is in PyTorch's names and
    layout (a state_dict as lists; num_batches_tracked is ignored), as GET /weights?layout=torch
    gives it."""
    try:
        if layout == "torch":
            weights = session.call(
                lambda trainer: torch_layout.from_torch(weights, trainer.network)
            )
        names = session.set_weights(weights)
    except WeightsError as exc:  # "0.W: expected shape (2, 8), got (3, 8)"
        raise _invalid("cannot use these weights", exc, (exc.name,)) from None
    except (ValueError, TypeError) as exc:
        raise _invalid("cannot use these weights", exc, ()) from None
    return {"step": session.public()["step"], "names": names}


@router.get(
    "/weights.npz",
    response_class=Response,
    summary="Download the weights as .npz",
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "an .npz archive"},
        **errors(404, 409),
    },
)
def download_weights(session: SessionDep, layout: LayoutQuery = "engine") -> Response:
    """np.load(file) gives the same arrays as GET /weights (with the same ?layout=); with
    ?layout=torch, `model.load_state_dict({k: torch.from_numpy(v) ...}, strict=False)` loads
    it into a model whose submodule i is config layer i (nn.Linear, nn.Conv2d, nn.BatchNorm)."""
    blob = session.call(
        lambda trainer: npz_bytes(lambda file: np.savez(file, **_in_layout(trainer, layout)))
    )
    step = session.public()["step"]
    suffix = "-torch" if layout == "torch" else ""
    filename = f"backprop-lens-{session.id}-step{step}{suffix}.npz"
    return Response(
        blob,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get(
    "/config",
    response_model=RunConfig,
    summary="The run configuration document (with hyperparameter changes)",
    responses=errors(404, 409),
)
def get_config(session: SessionDep) -> dict[str, Any]:
    """Post it back to POST /api/sessions to repeat the run. 409 for an external session: a
    script's run has no run configuration (its topology is the session's "config")."""
    public = session.public()
    if public["kind"] == "external":
        raise ConflictError(
            f"session {session.id} is an external run: it has no run configuration; its "
            "topology is the session document's config"
        )
    return public["config"]


@router.get(
    "/snapshot",
    response_model=Snapshot,
    response_class=JSONBytes,
    summary="The engine snapshot: weights, gradients, node values, grid, histograms",
    responses=errors(404, 409),
)
def snapshot(session: SessionDep) -> JSONBytes:
    """What the WebSocket streams as "snapshot" frames, for a page that is not streaming. For an
    external session: the latest histograms its script sent (409 before any)."""
    if isinstance(session, ExternalSession):
        latest = session.latest_snapshot()
        if latest is None:
            raise ConflictError(f"session {session.id} has no histograms yet")
        return JSONBytes(latest)
    return JSONBytes(session.call(lambda trainer: trainer.snapshot()))


def _check_work(trainer: Trainer, count: int, what: str, passes: int = 1) -> None:
    """Refuse `passes` forward passes (a backward pass is two) over `count` samples that cost
    more multiply-adds than one evaluation may: they run in the training thread, between two
    steps."""
    per_sample = passes * max(trainer.cost.flops_per_sample, 1)
    flops = count * per_sample
    if flops > MAX_FLOPS_PER_EVALUATION:
        raise AnswerTooLargeError(
            f"{count:,} {what} cost about {flops:,} multiply-adds through this network, at most "
            f"{MAX_FLOPS_PER_EVALUATION:,} are allowed (as for one evaluation); use at most "
            f"{MAX_FLOPS_PER_EVALUATION // per_sample:,} {what}"
        )


def _check_trace_size(trainer: Trainer, count: int) -> None:
    """Refuse a trace of `count` inputs whose answer, work or working memory is over its limit."""
    _check_work(trainer, count, "traced inputs", passes=3)
    values = trainer.cost.trace_values(count)
    fixed = trainer.cost.trace_values(0)  # the weights and their gradients
    fits = (MAX_ANSWER_VALUES - fixed) // (trainer.cost.trace_values(1) - fixed)
    if values > MAX_ANSWER_VALUES:
        hint = (
            f"trace at most {fits:,} inputs at once"
            if fits > 0
            else f"its weights and their gradients alone are {fixed:,}"
        )
        raise AnswerTooLargeError(
            f"a trace of {count:,} inputs would answer about {values:,} numbers, at most "
            f"{MAX_ANSWER_VALUES:,} are allowed; {hint}"
        )
    memory = count * trainer.cost.step_bytes_per_sample()
    if memory > EVAL_MEMORY_BYTES:
        fits = EVAL_MEMORY_BYTES // trainer.cost.step_bytes_per_sample()
        raise AnswerTooLargeError(
            f"a trace of {count:,} inputs needs about {format_bytes(memory)} of working memory, "
            f"at most {format_bytes(EVAL_MEMORY_BYTES)} are allowed; trace at most {fits:,} "
            "inputs at once"
        )


def _invalid(what: str, exc: Exception, fields: tuple[str, ...]) -> InvalidFieldsError:
    """A 422 naming the field the engine's message starts with ("inputs: expected ..."), one of
    `fields`, or the whole body when it names none of them."""
    text = str(exc)
    name, sep, message = text.partition(": ")
    field = {"field": name, "message": message} if sep and name in fields else None
    entry = field or {"field": "body", "message": text}
    return InvalidFieldsError(f"{what}: {text}", [{**entry, "code": "value_error"}])


def npz_bytes(save: Callable[[io.BytesIO], None]) -> bytes:
    """The bytes written by `save` into an in-memory file."""
    buffer = io.BytesIO()
    save(buffer)
    return buffer.getvalue()
