"""Limits on the TCP connections themselves, below the app: a request head must arrive within
`header_timeout` seconds, and at most `max_connections` connections are open at once.

uvicorn closes an idle keep-alive connection (timeout_keep_alive) but never one that sends its
request head slowly, a byte at a time (slowloris), so such connections used to pile up until the
process ran out of file descriptors. `ConnectionGuard.protocol()` wraps uvicorn's own HTTP
protocol (it parses and answers as before): a connection gets a deadline when it opens, and a
keep-alive connection when the first byte of its next request arrives (until then uvicorn's
keep-alive timeout closes it when idle); `ConnectionGuard.wrap(app)`, the outermost ASGI layer,
clears it when a request reaches the app (matched by the client's address and port,
`scope["client"]`). A deadline that passes answers 408 and closes. At `max_connections`, a new
connection closes the oldest one waiting for a request (idle, or still sending its head), or is
answered 503 when every connection is busy with a request or a WebSocket.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any, cast

from uvicorn.protocols.http.auto import AutoHTTPProtocol

HEADER_TIMEOUT = 10.0  # seconds to send a request head (longer than uvicorn's 5 s keep-alive)
MAX_CONNECTIONS = 200  # open HTTP and WebSocket connections, well under the usual 1,024 files
REFUSED_LINGER = 1.0  # seconds a refused connection may take to read its 503 before it closes

Peer = tuple[str, int]  # (client address, client port): one TCP connection

_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"
_FULL = (
    b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-type: text/plain\r\n"
    b"content-length: 29\r\n\r\ntoo many connections are open"
)


def _peer(address: Any) -> Peer | None:
    """(host, port) of a peername or an ASGI scope's "client", if it has one."""
    if isinstance(address, list | tuple) and len(address) >= 2:
        return str(address[0]), int(address[1])
    return None


class ConnectionGuard:
    """The deadlines and the cap of one server's connections (used on the event loop only)."""

    def __init__(
        self, header_timeout: float = HEADER_TIMEOUT, max_connections: int = MAX_CONNECTIONS
    ) -> None:
        self.header_timeout = header_timeout
        self.max_connections = max_connections
        self._open: dict[Peer, _GuardedHTTP] = {}  # HTTP connections by client address
        # Connections waiting for a request (idle, or sending its head), oldest first: the first
        # to close at the cap.
        self._waiting: OrderedDict[Peer, None] = OrderedDict()

    def protocol(self) -> type[asyncio.Protocol]:
        """The class to pass as uvicorn's `http=`: its HTTP protocol behind this guard."""
        guard = self

        class GuardedHTTP(_GuardedHTTP):
            def __init__(self, **kwargs: Any) -> None:
                super().__init__(guard, **kwargs)

        return GuardedHTTP

    def wrap(self, app: Any) -> Any:
        """`app` as an ASGI app that tells the guard when a request reaches it and ends."""

        async def guarded(scope: dict[str, Any], receive: Any, send: Any) -> None:
            kind = scope["type"]
            peer = _peer(scope.get("client")) if kind in ("http", "websocket") else None
            if peer is None:
                await app(scope, receive, send)
                return
            self._request_started(peer, websocket=kind == "websocket")
            try:
                await app(scope, receive, send)
            finally:
                if kind == "http":
                    self._waiting_again(peer)

        return guarded

    # ---- the protocol's and the app's reports ------------------------------------------------

    def admit(self, connection: _GuardedHTTP, open_now: int) -> bool:
        """A new connection while `open_now` are open: False when it must be refused."""
        while open_now >= self.max_connections:
            if not self._waiting:
                return False
            oldest, _ = self._waiting.popitem(last=False)
            victim = self._open.get(oldest)
            if victim is not None:
                victim.expire()
            open_now -= 1
        if connection.peer is not None:
            self._open[connection.peer] = connection
            self._waiting[connection.peer] = None
            connection.arm(self.header_timeout)
        return True

    def _request_started(self, peer: Peer, websocket: bool) -> None:
        """A request (or WebSocket handshake) reached the app: its head is complete."""
        self._waiting.pop(peer, None)
        connection = self._open.pop(peer, None) if websocket else self._open.get(peer)
        if connection is not None:
            connection.disarm()

    def _waiting_again(self, peer: Peer) -> None:
        """The app answered: a keep-alive connection waits for its next request, idle (its
        deadline starts with the request's first byte)."""
        connection = self._open.get(peer)
        if connection is not None:
            self._waiting[peer] = None
            self._waiting.move_to_end(peer)
            connection.idle = True

    def closed(self, connection: _GuardedHTTP) -> None:
        """The connection is gone."""
        peer = connection.peer
        if peer is not None and self._open.get(peer) is connection:
            del self._open[peer]
            self._waiting.pop(peer, None)


class _GuardedHTTP(asyncio.Protocol):
    """uvicorn's HTTP protocol for one connection, with a deadline for its request head."""

    def __init__(self, guard: ConnectionGuard, **kwargs: Any) -> None:
        self._guard = guard
        self._server_state = kwargs["server_state"]
        self._inner = AutoHTTPProtocol(**kwargs)  # parses, calls the app, upgrades WebSockets
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None  # the deadline for the request head
        self._refused = False
        self.idle = False  # between two requests of a keep-alive connection, no byte yet
        self.peer: Peer | None = None  # the client's (address, port)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # a TCP server's transport
        self._transport = transport
        self.peer = _peer(transport.get_extra_info("peername"))
        if not self._guard.admit(self, len(self._server_state.connections)):
            # Answer, then read and drop what the client sends until it closes (or a second
            # passes): closing with its request unread would reset the connection and lose
            # the answer.
            self._refused = True
            transport.write(_FULL)
            if transport.can_write_eof():
                transport.write_eof()
            self.arm(REFUSED_LINGER)
            return
        self._inner.connection_made(transport)

    def arm(self, seconds: float) -> None:
        """Close the connection unless a request head completes within `seconds`."""
        self.disarm()
        self._timer = asyncio.get_running_loop().call_later(seconds, self.expire)

    def disarm(self) -> None:
        """No deadline (a request is in progress, or the connection became a WebSocket)."""
        self.idle = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def expire(self) -> None:
        """The head did not come in time: answer 408 and close (an idle or a refused
        connection just closes)."""
        quiet = self.idle or self._refused
        self.disarm()
        transport = self._transport
        if transport is not None and not transport.is_closing():
            if not quiet:
                transport.write(_TIMEOUT)
            transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.disarm()
        self._guard.closed(self)
        if not self._refused:
            self._inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self.idle:  # the first byte of the next request: its head has a deadline too
            self.arm(self._guard.header_timeout)
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        if self._refused:
            self.expire()
            return None
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        if not self._refused:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if not self._refused:
            self._inner.resume_writing()
