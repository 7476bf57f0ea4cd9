"""How a guard answers a request it refuses: {"detail": "..."} naming the problem, as an HTTP
answer or as the denial of a WebSocket handshake."""

from __future__ import annotations

import json
from collections.abc import Iterable

from starlette.types import Receive, Scope, Send

from server.guards.headers import STATIC_SECURITY_HEADERS


async def answer(
    send: Send, status: int, detail: str, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    """Send {"detail": detail} with `status` (the layers outside add the security headers)."""
    body, json_headers = _json(detail)
    start = {"type": "http.response.start", "status": status, "headers": [*json_headers, *headers]}
    await send(start)
    await send({"type": "http.response.body", "body": body})


async def deny_websocket(
    scope: Scope, receive: Receive, send: Send, status: int, detail: str
) -> None:
    """Refuse a WebSocket handshake with an HTTP answer when the server can send one."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    if "websocket.http.response" in scope.get("extensions", {}):
        body, json_headers = _json(detail)
        headers = [*json_headers, *STATIC_SECURITY_HEADERS]
        await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
    else:  # closing before accept makes the server answer 403
        await send({"type": "websocket.close", "code": 1008, "reason": detail[:120]})


def _json(detail: str) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """The body {"detail": detail} and its content-type and content-length headers."""
    body = json.dumps({"detail": detail}).encode("utf-8")
    return body, [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
