"""The client's exceptions, one per kind of problem the server reports.

Every error answer of the server is an RFC 9457 problem document (docs/errors.md): a stable
`code`, the `status`, one `detail` sentence and, for a 422, `errors` naming each field. `raise_for`
turns such an answer into the matching exception, so a script branches on the class (or on
`code`) instead of parsing text.
"""

from __future__ import annotations

from typing import Any

import httpx

# Statuses and codes that mean "the server has no room for this now": a caller may retry later,
# smaller, or after freeing something (another training run, old uploads, disk space).
CAPACITY_STATUSES = frozenset({413, 429, 507})
CAPACITY_CODES = frozenset(
    {"memory_budget", "upload_quota", "insufficient_storage", "too_large", "too_many_training"}
)


class ApiError(Exception):
    """An error answer of the server: the base of every exception the client raises for one.

    `status` is the HTTP status, `code` the problem's stable code (e.g. "session_running"),
    `detail` its sentence, `errors` its field entries ({"field", "message", "code"}; empty but
    for 422s) and `body` the whole problem document (extensions such as "estimate" included).
    """

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        errors: list[dict[str, Any]] | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.detail = detail
        self.errors = list(errors or [])
        self.body = dict(body or {})
        super().__init__(f"{status} {code}: {detail}")


class ConfigError(ApiError):
    """422: the request (a run configuration, hyperparameters, weights, an upload's form) has a
    field the server refuses. `field` and `message` are those of the first entry of `errors`,
    e.g. "layers[0].units" and "must be an integer >= 1, got 0"."""

    @property
    def field(self) -> str | None:
        """The first problem's field name as the server names it, or None without entries."""
        return self.errors[0].get("field") if self.errors else None

    @property
    def message(self) -> str:
        """The first problem's message, or the detail sentence without entries."""
        return str(self.errors[0].get("message", self.detail)) if self.errors else self.detail


class NotFound(ApiError):
    """404: no such session or upload (deleted, or never there)."""


class Conflict(ApiError):
    """409: the session (or upload) cannot do it now, e.g. code "session_running" while it
    trains, "upload_in_use" while a session uses the upload."""


class CapacityExceeded(ApiError):
    """The server has no room for it: 429 (too many sessions training), 413 (a body or answer
    over its limit), 507 (memory budget, upload quota or a full disk; `code` says which)."""


def error_class(status: int, code: str) -> type[ApiError]:
    """The exception class for an error answer's status and problem code."""
    if status == 422:
        return ConfigError
    if status == 404:
        return NotFound
    if status in CAPACITY_STATUSES or code in CAPACITY_CODES:
        return CapacityExceeded
    if status == 409:
        return Conflict
    return ApiError


def from_response(response: httpx.Response) -> ApiError:
    """The exception an error answer stands for, read from its problem body (an answer that is
    not a problem document, e.g. from a proxy, keeps its text as the detail)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        text = response.text.strip()[:500] or response.reason_phrase
        body = {"status": response.status_code, "code": "http_error", "detail": text}
    status = int(body.get("status") or response.status_code)
    code = str(body.get("code") or "http_error")
    detail = body.get("detail")
    if not isinstance(detail, str):
        detail = str(detail) if detail is not None else response.reason_phrase
    entries = body.get("errors")
    errors = (
        [entry for entry in entries if isinstance(entry, dict)] if isinstance(entries, list) else []
    )
    return error_class(status, code)(status, code, detail, errors, body)


def raise_for(response: httpx.Response) -> httpx.Response:
    """The response itself when it succeeded; else the matching ApiError subclass is raised."""
    if response.is_success:
        return response
    raise from_response(response)
