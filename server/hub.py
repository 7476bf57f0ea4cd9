"""Fan-out of live frames from training threads to WebSocket clients on the event loop.

A training thread calls `Hub.publish(session_id, kind, frame)`; the frame is encoded ONCE with
orjson in that thread (only when someone watches) and handed to the event loop with
`loop.call_soon_threadsafe`, so the training thread never waits for a socket. On the loop the
frame's WebSocket wire form (header + UTF-8 payload; unmasked server frames are the same bytes for
every peer) is built once too, and a client whose socket is keeping up gets it with one
`transport.write`, right away. Everything else goes through each client's small mailbox and
sender task:

- "status", "event", "hello" and "error" frames queue in order and are never dropped (a client
  that lets `max_pending` of them pile up is cut off instead);
- "metrics" and "snapshot" frames keep only the newest one pending (latest wins), so a slow
  client skips stale frames instead of falling behind; a metrics frame still pending when a
  status or event frame arrives is sent first, so a client never sees "paused" before the last
  step's numbers;
- metrics frames go out at most `frame_rate` times a second per client.

A stalled client blocks only its own sender task. Measured with bench/stream.py (20 clients,
2-64-64-64-1 net): writing the shared wire bytes instead of one `send_text` per client (UTF-8
encode, frame serialisation and four awaits each) cut the event loop's CPU from 7 % to 3 % of a
core, and the training thread's share of a core from 91 % to 96-97 % (the rest is GIL waits).

Where the rest goes, measured by switching publication on and off every 0.2 s inside one watched
session (150 s per variant, 2-8-8-1, 20 clients; these intervals are far tighter than
bench/stream.py's): publishing costs the training 4.5 % [3.3-5.7], delivery on the loop about
2 % of that. The loop does ~0.56 ms of GIL-held work per metrics tick for 20 clients (~28 us each:
the checks here and uvloop's write, whose loopback send also runs the receiver's TCP stack), and
the GIL changes hands several times a tick (the training thread releases it in every np.dot).
Tried and dropped, so nobody repeats them without a new idea:
- all copies of a frame in one io_uring submission (ctypes, outside the GIL): 1.001 [0.988-1.014];
- the training thread waiting while the loop delivers (one clean hand-over a tick): 0.99
  [0.97-1.01]; it waits ~0.75 ms a tick, which is what it saved;
- sends from the training thread itself (no hand-over): +1.7 % [0.6-2.9], but unsafe here: a GIL
  switch can fall between the check that the transport is empty and the raw send, and uvicorn
  writes its own ping frames, so two writers could interleave a frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import struct
import threading
import time
from collections import deque
from typing import Any

import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.protocol import State
from websockets.server import ServerProtocol

from server.limits import MAX_WS_CLIENTS_PER_SESSION
from server.security import RAW_SEND_KEY

log = logging.getLogger("backprop_lens.hub")

MAX_CLIENTS_PER_SESSION = MAX_WS_CLIENTS_PER_SESSION
CLOSE_NOT_FOUND = 4404  # application close code: no such session (mirrors HTTP 404)
CLOSE_POLICY = 1008  # policy violation: too many clients, or a client too slow to keep up
LATEST_WINS = frozenset({"metrics", "snapshot"})
MIN_SLEEP = 0.002  # seconds: the shortest wait for a rate-limited frame
DIRECT_WRITE_BYTES = 16_384  # frames this big (snapshots, hello) go to the socket with os.write
STALL_SECONDS = 2.0  # a send blocked this long means the peer stopped reading: drop it
DROP_GRACE_SECONDS = 2.0  # after queueing the close frame, abort the connection this much later
_ORJSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def encode(frame: dict[str, Any]) -> str:
    """One frame as JSON text (orjson: NaN and infinity become null)."""
    return orjson.dumps(frame, option=_ORJSON_OPTIONS).decode()


def text_frame(payload: bytes) -> bytes:
    """An unfragmented, unmasked WebSocket text frame carrying `payload` (RFC 6455, 5.2)."""
    size = len(payload)  # the length takes 7 bits, or 7 + 16, or 7 + 64
    if size < 126:
        head = struct.pack("!BB", 0x81, size)
    elif size < 1 << 16:
        head = struct.pack("!BBH", 0x81, 126, size)
    else:
        head = struct.pack("!BBQ", 0x81, 127, size)
    return head + payload


class Frame:
    """One encoded frame on its way to every client of a session: JSON text, and its WebSocket
    wire bytes, built on first use and then shared."""

    __slots__ = ("text", "_wire")

    def __init__(self, text: str) -> None:
        self.text = text  # the JSON text
        self._wire: bytes | None = None  # header + UTF-8 payload, once built

    @property
    def wire(self) -> bytes:
        if self._wire is None:
            self._wire = text_frame(self.text.encode())
        return self._wire


class RawLink:
    """Direct writes of prebuilt frames to uvicorn's websockets-sansio connection.

    Only used while the connection is open, its transport is not paused (the peer keeps up) and
    no extension was negotiated; otherwise the client sends through Starlette, which waits for
    the transport to drain. Writes happen on the event loop between whole frames, so they never
    interleave with the frames uvicorn writes itself (pongs, the close frame).

    A big frame (a snapshot, a hello) goes to the socket with `os.write` when the transport
    holds no unsent data: the call releases the GIL while the kernel copies the frame (on
    loopback it also runs the receiving side's TCP work), where uvloop's own write would hold the
    GIL and keep the training thread waiting. Whatever the socket does not take goes to the
    transport, which sends it in order. Small frames (metrics) go to the transport, which writes
    them all at the end of the loop's iteration in one stretch: releasing the GIL for each would
    cost more GIL hand-offs than it saves (measured with 20 clients of the 2-8-8-1 net: 11,000
    context switches a second, p99 latency 47 ms instead of 19 ms and (c)/(b) 0.87 instead of
    0.93).
    """

    def __init__(self, protocol: Any) -> None:
        self.protocol = protocol  # uvicorn's WebSocketsSansIOProtocol
        self.conn = protocol.conn  # its websockets ServerProtocol (state, extensions)
        self.transport = protocol.transport
        self.fd = _plain_socket_fd(self.transport)  # -1: always write through the transport

    @classmethod
    def of(cls, websocket: WebSocket) -> RawLink | None:
        """The raw link under `websocket`, or None when it is not served by uvicorn's
        websockets-sansio protocol (another server, a test double)."""
        protocol = server_protocol(websocket)
        conn = getattr(protocol, "conn", None)
        needed = ("writable", "disconnected", "close_sent", "transport")
        if not isinstance(conn, ServerProtocol) or not all(hasattr(protocol, a) for a in needed):
            return None
        if conn.extensions or not callable(getattr(protocol.transport, "write", None)):
            return None
        return cls(protocol)

    def ready(self) -> bool:
        """True when a frame written now goes straight out."""
        protocol = self.protocol
        return (
            protocol.writable.is_set()
            and not protocol.disconnected
            and not protocol.close_sent
            and self.conn.state is State.OPEN
            and not self.transport.is_closing()
        )

    def write(self, frame: Frame) -> None:
        data: bytes | memoryview = frame.wire
        if (
            self.fd >= 0
            and len(data) >= DIRECT_WRITE_BYTES
            and not self.transport.get_write_buffer_size()
        ):
            try:
                sent = os.write(self.fd, data)  # non-blocking socket: may take only a part
            except OSError:  # EAGAIN, or a broken pipe the transport will report itself
                sent = 0
            if sent == len(data):
                return
            data = memoryview(data)[sent:]
        self.transport.write(data)


def _plain_socket_fd(transport: Any) -> int:
    """The file descriptor of a plain (not TLS) socket transport that reports its write
    buffer, else -1."""
    get = getattr(transport, "get_extra_info", None)
    if get is None or get("sslcontext") is not None or get("ssl_object") is not None:
        return -1
    if not callable(getattr(transport, "get_write_buffer_size", None)):
        return -1
    try:
        return int(get("socket").fileno())
    except (AttributeError, OSError, TypeError, ValueError):
        return -1


class HubFullError(Exception):
    """A session already has the most WebSocket clients allowed."""


class Client:
    """One WebSocket connection's mailbox and sender task."""

    def __init__(self, hub: Hub, session_id: str, websocket: WebSocket) -> None:
        self.hub = hub
        self.session_id = session_id
        self.websocket = websocket
        self.link = RawLink.of(websocket)  # direct writes of shared wire bytes, when possible
        self.queue: deque[Frame] = deque()  # frames that must all arrive, in order
        self.metrics: Frame | None = None  # the newest metrics frame not yet sent
        self.snapshot: Frame | None = None  # the newest snapshot frame not yet sent
        self.wake = asyncio.Event()  # set whenever something was offered
        self.closed = False
        self.sending = False  # the sender task is between frames or inside a send
        self.sent = 0  # frames sent (for tests and the bench)
        self.dropped = 0  # latest-wins frames replaced before they were sent
        self._next_metrics = 0.0  # loop time of the next metrics send slot
        self._task: asyncio.Task[None] | None = None

    def offer(self, kind: str, frame: Frame | str) -> None:
        """Send one encoded frame now if the socket keeps up, else queue it (on the event loop)."""
        if self.closed:
            return
        if isinstance(frame, str):
            frame = Frame(frame)
        now = self.hub.loop.time()
        if (
            self._idle()
            and (kind != "metrics" or self._metrics_due(now))
            and self._write_now(frame)
        ):
            if kind == "metrics":
                self._take_metrics_slot(now)
            return
        if kind == "metrics":
            if self.metrics is not None:
                self.dropped += 1
            self.metrics = frame
        elif kind == "snapshot":
            if self.snapshot is not None:
                self.dropped += 1
            self.snapshot = frame
        else:
            if len(self.queue) >= self.hub.max_pending:
                log.warning("client of session %s is too slow; disconnecting it", self.session_id)
                self.hub.remove(self)
                asyncio.get_running_loop().create_task(self.close(CLOSE_POLICY, "client too slow"))
                return
            if self.metrics is not None:  # keep metrics -> status order
                self.queue.append(self.metrics)
                self.metrics = None
            self.queue.append(frame)
        self.wake.set()

    def start(self, first: str | None = None) -> None:
        """Start sending, `first` (the hello frame) before anything already queued."""
        if first is not None:
            self.queue.appendleft(Frame(first))
            self.wake.set()
        self._task = asyncio.get_running_loop().create_task(self._run())

    def _idle(self) -> bool:
        """Nothing pending and the sender task waiting: a frame may go out ahead of it."""
        return (
            self._task is not None
            and not self.sending
            and not self.queue
            and self.metrics is None
            and self.snapshot is None
        )

    def _metrics_due(self, now: float) -> bool:
        """A metrics frame may go out now (a send slot every 1/frame_rate s, early by up to
        half a slot)."""
        return self._next_metrics - now <= 0.5 / self.hub.frame_rate

    def _take_metrics_slot(self, now: float) -> None:
        # never ahead on average, and no burst after a pause
        self._next_metrics = max(self._next_metrics + 1.0 / self.hub.frame_rate, now)

    def _write_now(self, frame: Frame) -> bool:
        """Write a frame straight to the transport if it keeps up; False when it must wait."""
        link = self.link
        if link is None or not link.ready():
            return False
        link.write(frame)
        self.sent += 1
        return True

    async def _run(self) -> None:
        """Send what queued up while the socket was busy, metrics no faster than the frame rate."""
        loop = asyncio.get_running_loop()
        try:
            while not self.closed:
                await self.wake.wait()
                self.wake.clear()
                self.sending = True
                while not self.closed:
                    now = loop.time()
                    if self.queue:
                        frame = self.queue.popleft()
                    elif self.metrics is not None and self._metrics_due(now):
                        frame, self.metrics = self.metrics, None
                        self._take_metrics_slot(now)
                    elif self.snapshot is not None:
                        frame, self.snapshot = self.snapshot, None
                    elif self.metrics is not None:  # not due yet: at most frame_rate a second
                        # uvloop's clock ticks in milliseconds: a shorter sleep would spin
                        await asyncio.sleep(max(self._next_metrics - now, MIN_SLEEP))
                        continue
                    else:
                        break
                    if not await self._send(frame):
                        return
                    if self.queue or self.metrics is not None or self.snapshot is not None:
                        await asyncio.sleep(0)  # between sends: let other senders and requests run
                self.sending = False
        except (WebSocketDisconnect, RuntimeError, OSError) as exc:
            log.debug("client of session %s gone: %s", self.session_id, exc)
        except asyncio.CancelledError:
            pass
        finally:
            self.sending = False
            self.hub.remove(self)

    async def _send(self, frame: Frame) -> bool:
        """Send one frame: straight to the transport when it keeps up, else through Starlette
        (which waits for the transport to drain). False when the peer stalled and was dropped."""
        if self._write_now(frame):
            return True
        try:
            await asyncio.wait_for(self.websocket.send_text(frame.text), STALL_SECONDS)
        except TimeoutError:
            log.warning(
                "client of session %s stopped reading for %g s; dropping it",
                self.session_id,
                STALL_SECONDS,
            )
            self.hub.remove(self)
            self.drop(CLOSE_POLICY, f"stopped reading for {STALL_SECONDS:g} s")
            return False
        self.sent += 1
        return True

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the socket, giving up after a second (a stalled peer cannot take the frame)."""
        with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect, TimeoutError):
            await asyncio.wait_for(self.websocket.close(code, reason), timeout=1.0)

    def drop(self, code: int, reason: str) -> None:
        """Drop a peer that stopped reading: queue a close frame, then free the socket.

        A plain close would wait for the peer to read first. The close frame goes behind the
        unread data (a peer that reads again within DROP_GRACE_SECONDS still sees the code);
        after that the TCP connection is aborted, so the socket and its buffers are freed.
        """
        self.closed = True
        transport = transport_of(self.websocket)
        protocol = getattr(server_protocol(self.websocket), "conn", None)  # websockets' state
        if transport is None:
            asyncio.get_running_loop().create_task(self.close(code, reason))
            return
        with contextlib.suppress(Exception):  # the frame is a courtesy; the abort is what counts
            if protocol is not None:
                protocol.send_close(code, reason)
                transport.write(b"".join(protocol.data_to_send()))
        asyncio.get_running_loop().call_later(DROP_GRACE_SECONDS, transport.abort)

    def stop(self) -> None:
        """Stop the sender task (the endpoint closes the socket)."""
        self.closed = True
        self.wake.set()
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()


def server_protocol(websocket: WebSocket) -> Any:
    """The ASGI server's protocol object under a WebSocket (what its own send callable is bound
    to: uvicorn's WebSocketsSansIOProtocol), or None."""
    scope = getattr(websocket, "scope", None) or {}
    return getattr(scope.get(RAW_SEND_KEY), "__self__", None)


def transport_of(websocket: WebSocket) -> Any:
    """The transport under a WebSocket (asyncio's or uvloop's), when the server is uvicorn."""
    transport = getattr(server_protocol(websocket), "transport", None)
    return transport if callable(getattr(transport, "abort", None)) else None


class Hub:
    """Every session's WebSocket clients, and the thread-safe way to reach them."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        frame_rate: float = 30.0,
        max_clients: int = MAX_CLIENTS_PER_SESSION,
        max_pending: int = 1000,
    ) -> None:
        if frame_rate <= 0:
            raise ValueError(f"frame_rate: expected a number > 0, got {frame_rate}")
        self.loop = loop
        self.frame_rate = float(frame_rate)  # metrics frames per second per client, at most
        self.max_clients = max_clients
        self.max_pending = max_pending  # status/event frames queued per client before cut-off
        self._clients: dict[str, set[Client]] = {}  # session id -> clients (loop thread only)
        self._counts: dict[str, int] = {}  # session id -> client count (read from any thread)
        self._lock = threading.Lock()  # guards _counts writes

    # ---- any thread -----------------------------------------------------------------------

    def viewers(self, session_id: str) -> int:
        """How many clients watch a session (cheap; safe from any thread)."""
        return self._counts.get(session_id, 0)

    def publish(self, session_id: str, kind: str, frame: dict[str, Any]) -> int:
        """Send `frame` (with "type" = kind) to every client of a session; never blocks.
        Returns the encoded size (0 when nobody watches)."""
        if not self._counts.get(session_id):
            return 0
        text = encode(frame)
        self.publish_text(session_id, kind, text)
        return len(text)

    def publish_text(self, session_id: str, kind: str, text: str) -> None:
        """Like publish, for an already encoded frame."""
        if not self._counts.get(session_id):
            return
        if _on_loop(self.loop):
            self._deliver(session_id, kind, text)
        else:
            with contextlib.suppress(RuntimeError):  # the loop closed during shutdown
                self.loop.call_soon_threadsafe(self._deliver, session_id, kind, text)

    # ---- event loop -----------------------------------------------------------------------

    def _deliver(self, session_id: str, kind: str, text: str) -> None:
        frame = Frame(text)  # its wire bytes are built once, for all clients
        for client in tuple(self._clients.get(session_id, ())):
            client.offer(kind, frame)

    def add(self, session_id: str, websocket: WebSocket) -> Client:
        """Register a client (its frames queue from now on); HubFullError past max_clients."""
        clients = self._clients.setdefault(session_id, set())
        if len(clients) >= self.max_clients:
            raise HubFullError(
                f"session {session_id} already has {self.max_clients} live clients, "
                f"the most allowed"
            )
        client = Client(self, session_id, websocket)
        clients.add(client)
        self._set_count(session_id, len(clients))
        return client

    def remove(self, client: Client) -> None:
        """Forget a client and stop its sender (idempotent)."""
        client.stop()
        clients = self._clients.get(client.session_id)
        if clients is None or client not in clients:
            return
        clients.discard(client)
        self._set_count(client.session_id, len(clients))
        if not clients:
            del self._clients[client.session_id]

    def clients(self, session_id: str) -> list[Client]:
        """The live clients of a session."""
        return list(self._clients.get(session_id, ()))

    async def close_session(self, session_id: str, code: int = 1000, reason: str = "") -> None:
        """Close every client of a session (e.g. it was deleted)."""
        for client in self.clients(session_id):
            self.remove(client)
            await client.close(code, reason)

    async def close_all(self) -> None:
        """Stop every sender (server shutdown)."""
        for session_id in list(self._clients):
            for client in self.clients(session_id):
                self.remove(client)

    def _set_count(self, session_id: str, count: int) -> None:
        with self._lock:
            if count:
                self._counts[session_id] = count
            else:
                self._counts.pop(session_id, None)


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    """True when called from the thread running `loop`."""
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def monotonic() -> float:
    """The server-side clock put in metrics frames as "t" (comparable across processes)."""
    return time.monotonic()
