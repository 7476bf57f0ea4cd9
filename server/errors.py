"""The errors a request on a session can meet, each carrying its HTTP answer (`status_code`).

server/deps.py turns any `SessionError` into {"detail": message} with that status, so a module
that refuses a request raises one of these and never builds a response itself.
"""

from __future__ import annotations


class SessionError(Exception):
    """A request the sessions cannot serve; `status_code` is the HTTP answer."""

    status_code = 400


class NotFoundError(SessionError):
    """No session (or upload) with that id."""

    status_code = 404


class ConflictError(SessionError):
    """The session is not in a state that allows the request (e.g. start while running)."""

    status_code = 409


class TooManyTrainingError(SessionError):
    """Starting would make more sessions train at once than --max-training allows."""

    status_code = 429


class InsufficientStorageError(SessionError):
    """The session's checkpoint or history cannot be written to the data directory (e.g. the
    disk is full): the request did not make its work durable."""

    status_code = 507


class BadRequestError(SessionError):
    """The request does not fit this session (e.g. weights of the wrong shape)."""

    status_code = 400
