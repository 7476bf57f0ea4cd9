"""One body for every error answer: RFC 9457 problem details, media type application/problem+json.

    {"type": "urn:backprop-lens:problem:session_running", "title": "Session is running",
     "status": 409, "code": "session_running", "detail": "session ab12 is already running",
     "instance": "/api/sessions/ab12/start",
     "errors": [{"field": "steps", "message": "must be an integer, got '5'", "code": "int_type"}]}

`code` is stable and `type` is derived from it; `detail` is always one string; `errors` names
the fields when fields are involved (always present on a 422, maybe empty). docs/errors.md lists
every code. This module builds the body (`problem`, `problem_bytes` for the security guards,
which answer before the app runs), answers every exception with it (`install_problem_handlers`)
and declares it in the OpenAPI document (`errors`, `document_problems`).

Field names: a field of the run configuration is named as in the configuration document
("layers[2].units", also inside POST /api/sessions' "config"), as the engine's own errors name it;
every other field as it is named in the request: a body key ("steps", "learning_rate", "inputs",
"0.W"), a form field ("file", "target"), a query or path parameter ("resolution"), or "body" for
the body as a whole (e.g. invalid JSON).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException

from engine.config import (
    ConfigError,
    FieldError,
    error_code,
    errors_from_validation,
    field_path,
    parse_config,
)
from server.data_dir import StoreError
from server.errors import SessionError

log = logging.getLogger("backprop_lens.api")

MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:backprop-lens:problem:"
_SOURCES = ("body", "query", "path", "header", "cookie")
_MAX_DETAIL = 1000  # characters of a 422's detail, which repeats its field errors

# code -> title (the same for every answer with that code, as RFC 9457 asks of `type`)
TITLES: dict[str, str] = {
    "validation_error": "Invalid request",
    "invalid_json": "Invalid JSON",
    "bad_request": "Bad request",
    "not_found": "Not found",
    "method_not_allowed": "Method not allowed",
    "conflict": "Conflict",
    "session_running": "Session is running",
    "session_not_running": "Session is not running",
    "too_many_sessions": "Too many sessions",
    "shutting_down": "Server is shutting down",
    "too_many_training": "Too many sessions training",
    "too_large": "Too large",
    "insufficient_storage": "Insufficient storage",
    "step_failed": "Training failed",
    "internal_error": "Internal server error",
    "unavailable": "Storage unavailable",
    "host_not_allowed": "Host not allowed",
    "cross_site": "Cross-site request refused",
    "unauthorized": "Access token required",
}


class ProblemField(BaseModel):
    """One field of the request and what is wrong with it."""

    field: str = Field(description="e.g. 'layers[2].units', 'steps', 'file', 'body'")
    message: str = Field(description="what is wrong, e.g. 'must be an integer >= 1, got 0'")
    code: str = Field(description="the kind of mistake, e.g. 'int_type' (docs/errors.md)")


class Problem(BaseModel):
    """The body of every error answer (RFC 9457 problem details, application/problem+json)."""

    model_config = ConfigDict(extra="allow")  # extensions, e.g. a cost 422's "estimate"

    type: str = Field(description="'urn:backprop-lens:problem:' + code")
    title: str = Field(description="a short title of the code")
    status: int = Field(description="the HTTP status, repeated")
    code: str = Field(description="stable snake_case code (docs/errors.md)")
    detail: str = Field(description="one human sentence about this occurrence")
    instance: str = Field(description="the request path")
    errors: list[ProblemField] = Field(
        default_factory=list,
        description="the fields involved; always present on a 422",
    )


def problem(
    status: int,
    code: str,
    detail: str,
    instance: str,
    errors: Sequence[dict[str, Any]] | None = None,
    extensions: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The problem body; `errors` is left out when None, `extensions` are added members."""
    try:
        fallback = HTTPStatus(status).phrase
    except ValueError:
        fallback = "Error"
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + code,
        "title": TITLES.get(code, fallback),
        "status": status,
        "code": code,
        "detail": detail,
        "instance": instance,
    }
    if errors is not None:
        body["errors"] = list(errors)
    # extensions add members, never replace the standard ones
    body.update({key: value for key, value in (extensions or {}).items() if key not in body})
    return body


def problem_bytes(status: int, code: str, detail: str, instance: str) -> bytes:
    """The encoded problem body, for answers sent below FastAPI (the security guards)."""
    return orjson.dumps(problem(status, code, detail, instance))


class ProblemResponse(JSONResponse):
    """A problem body with its media type."""

    media_type = MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


def problem_response(
    request: Request,
    status: int,
    code: str,
    detail: str,
    errors: Sequence[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    extensions: dict[str, Any] | None = None,
) -> ProblemResponse:
    """The answer to `request`: a problem with `status`."""
    body = problem(status, code, detail, request.url.path, errors, extensions)
    return ProblemResponse(body, status_code=status, headers=headers)


# ----------------------------------------------------------------------------- field errors


class FieldErrors(Exception):
    """Field-named problems to answer with 422 (code validation_error); `extensions` are added
    to the body (e.g. the cost estimate of a refused config). `prefix` was where the fields
    live in the request; it is accepted for existing callers, the fields are named as the
    module doc says."""

    def __init__(
        self,
        errors: Sequence[FieldError],
        prefix: tuple[str, ...] = ("body",),
        extensions: dict[str, Any] | None = None,
    ) -> None:
        self.errors = list(errors)
        self.prefix = prefix
        self.extensions = extensions or {}
        super().__init__("; ".join(str(e) for e in self.errors))


def error_item(
    error: FieldError, prefix: Sequence[str | int] = ("body",), code: str | None = None
) -> dict[str, str]:
    """One ProblemField: the engine's field and message, and its code (the error's own unless
    `code` is given). `prefix` is accepted for existing callers and not used."""
    return {
        "field": error["field"],
        "message": error["message"],
        "code": code or getattr(error, "code", "value_error"),
    }


def request_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    """FastAPI's validation errors as ProblemFields worded by the engine (a bad config is
    re-validated whole, so its fields read as the engine names them)."""
    body = exc.body
    out: list[dict[str, str]] = []
    config_done = False
    for err in exc.errors():
        loc = tuple(err.get("loc") or ())
        if err.get("type") == "json_invalid":
            out.append(_invalid_json(err))
            continue
        if loc[:2] == ("body", "config") and isinstance(body, dict) and "config" in body:
            if config_done:
                continue
            config_done = True
            try:
                parse_config(body.get("config"))
            except ConfigError as config_exc:
                out.extend(error_item(e) for e in config_exc.errors)
                continue
        source = loc[:1] if loc and loc[0] in _SOURCES else ()
        item = error_item(_field_error(err, loc[len(source) :]))
        out.append({**item, "field": item["field"] or (source[0] if source else "body")})
    return out


def _invalid_json(err: dict[str, Any]) -> dict[str, str]:
    """FastAPI reports invalid JSON at ("body", <character offset>): name the body instead."""
    loc = tuple(err.get("loc") or ())
    reason = (err.get("ctx") or {}).get("error") or "cannot be decoded"
    where = f" (at character {loc[1]})" if len(loc) > 1 and isinstance(loc[1], int) else ""
    return {
        "field": "body",
        "message": f"is not valid JSON: {reason}{where}",
        "code": "invalid_json",
    }


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
        return FieldError(field_path(where), message, error_code(str(err.get("type"))))


def _summary(errors: Sequence[dict[str, str]]) -> str:
    """A 422's detail: its field errors in one sentence."""
    parts = [f"{e['field']}: {e['message']}" if e["field"] else e["message"] for e in errors]
    text = "; ".join(parts) or "the request is invalid"
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 3] + "..."


def unprocessable(
    request: Request, errors: Sequence[dict[str, str]], extensions: dict[str, Any] | None = None
) -> ProblemResponse:
    """A 422: invalid_json when the body was not JSON, else validation_error."""
    code = (
        "invalid_json" if any(e["code"] == "invalid_json" for e in errors) else "validation_error"
    )
    return problem_response(request, 422, code, _summary(errors), errors, extensions=extensions)


# ----------------------------------------------------------------------------- handlers


# Starlette's own refusals (unknown route, wrong method, a body it cannot parse) by status.
_HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}


def _http_problem(request: Request, exc: HTTPException) -> ProblemResponse:
    """404 for an unknown route, 405, and FastAPI's 400 for a body it cannot read."""
    if isinstance(exc.__cause__, UnicodeDecodeError):  # a JSON body that is not UTF-8
        item = {
            "field": "body",
            "message": f"is not valid JSON: not UTF-8 text ({exc.__cause__.reason})",
            "code": "invalid_json",
        }
        return unprocessable(request, [item])
    status = exc.status_code
    detail = str(exc.detail)
    method, path = request.method, request.url.path
    if status == 404 and detail == HTTPStatus.NOT_FOUND.phrase:
        detail = f"nothing at {path}: see /docs for the routes"
    elif status == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        detail = f"{method} is not allowed on {path}; allowed: {allowed or 'none'}"
    code = _HTTP_CODES.get(status) or HTTPStatus(status).phrase.lower().replace(" ", "_")
    return problem_response(request, status, code, detail, headers=exc.headers)


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error of `app` with a problem body, and declare it in its OpenAPI."""

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> ProblemResponse:
        return unprocessable(request, request_errors(exc))

    @app.exception_handler(FieldErrors)
    async def _fields(request: Request, exc: FieldErrors) -> ProblemResponse:
        return unprocessable(request, [error_item(e) for e in exc.errors], exc.extensions)

    @app.exception_handler(SessionError)
    async def _session(request: Request, exc: SessionError) -> ProblemResponse:
        errors = [dict(e) for e in exc.errors] if exc.errors else None
        return problem_response(
            request, exc.status_code, exc.code, str(exc), errors, extensions=exc.extensions
        )

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> ProblemResponse:
        return _http_problem(request, exc)

    @app.exception_handler(StoreError)
    async def _store(request: Request, exc: StoreError) -> ProblemResponse:
        log.error("store error: %s", exc)
        return problem_response(request, 503, "unavailable", str(exc))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> ProblemResponse:
        # Starlette still logs the traceback; the client gets a problem like every other error.
        detail = f"internal server error: {type(exc).__name__}: {exc}"
        return problem_response(request, 500, "internal_error", detail)

    document_problems(app)


# ----------------------------------------------------------------------------- OpenAPI

_REF = "#/components/schemas/{model}"
PROBLEM_CONTENT = {MEDIA_TYPE: {"schema": {"$ref": _REF.format(model="Problem")}}}
_DESCRIPTIONS = {
    400: "the request does not fit this session (a boundary of data that is not 2-D) or its "
    "multipart body cannot be parsed",
    404: "no session with that id",
    409: "the session's state does not allow this now",
    413: "the upload is too large",
    422: "field-named validation errors (invalid_json when the body is not JSON)",
    429: "too many sessions are training at once",
    500: "an unexpected error, or training stopped by one",
    503: "the data directory cannot be used",
    507: "the session's checkpoint or history cannot be saved (e.g. the disk is full), the "
    "memory budget has no room for it (memory_budget), or the upload quota is full (upload_quota)",
}


def problem_doc(description: str) -> dict[str, Any]:
    """One OpenAPI response: a Problem with this description."""
    return {"description": description, "content": PROBLEM_CONTENT}


def errors(
    *statuses: int, descriptions: dict[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for the error answers a route can give, each a Problem;
    `descriptions` replaces the usual description of a status."""
    own = descriptions or {}
    return {s: problem_doc(own.get(s) or _DESCRIPTIONS.get(s, "error")) for s in statuses}


def document_problems(app: FastAPI) -> None:
    """Make `app.openapi()` declare Problem and ProblemField, every route's 500 as a Problem,
    and FastAPI's automatic 422 (HTTPValidationError, a shape never sent) as a Problem too."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec = generate()
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        problem_schema = Problem.model_json_schema(ref_template=_REF)
        schemas.update(problem_schema.pop("$defs", {}))
        schemas["Problem"] = problem_schema
        for operations in spec.get("paths", {}).values():
            for operation in operations.values():
                _document_operation(operation.setdefault("responses", {}))
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)  # referenced by nothing now
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]


def _document_operation(responses: dict[str, Any]) -> None:
    for status, response in list(responses.items()):
        content = response.get("content", {})
        refs = [m.get("schema", {}).get("$ref", "") for m in content.values()]
        if any(ref.endswith("/HTTPValidationError") for ref in refs):
            responses[status] = problem_doc(_DESCRIPTIONS[422])
    responses.setdefault("500", problem_doc(_DESCRIPTIONS[500]))
