"""FastAPI dependencies (Annotated aliases), the orjson response class and the error handlers.

Error bodies follow API.md: 422 -> {"detail": [{"field", "message", "loc", "msg", "type"}]} with
the engine's wording ("layers[2].units: must be an integer >= 1, got 0"); 400/404/409/413/429 ->
{"detail": "message"}.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from engine.config import ConfigError, FieldError, errors_from_validation, field_path, parse_config
from server.errors import SessionError
from server.hub import Hub
from server.schemas import ErrorOut, ValidationErrorOut
from server.sessions import AnySession, SessionManager
from server.store import Store, StoreError

log = logging.getLogger("backprop_lens.api")

_ORJSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
_SOURCES = ("body", "query", "path", "header", "cookie")


class JSONBytes(JSONResponse):
    """A JSON response encoded once by orjson (NumPy arrays allowed, NaN -> null). A subclass of
    JSONResponse, so the OpenAPI document keeps the route's response model."""

    def render(self, content: Any) -> bytes:
        if isinstance(content, bytes):
            return content
        return orjson.dumps(content, option=_ORJSON_OPTIONS)


# ----------------------------------------------------------------------------- dependencies


def get_sessions(request: Request) -> SessionManager:
    """The app's SessionManager."""
    return request.app.state.sessions


def get_store(request: Request) -> Store:
    """The app's Store."""
    return request.app.state.store


def get_hub(request: Request) -> Hub:
    """The app's WebSocket Hub."""
    return request.app.state.hub


SessionsDep = Annotated[SessionManager, Depends(get_sessions)]
StoreDep = Annotated[Store, Depends(get_store)]
HubDep = Annotated[Hub, Depends(get_hub)]
SessionId = Annotated[str, Path(min_length=1, max_length=64, description="the session id")]


def get_session(session_id: SessionId, sessions: SessionsDep) -> AnySession:
    """The session named in the path (404 if unknown); loads it from the store on first use."""
    return sessions.get(session_id)


SessionDep = Annotated[AnySession, Depends(get_session)]


# ----------------------------------------------------------------------------- errors


class FieldErrors(Exception):
    """Field-named problems to answer with 422; `prefix` is where the fields live in the request."""

    def __init__(self, errors: Sequence[FieldError], prefix: tuple[str, ...] = ("body",)) -> None:
        self.errors = list(errors)
        self.prefix = prefix
        super().__init__("; ".join(str(e) for e in self.errors))


def _loc(field: str) -> list[str | int]:
    """'layers[2].units' -> ['layers', 2, 'units']."""
    out: list[str | int] = []
    for part in field.split("."):
        if not part:
            continue
        name, *indices = re.split(r"\[(\d+)\]", part)
        if name:
            out.append(name)
        out.extend(int(i) for i in indices if i != "")
    return out


def error_item(
    error: FieldError, prefix: Sequence[str | int] = ("body",), kind: str = "value_error"
) -> dict[str, Any]:
    """One 422 entry: the engine's field and message plus FastAPI's loc/msg/type."""
    return {
        "field": error["field"],
        "message": error["message"],
        "loc": [*prefix, *_loc(error["field"])],
        "msg": str(error),
        "type": kind,
    }


def unprocessable(items: list[dict[str, Any]]) -> JSONResponse:
    """A 422 answer."""
    return JSONResponse(status_code=422, content={"detail": items})


def request_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """FastAPI's validation errors re-worded by the engine (a bad config is re-validated whole)."""
    body = exc.body
    out: list[dict[str, Any]] = []
    config_done = False
    for err in exc.errors():
        loc = tuple(err.get("loc") or ())
        if loc[:2] == ("body", "config") and isinstance(body, dict) and "config" in body:
            if not config_done:
                config_done = True
                try:
                    parse_config(body.get("config"))
                except ConfigError as config_exc:
                    out.extend(error_item(e, ("body", "config")) for e in config_exc.errors)
                    continue
            else:
                continue
        source = loc[:1] if loc and loc[0] in _SOURCES else ()
        where = loc[len(source) :]
        out.append(
            error_item(_field_error(err, where), source, str(err.get("type", "value_error")))
        )
    return out


def _field_error(err: dict[str, Any], where: tuple[Any, ...]) -> FieldError:
    """The engine's wording of one pydantic error at `where`."""
    try:
        rebuilt = ValidationError.from_exception_data(
            "request",
            [
                {
                    "type": err["type"],
                    "loc": where,
                    "input": err.get("input"),
                    "ctx": err.get("ctx") or {},
                }
            ],
        )
        return errors_from_validation(rebuilt)[0]
    except (TypeError, ValueError, KeyError, IndexError):
        message = str(err.get("msg", "is invalid")).removeprefix("Value error, ")
        return FieldError(field_path(where), message)


def install_error_handlers(app: FastAPI) -> None:
    """Map request, engine and session errors onto API.md's answers."""

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return unprocessable(request_errors(exc))

    @app.exception_handler(FieldErrors)
    async def _fields(request: Request, exc: FieldErrors) -> JSONResponse:
        return unprocessable([error_item(e, exc.prefix) for e in exc.errors])

    @app.exception_handler(SessionError)
    async def _session(request: Request, exc: SessionError) -> JSONResponse:
        return JSONResponse(status_code=exc.status_code, content={"detail": str(exc)})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Starlette still logs the traceback; the client gets JSON like every other error.
        return JSONResponse(
            status_code=500,
            content={"detail": f"internal server error: {type(exc).__name__}: {exc}"},
        )

    @app.exception_handler(StoreError)
    async def _store(request: Request, exc: StoreError) -> JSONResponse:
        log.error("store error: %s", exc)
        return JSONResponse(status_code=503, content={"detail": str(exc)})


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for the error answers a route can give."""
    text = {
        400: "the request does not fit this session, or its body cannot be read",
        404: "no session with that id",
        409: "the session's state does not allow this now",
        413: "the upload is too large",
        429: "too many sessions are training at once",
        507: "the session's checkpoint or history cannot be saved (e.g. the disk is full)",
    }
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        if code == 422:
            out[422] = {"model": ValidationErrorOut, "description": "field-named validation errors"}
        else:
            out[code] = {"model": ErrorOut, "description": text.get(code, "error")}
    return out
