"""FastAPI dependencies (Annotated aliases) and the orjson response class.

Error answers are server/problems.py's (RFC 9457 problem details, docs/errors.md); the names the
routes use for them (`FieldErrors`, `error_item`, `errors`, `install_error_handlers`) are
re-exported here.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import Depends, Path, Request
from fastapi.responses import JSONResponse

from server.hub import Hub
from server.problems import FieldErrors, error_item, errors
from server.problems import install_problem_handlers as install_error_handlers
from server.sessions import AnySession, SessionManager
from server.store import Store

__all__ = [
    "FieldErrors",
    "HubDep",
    "JSONBytes",
    "SessionDep",
    "SessionId",
    "SessionsDep",
    "StoreDep",
    "error_item",
    "errors",
    "install_error_handlers",
]

_ORJSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


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
