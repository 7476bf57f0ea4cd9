"""How a guard answers a request it refuses: a problem body (server/problems.py, RFC 9457) with a
stable code and a detail naming the problem, as an HTTP answer or as the denial of a WebSocket
handshake."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import Receive, Scope, Send

from server.guards.headers import STATIC_SECURITY_HEADERS
from server.problems import MEDIA_TYPE, problem_bytes


async def answer(
    scope: Scope,
    send: Send,
    status: int,
    code: str,
    detail: str,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    """Send the problem `code` with `status` (the layers outside add the security headers)."""
    body, problem_headers = _problem(scope, status, code, detail)
    start = {
        "type": "http.response.start",
        "status": status,
        "headers": [*problem_headers, *headers],
    }
    await send(start)
    await send({"type": "http.response.body", "body": body})


async def deny_websocket(
    scope: Scope, receive: Receive, send: Send, status: int, code: str, detail: str
) -> None:
    """Refuse a WebSocket handshake with an HTTP answer when the server can send one."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    if "websocket.http.response" in scope.get("extensions", {}):
        body, problem_headers = _problem(scope, status, code, detail)
        headers = [*problem_headers, *STATIC_SECURITY_HEADERS]
        await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
    else:  # closing before accept makes the server answer 403
        await send({"type": "websocket.close", "code": 1008, "reason": detail[:120]})


def _problem(
    scope: Scope, status: int, code: str, detail: str
) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """The problem body and its content-type and content-length headers."""
    body = problem_bytes(status, code, detail, scope.get("path", ""))
    return body, [
        (b"content-type", MEDIA_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
