"""The access token never reaches a log line.

uvicorn's access log writes every request line with its query string, and its WebSocket lines
name the path with the query too, so a client that passes `?token=...` (the printed URL, a
script) would leave the token in the terminal and in any file the log is kept in. `RedactToken`
is a logging filter on uvicorn's handlers: it replaces the value of every `token` query parameter
(however its name is percent-encoded) and the server's token itself, wherever it appears.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any
from urllib.parse import unquote_plus

from uvicorn.config import LOGGING_CONFIG

from server.guards.settings import TOKEN_QUERY

REDACTED = "[redacted]"
# One query parameter: its separator, its name and its value (up to &, a space, a quote or #).
_PARAMETER = re.compile(r"([?&;])([^=&;\s\"#]*)=([^&;\s\"#]*)")


def redact(text: str, token: str | None = None) -> str:
    """`text` with the value of every `token` query parameter, and `token` itself, replaced."""

    def value(match: re.Match[str]) -> str:
        if unquote_plus(match.group(2)).lower() != TOKEN_QUERY:
            return match.group(0)
        return f"{match.group(1)}{match.group(2)}={REDACTED}"

    if "=" in text:
        text = _PARAMETER.sub(value, text)
    if token and token in text:
        text = text.replace(token, REDACTED)
    return text


class RedactToken(logging.Filter):
    """Redacts the message and its string arguments of every record (keeps their number and
    order: uvicorn's access formatter unpacks them)."""

    def __init__(self, token: str | None = None) -> None:
        super().__init__()
        self.token = token  # the server's token, redacted wherever it appears

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg, self.token)
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact(arg, self.token) if isinstance(arg, str) else arg for arg in record.args
            )
        elif isinstance(record.args, dict):
            record.args = {
                key: redact(arg, self.token) if isinstance(arg, str) else arg
                for key, arg in record.args.items()
            }
        return True


def log_config(token: str | None) -> dict[str, Any]:
    """uvicorn's logging configuration with `RedactToken` on each of its handlers."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_token"] = {"()": RedactToken, "token": token}
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).append("redact_token")
    return config
