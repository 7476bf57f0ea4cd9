"""Fan-out of live frames from training threads to WebSocket clients on the event loop.

A training thread calls `Hub.publish(session_id, kind, frame)`; the frame is encoded ONCE with
orjson in that thread (only when someone watches) and handed to the event loop with
`loop.call_soon_threadsafe`, so the training thread never waits for a socket. On the loop every
client of the session gets that same text in its own small mailbox, and its own sender task sends
it with Starlette's `websocket.send_text`. Only the server's public ASGI interface is used, so the
hub works the same under every WebSocket implementation uvicorn offers (`--ws`), with or without
per-message deflate, and depends on nothing below it (transport, socket, TLS).

- "status", "event", "hello" and "error" frames queue in order and are never dropped (a client
  that lets `max_pending` of them pile up is cut off instead);
- "metrics" and "snapshot" frames keep only the newest one pending (latest wins), so a slow
  client skips stale frames instead of falling behind; a metrics frame still pending when a
  status or event frame arrives is sent first, so a client never sees "paused" before the last
  step's numbers;
- metrics frames go out at most `frame_rate` times a second per client.

A send waits while the connection's transport is full (the server's flow control), so a client
that stops reading blocks only its own sender task. A send still waiting after `stall_seconds`
gets the client dropped: its sender is cancelled and `websocket.close(1008, reason)` is queued.
That close also waits for room, so a peer that reads again gets the close frame after the data
already on its way. ASGI offers no way to abort a connection: a peer that never reads again
keeps its socket until it goes away, but gets nothing more (docs/performance.md).

The stall check is one timer for the whole hub (a look at every client four times per
`stall_seconds`), not a timeout around every send: `asyncio.timeout` costs about 20 us a send
under uvloop, as much as the send itself. docs/performance.md has the measurements behind these
choices.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from typing import Any

import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect

from server.limits import MAX_WS_CLIENTS_PER_SESSION

log = logging.getLogger("backprop_lens.hub")

MAX_CLIENTS_PER_SESSION = MAX_WS_CLIENTS_PER_SESSION
CLOSE_NOT_FOUND = 4404  # application close code: no such session (mirrors HTTP 404)
CLOSE_POLICY = 1008  # policy violation: too many clients, or a client too slow to keep up
LATEST_WINS = frozenset({"metrics", "snapshot"})
MIN_SLEEP = 0.002  # seconds: the shortest wait for a rate-limited frame
STALL_SECONDS = 2.0  # a send blocked this long means the peer stopped reading: drop it
STALL_CHECKS = 4  # looks for blocked sends per stall_seconds: a stall is noticed within 1.25x
_ORJSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def encode(frame: dict[str, Any]) -> str:
    """One frame as JSON text (orjson: NaN and infinity become null)."""
    return orjson.dumps(frame, option=_ORJSON_OPTIONS).decode()


class HubFullError(Exception):
    """A session already has the most WebSocket clients allowed."""


class Client:
    """One WebSocket connection's mailbox and sender task."""

    def __init__(self, hub: Hub, session_id: str, websocket: WebSocket) -> None:
        self.hub = hub
        self.session_id = session_id
        self.websocket = websocket
        self.queue: deque[str] = deque()  # frames that must all arrive, in order
        self.metrics: str | None = None  # the newest metrics frame not yet sent
        self.snapshot: str | None = None  # the newest snapshot frame not yet sent
        self.wake = asyncio.Event()  # set whenever something was offered
        self.closed = False
        self.sent = 0  # frames sent (for tests and the bench)
        self.dropped = 0  # latest-wins frames replaced before they were sent
        self.send_began: float | None = None  # loop time the send in progress began
        self._next_metrics = 0.0  # loop time of the next metrics send slot
        self._task: asyncio.Task[None] | None = None  # the sender
        self._closing: asyncio.Task[None] | None = None  # the close frame of a dropped client

    def offer(self, kind: str, text: str) -> None:
        """Queue one encoded frame for sending (on the event loop)."""
        if self.closed:
            return
        if kind == "metrics":
            if self.metrics is not None:
                self.dropped += 1
            self.metrics = text
        elif kind == "snapshot":
            if self.snapshot is not None:
                self.dropped += 1
            self.snapshot = text
        else:
            if len(self.queue) >= self.hub.max_pending:
                log.warning("client of session %s is too slow; disconnecting it", self.session_id)
                self.drop("client too slow")
                return
            if self.metrics is not None:  # keep metrics -> status order
                self.queue.append(self.metrics)
                self.metrics = None
            self.queue.append(text)
        self.wake.set()

    def start(self, first: str | None = None) -> None:
        """Start sending, `first` (the hello frame) before anything already queued."""
        if first is not None:
            self.queue.appendleft(first)
            self.wake.set()
        self._task = asyncio.get_running_loop().create_task(self._run())

    def _metrics_due(self, now: float) -> bool:
        """A metrics frame may go out now (a send slot every 1/frame_rate s, early by up to
        half a slot)."""
        return self._next_metrics - now <= 0.5 / self.hub.frame_rate

    def _take_metrics_slot(self, now: float) -> None:
        # never ahead on average, and no burst after a pause
        self._next_metrics = max(self._next_metrics + 1.0 / self.hub.frame_rate, now)

    async def _run(self) -> None:
        """Send what is pending, in order, metrics no faster than the frame rate."""
        loop = asyncio.get_running_loop()
        send = self.websocket.send_text
        try:
            while not self.closed:
                await self.wake.wait()
                self.wake.clear()
                while not self.closed:
                    now = loop.time()
                    if self.queue:
                        text = self.queue.popleft()
                    elif self.metrics is not None and self._metrics_due(now):
                        text, self.metrics = self.metrics, None
                        self._take_metrics_slot(now)
                    elif self.snapshot is not None:
                        text, self.snapshot = self.snapshot, None
                    elif self.metrics is not None:  # not due yet: at most frame_rate a second
                        # uvloop's clock ticks in milliseconds: a shorter sleep would spin
                        await asyncio.sleep(max(self._next_metrics - now, MIN_SLEEP))
                        continue
                    else:
                        break
                    self.send_began = now  # the hub's stall check reads it
                    await send(text)
                    self.send_began = None
                    self.sent += 1
                    if self.queue or self.metrics is not None or self.snapshot is not None:
                        await asyncio.sleep(0)  # between sends: let other senders and requests run
        except (WebSocketDisconnect, RuntimeError, OSError) as exc:
            log.debug("client of session %s gone: %s", self.session_id, exc)
        except asyncio.CancelledError:
            pass
        finally:
            self.send_began = None
            if not self.closed:  # gone by itself; a drop has already removed it (and closes it)
                self.hub.remove(self)

    def stalled(self, now: float) -> bool:
        """True when the send in progress has waited `stall_seconds` or more."""
        return self.send_began is not None and now - self.send_began >= self.hub.stall_seconds

    def drop(self, reason: str) -> None:
        """Stop sending to a client that cannot keep up and queue a close frame (1008) that
        tells it why. The close waits for room in the transport like any send; `stop` (the
        endpoint ending, the server shutting down) cancels it."""
        self.hub.remove(self)
        self._closing = asyncio.get_running_loop().create_task(self._close_quietly(reason))

    async def _close_quietly(self, reason: str) -> None:
        with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
            await self.websocket.close(CLOSE_POLICY, reason)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the socket, giving up after a second (a stalled peer cannot take the frame)."""
        with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect, TimeoutError):
            await asyncio.wait_for(self.websocket.close(code, reason), timeout=1.0)

    def stop(self) -> None:
        """Stop the sender task and any close still waiting (the endpoint closes the socket)."""
        self.closed = True
        self.wake.set()
        current = asyncio.current_task()
        for task in (self._task, self._closing):
            if task is not None and task is not current:
                task.cancel()


class Hub:
    """Every session's WebSocket clients, and the thread-safe way to reach them."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        frame_rate: float = 30.0,
        max_clients: int = MAX_CLIENTS_PER_SESSION,
        max_pending: int = 1000,
        stall_seconds: float = STALL_SECONDS,
    ) -> None:
        if frame_rate <= 0:
            raise ValueError(f"frame_rate: expected a number > 0, got {frame_rate}")
        if stall_seconds <= 0:
            raise ValueError(f"stall_seconds: expected a number > 0, got {stall_seconds}")
        self.loop = loop
        self.frame_rate = float(frame_rate)  # metrics frames per second per client, at most
        self.max_clients = max_clients
        self.max_pending = max_pending  # status/event frames queued per client before cut-off
        self.stall_seconds = float(stall_seconds)  # a send blocked this long drops its client
        self._clients: dict[str, set[Client]] = {}  # session id -> clients (loop thread only)
        self._counts: dict[str, int] = {}  # session id -> client count (read from any thread)
        self._lock = threading.Lock()  # guards _counts writes
        self._stall_check: asyncio.TimerHandle | None = None  # armed while clients exist

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
        for client in tuple(self._clients.get(session_id, ())):
            client.offer(kind, text)  # the same text object for every client

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
        if self._stall_check is None:
            self._stall_check = self.loop.call_later(self._stall_interval(), self._check_stalls)
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
        if self._stall_check is not None:
            self._stall_check.cancel()
            self._stall_check = None

    def _check_stalls(self) -> None:
        """Drop every client whose send has been blocked for `stall_seconds`."""
        now = self.loop.time()
        for clients in tuple(self._clients.values()):
            for client in tuple(clients):
                if client.stalled(now):
                    log.warning(
                        "client of session %s stopped reading for %g s; dropping it",
                        client.session_id,
                        self.stall_seconds,
                    )
                    client.drop(f"stopped reading for {self.stall_seconds:g} s")
        self._stall_check = (
            self.loop.call_later(self._stall_interval(), self._check_stalls)
            if self._clients
            else None
        )

    def _stall_interval(self) -> float:
        return self.stall_seconds / STALL_CHECKS

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
