"""Size limits on what comes in (the numbers live in server/limits.py).

A request body is counted while it streams in: a Content-Length above the limit is refused with
413 before a byte is read, and a chunked body is answered 413 the moment it passes the limit, so
the app never holds more than the limit. Upload paths take MAX_UPLOAD_BYTES plus the multipart
framing, every other path MAX_JSON_BYTES. An incoming WebSocket message above
`max_ws_frame_bytes` closes the socket with 1009.

Starlette's RequestBodyLimitMiddleware does not fit: it refuses by raising inside the app's
receive, so the app (routing, dependencies) has already run and FastAPI's exception handler
answers its own body, where this server answers before the app runs and names
the limit it hit; and it knows one limit, not one per path.
"""

from __future__ import annotations

import logging

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.guards.answers import answer
from server.guards.settings import SecuritySettings, printable
from server.limits import format_bytes, too_large_message

log = logging.getLogger("backprop_lens.security")

WS_CLOSE_TOO_BIG = 1009  # RFC 6455 "message too big"


class BodyTooLargeError(Exception):
    """A request body passed its limit after the app had already started its response."""


class SizeLimits:
    """413 for request bodies above their limit, close 1009 for WebSocket messages above theirs."""

    def __init__(self, app: ASGIApp, settings: SecuritySettings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            guard = _WebSocketGuard(receive, send, self.settings.max_ws_frame_bytes)
            await self.app(scope, guard.receive, guard.send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        settings = self.settings
        path = scope.get("path", "")
        if path in settings.upload_paths:
            limit, what, shown = (
                settings.max_upload_request_bytes,
                "uploads",
                settings.max_upload_bytes,
            )
        else:
            limit, what, shown = settings.max_json_bytes, "JSON", settings.max_json_bytes
        responder = _Responder(scope, send)
        limited = _LimitedReceive(receive, responder, limit, what, shown)
        length_text = Headers(scope=scope).get("content-length")
        if length_text is not None:
            try:
                length = int(length_text)
            except ValueError:
                await responder.answer(
                    400,
                    "bad_request",
                    f"Content-Length: expected a byte count, got {printable(length_text)!r}",
                )
                return
            if length > limit:
                await responder.answer(413, "too_large", too_large_message(shown, what))
                return
        try:
            await self.app(scope, limited, responder)
        except Exception as exc:
            if responder.answered:  # the app tripped over the body we cut off; already answered
                method = scope.get("method", "GET").upper()
                log.debug("after the guard answered %s %s: %r", method, path, exc)
                return
            raise


class _Responder:
    """Wraps `send`: notes when the response started, and lets the guard answer itself (after
    which the app's own messages are dropped)."""

    def __init__(self, scope: Scope, send: Send) -> None:
        self._scope = scope
        self._send = send
        self.started = False  # a response start went out
        self.answered = False  # the guard sent the whole response itself

    async def __call__(self, message: Message) -> None:
        if self.answered:
            return
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)

    async def answer(self, status: int, code: str, detail: str) -> None:
        """Send the problem `code` with `status` and stop forwarding the app's messages."""
        await answer(self._scope, self, status, code, detail)
        self.answered = True


class _LimitedReceive:
    """Wraps `receive`: counts body bytes and answers 413 the moment they pass the limit."""

    def __init__(
        self, receive: Receive, responder: _Responder, limit: int, what: str, shown: int
    ) -> None:
        self._receive = receive
        self._responder = responder
        self.limit = limit  # bytes allowed in the body
        self.what = what  # "JSON" or "uploads", for the message
        self.shown = shown  # the limit as the message states it (uploads: without the framing)
        self.received = 0
        self.exceeded = False

    async def __call__(self) -> Message:
        if self.exceeded:
            return {"type": "http.disconnect"}
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                self.exceeded = True
                detail = too_large_message(self.shown, self.what)
                if self._responder.started:
                    raise BodyTooLargeError(detail)
                await self._responder.answer(413, "too_large", detail)
                # The app sees the client go away; uvicorn discards the rest of the body.
                return {"type": "http.disconnect"}
        return message


class _WebSocketGuard:
    """Wraps a WebSocket's receive/send: messages above the limit close the socket with 1009."""

    def __init__(self, receive: Receive, send: Send, limit: int) -> None:
        self._receive = receive
        self._send = send
        self.limit = limit
        self.closed = False

    async def receive(self) -> Message:
        if self.closed:
            return {"type": "websocket.disconnect", "code": WS_CLOSE_TOO_BIG}
        message = await self._receive()
        if message["type"] == "websocket.receive":
            text = message.get("text")
            data = message.get("bytes")
            size = 0
            if text is not None:
                size = len(text) if len(text) * 4 <= self.limit else len(text.encode("utf-8"))
            elif data is not None:
                size = len(data)
            if size > self.limit:
                self.closed = True
                await self._send(
                    {
                        "type": "websocket.close",
                        "code": WS_CLOSE_TOO_BIG,
                        "reason": f"message larger than the {format_bytes(self.limit)} limit",
                    }
                )
                return {"type": "websocket.disconnect", "code": WS_CLOSE_TOO_BIG}
        return message

    async def send(self, message: Message) -> None:
        if self.closed:
            return  # the guard closed the socket; the app's late frames go nowhere
        await self._send(message)
