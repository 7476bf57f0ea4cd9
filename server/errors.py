"""The errors a request on a session can meet, each carrying its HTTP answer: `status_code` and a
stable `code` (docs/errors.md lists them).

server/problems.py turns any `SessionError` into a problem body with that status and code, so a
module that refuses a request raises one of these and never builds a response itself. A subclass
for a new kind of refusal sets its own `code`; `errors` names the request's fields when the
refusal is about some of them, `extensions` adds members to the body (e.g. the ids of the
sessions that hold a resource).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class SessionError(Exception):
    """A request the sessions cannot serve; `status_code` is the HTTP answer, `code` its kind."""

    status_code = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        errors: Sequence[Mapping[str, str]] = (),
        extensions: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.errors = [dict(e) for e in errors]  # ProblemField entries: field, message, code
        self.extensions = dict(extensions or {})  # extra members of the problem body


class NotFoundError(SessionError):
    """No session (or upload) with that id."""

    status_code = 404
    code = "not_found"


class ConflictError(SessionError):
    """The session's or the server's state does not allow the request now."""

    status_code = 409
    code = "conflict"


class SessionRunningError(ConflictError):
    """The session is running (training or stepping) or busy with another exclusive request
    (a reset, loading weights), e.g. start while running."""

    code = "session_running"


class SessionNotRunningError(ConflictError):
    """The request needs a running session and this one is not running."""

    code = "session_not_running"


class TooManySessionsError(ConflictError):
    """As many sessions are stored as the server keeps (MAX_SESSIONS)."""

    code = "too_many_sessions"


class ShuttingDownError(ConflictError):
    """The server is shutting down and starts no new run."""

    code = "shutting_down"


class TooManyTrainingError(SessionError):
    """Starting would make more sessions train at once than --max-training allows."""

    status_code = 429
    code = "too_many_training"


class InsufficientStorageError(SessionError):
    """The session's checkpoint or history cannot be written to the data directory (e.g. the
    disk is full): the request did not make its work durable."""

    status_code = 507
    code = "insufficient_storage"


class BadRequestError(SessionError):
    """The request does not fit this session (e.g. a decision boundary of 1-D data)."""

    status_code = 400
    code = "bad_request"


class InvalidFieldsError(SessionError):
    """Fields of the request whose values do not fit this session (e.g. inputs of the wrong
    shape, weights of the wrong shape): a 422 like the schema's own, naming them."""

    status_code = 422
    code = "validation_error"


class TooLargeError(SessionError):
    """A request, its answer or its work would pass a size limit."""

    status_code = 413
    code = "too_large"
