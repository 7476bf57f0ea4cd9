"""Streaming benchmark: what serving and streaming cost the training loop.

For the 2-8-8-1 tanh and the 2-64-64-64-1 relu networks (spiral data, batch 10) it measures
training steps per second

  (a) the engine alone: Trainer.train in this process, with a no-op on_report (the reports,
      evaluations and layer statistics a watcher needs are part of the engine's work);
  (b) inside the server (a real `python -m server` subprocess) on a session nobody watches;
  (c) the same server on a twin session (same configuration) that 20 WebSocket clients watch,
      each receiving up to 30 metrics frames a second plus snapshots;

and prints the ratios (c)/(b) and (b)/(a) as the geometric mean of each round's ratio, with a
90 % bootstrap interval. A round is one 2-second window of each state, in the order a b c, then
c b a in the next round: this VM's speed jumps between levels (about 6,500, 8,500 and 13,000
steps/s for the same net, and each of its two vCPUs on its own) from one second to the next even
when idle, so many short, adjacent, paired windows measure a few per cent better than a few long
ones. Windows are no shorter than 2 s because the server sends 20 clients of the wide net a
snapshot every ~1.8 s (its snapshot byte budget) and one at every stop: with 1 s windows the
(c) windows of that net held no snapshot at all, so their cost went unmeasured. The bench prints
the snapshots each client got per second of (c) windows to show they are counted. The twin session is what makes short windows possible: the clients stay connected to the
watched session the whole time (their idle connections cost the server nothing while that
session is stopped), so (b) and (c) alternate without 20 reconnections and hello frames.

By default the training (the server's training thread, found as its busiest thread after each
start, and the engine-alone runs) is pinned to the first CPU and the clients to the last one:
the clients stand for browsers on other machines, and on a 2-core machine their own work
(parsing 600 frames a second) would otherwise be measured as the server's. `--no-pin` turns this
off. The clients are lean ones written here on plain sockets (handshake, frame parsing, pongs,
JSON of every metrics frame); `--websockets-clients` uses the websockets library's asyncio client
instead, which costs several times more CPU per frame. `--clients 0` is an A/A run of the bench
itself ((c) then measures the same as (b): a ratio near 1 within its interval).

It also prints the server's CPU split (training thread, event loop, other threads), the
step-to-client latency of metrics frames (p50/p99: the server stamps each frame with its
CLOCK_MONOTONIC time "t", the clients compare with theirs on the same machine) and the server's
RSS growth over a long run with the clients connected (100,000 steps by default, --long for
1,000,000).

The server is `python -m server` in a subprocess (tests/support.py's LiveServer); `--ws` picks
uvicorn's WebSocket implementation for it, as the server's own option does.

Targets: (c)/(b) >= 0.90 (streaming costs the training at most 10 %), (b)/(a) >= 0.9,
p99 <= 100 ms, RSS growth < 50 MB. docs/performance.md keeps the results of earlier runs.
Run from the repository root: `.venv/bin/python -m bench.stream [--net NAME] [--rounds 60]
[--clients 20] [--ws IMPL] [--long]`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import math
import os
import random
import selectors
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# One BLAS thread in this process and in the server (which inherits the environment), as in
# bench/engine.py: OpenBLAS worker threads spin-wait and, on a 2-core machine, compete with the
# WebSocket clients for the second core. --threads N raises it. Set before numpy is imported.
_threads = sys.argv[sys.argv.index("--threads") + 1] if "--threads" in sys.argv else "1"
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = _threads

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import orjson  # noqa: E402
import websockets  # noqa: E402

from engine.trainer import Trainer  # noqa: E402
from server.cli import WS_IMPLEMENTATIONS  # noqa: E402
from tests.support import LiveServer, rss_mb  # noqa: E402

NETS: dict[str, dict[str, Any]] = {
    "2-8-8-1 tanh": {
        "seed": 0,
        "dataset": {"name": "spiral", "samples": 500},
        "layers": [
            {"type": "dense", "units": 8, "activation": "tanh"},
            {"type": "dense", "units": 8, "activation": "tanh"},
            {"type": "dense", "units": 1, "activation": "tanh"},
        ],
        "batch_size": 10,
    },
    "2-64-64-64-1 relu": {
        "seed": 0,
        "dataset": {"name": "spiral", "samples": 500},
        "layers": [
            {"type": "dense", "units": 64, "activation": "relu"},
            {"type": "dense", "units": 64, "activation": "relu"},
            {"type": "dense", "units": 64, "activation": "relu"},
            {"type": "dense", "units": 1, "activation": "tanh"},
        ],
        "batch_size": 10,
    },
}
SETTLE_SECONDS = 0.1  # after a start, before a window counts steps
TARGETS = {"c/b": 0.90, "b/a": 0.90, "p99_ms": 100.0, "rss_mb": 50.0}
BOOTSTRAP_SAMPLES = 2000


# ----------------------------------------------------------------------------- engine alone


def engine_steps_per_second(trainer: Trainer, seconds: float, reports: bool = True) -> float:
    """Trainer.train in this thread for `seconds`."""
    deadline = time.perf_counter() + seconds
    start_step, started = trainer.step, time.perf_counter()
    trainer.train(
        on_report=(lambda r: None) if reports else None,
        should_stop=lambda: time.perf_counter() >= deadline,
    )
    return (trainer.step - start_step) / (time.perf_counter() - started)


# ----------------------------------------------------------------------------- server


def start_server(data_dir: Path, ws: str) -> LiveServer:
    """`python -m server` on a temporary data directory, up to 4 sessions training at once."""
    return LiveServer(data_dir, ["--max-training", "4", "--ws", ws]).start()


def server_pid(server: LiveServer) -> int:
    if server.proc is None:
        raise RuntimeError("the server is not running")
    return server.proc.pid


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) of every thread of a process (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    out: dict[int, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(task.name)] = (int(fields[11]) + int(fields[12])) / ticks
    return out


def busiest_thread(pid: int, seconds: float) -> int:
    """The thread of a process that used the most CPU over the next `seconds` (not the main
    thread, which runs the event loop)."""
    before = thread_cpu(pid)
    time.sleep(seconds)
    used = {tid: cpu - before.get(tid, 0.0) for tid, cpu in thread_cpu(pid).items() if tid != pid}
    return max(used, key=lambda tid: used[tid])


def server_step(http: httpx.Client, sid: str) -> int:
    return int(http.get(f"/api/sessions/{sid}").json()["step"])


@dataclass
class Window:
    """One measurement window of a running session."""

    steps_per_second: float
    loop_cpu: float  # share of one core used by the server's main thread (the event loop)
    train_cpu: float  # ... by its busiest other thread (the training thread)
    other_cpu: float  # ... by the rest of its threads
    seconds: float  # how long it lasted


def measure_window(server: LiveServer, http: httpx.Client, sid: str, seconds: float) -> Window:
    """Steps per second of a running session over `seconds`, and where the CPU went."""
    pid = server_pid(server)
    cpu0, step0, t0 = thread_cpu(pid), server_step(http, sid), time.monotonic()
    time.sleep(seconds)
    cpu1, step1, t1 = thread_cpu(pid), server_step(http, sid), time.monotonic()
    used = {tid: cpu1[tid] - cpu0.get(tid, 0.0) for tid in cpu1}
    wall = t1 - t0
    loop = used.pop(pid, 0.0)
    train = max(used.values(), default=0.0)
    rest = sum(used.values()) - train
    return Window((step1 - step0) / wall, loop / wall, train / wall, rest / wall, wall)


# ----------------------------------------------------------------------------- clients


@dataclass
class Watchers:
    """N WebSocket clients on an event loop in a background thread of this process."""

    ws_url: str
    count: int
    latencies: list[float] = field(default_factory=list)  # seconds, metrics frames only
    frames: int = 0
    snapshots: int = 0
    recording: bool = False
    cpu: int | None = None  # pin the clients' thread to this CPU (None: anywhere)
    _stop: threading.Event = field(default_factory=threading.Event)
    _ready: threading.Barrier | None = None
    _thread: threading.Thread | None = None

    def start(self) -> None:
        if self.count == 0:  # --clients 0: an A/A run, (c) measured like (b)
            return
        self._ready = threading.Barrier(2)
        self._thread = threading.Thread(target=self._thread_main, daemon=True)
        self._thread.start()
        self._ready.wait(30)

    def _thread_main(self) -> None:
        with running_on(self.cpu):
            asyncio.run(self._main())

    async def _client(self, connected: asyncio.Event, counter: list[int]) -> None:
        async with websockets.connect(
            self.ws_url, max_size=None, compression=None, proxy=None, max_queue=None
        ) as ws:
            await ws.recv()  # hello
            counter[0] += 1
            if counter[0] == self.count:
                connected.set()
            while not self._stop.is_set():
                try:
                    raw = await asyncio.wait_for(ws.recv(), timeout=0.5)
                except TimeoutError:
                    continue
                now = time.monotonic()
                if not self.recording:
                    continue
                self.frames += 1
                if raw.startswith('{"type":"metrics"'):
                    self.latencies.append(now - orjson.loads(raw)["t"])
                elif raw.startswith('{"type":"snapshot"'):
                    self.snapshots += 1

    async def _main(self) -> None:
        connected = asyncio.Event()
        counter = [0]
        tasks = [asyncio.create_task(self._client(connected, counter)) for _ in range(self.count)]
        await asyncio.wait_for(connected.wait(), 30)
        if self._ready is not None:
            self._ready.wait(30)
        await asyncio.gather(*tasks)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)


class LeanWatchers:
    """N WebSocket clients (RFC 6455 by hand, on plain sockets) served by one thread of this
    process with a selector: they read every frame, parse each metrics frame's JSON for its "t",
    count snapshots and answer pings. About a tenth of the CPU of the websockets library's
    asyncio clients (Watchers), whose work on this 2-core machine would otherwise be measured as
    the server's."""

    def __init__(self, ws_url: str, count: int, cpu: int | None = None) -> None:
        self.ws_url = ws_url
        self.count = count
        self.cpu = cpu  # pin the clients' thread to this CPU (None: anywhere)
        self.latencies: list[float] = []  # seconds, metrics frames only
        self.frames = 0
        self.snapshots = 0
        self.recording = False
        self._stop = threading.Event()
        self._socks: list[socket.socket] = []
        self._buffers: list[bytearray] = []  # bytes received and not yet parsed, per client
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.count == 0:  # --clients 0: an A/A run, (c) measured like (b)
            return
        host_port, path = self.ws_url.removeprefix("ws://").split("/", 1)
        host, port = host_port.rsplit(":", 1)
        for _ in range(self.count):
            sock = socket.create_connection((host, int(port)), timeout=30)
            key = base64.b64encode(os.urandom(16)).decode()
            sock.sendall(
                f"GET /{path} HTTP/1.1\r\nHost: {host_port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\n\r\n".encode()
            )
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = sock.recv(4096)
                if not chunk:
                    raise RuntimeError("the server closed the WebSocket handshake")
                head += chunk
            status = head.split(b"\r\n", 1)[0]
            if b" 101 " not in status:
                raise RuntimeError(f"WebSocket handshake: {status.decode()}")
            sock.setblocking(False)
            self._socks.append(sock)
            self._buffers.append(bytearray(head.split(b"\r\n\r\n", 1)[1]))
        hello = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(hello,), daemon=True)
        self._thread.start()
        if not hello.wait(30):
            raise RuntimeError("the clients got no hello frame")

    def _run(self, hello: threading.Event) -> None:
        with running_on(self.cpu):
            self._read(hello)

    def _read(self, hello: threading.Event) -> None:
        selector = selectors.DefaultSelector()
        for index, sock in enumerate(self._socks):
            selector.register(sock, selectors.EVENT_READ, index)
        greeted: set[int] = set()
        while not self._stop.is_set():
            for key, _ in selector.select(0.2):
                index = key.data
                try:
                    data = self._socks[index].recv(1 << 20)
                except BlockingIOError:
                    continue
                if not data:
                    selector.unregister(key.fileobj)
                    continue
                buffer = self._buffers[index]
                buffer += data
                if self._frames(index, buffer) and index not in greeted:
                    greeted.add(index)
                    if len(greeted) == self.count:
                        hello.set()
        selector.close()

    def _frames(self, index: int, buffer: bytearray) -> int:
        """Take the whole frames at the start of `buffer`; returns how many."""
        taken = 0
        start = 0
        now = time.monotonic()
        while len(buffer) - start >= 2:
            opcode, size = buffer[start] & 0x0F, buffer[start + 1] & 0x7F
            at = start + 2
            if size == 126:
                if len(buffer) - at < 2:
                    break
                size, at = int.from_bytes(buffer[at : at + 2], "big"), at + 2
            elif size == 127:
                if len(buffer) - at < 8:
                    break
                size, at = int.from_bytes(buffer[at : at + 8], "big"), at + 8
            if len(buffer) - at < size:
                break
            payload = bytes(buffer[at : at + size])
            start = at + size
            taken += 1
            if opcode == 0x9:  # ping: answer with a masked pong carrying the same data
                self._send(index, 0xA, payload)
            elif opcode == 0x1 and self.recording:
                self.frames += 1
                if payload.startswith(b'{"type":"metrics"'):
                    self.latencies.append(now - orjson.loads(payload)["t"])
                elif payload.startswith(b'{"type":"snapshot"'):
                    self.snapshots += 1
        del buffer[:start]
        return taken

    def _send(self, index: int, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        frame = bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked
        with contextlib.suppress(OSError):
            self._socks[index].send(frame)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        for sock in self._socks:
            with contextlib.suppress(OSError):
                sock.close()


# ----------------------------------------------------------------------------- runs


def paired_ratio(top: list[float], bottom: list[float]) -> tuple[float, float, float]:
    """Geometric mean of the per-round ratios top/bottom, and its 90 % bootstrap interval."""
    logs = [math.log(t / b) for t, b in zip(top, bottom, strict=True)]
    rng = random.Random(0)
    means = sorted(
        statistics.fmean(rng.choices(logs, k=len(logs))) for _ in range(BOOTSTRAP_SAMPLES)
    )
    low, high = means[int(0.05 * len(means))], means[int(0.95 * len(means)) - 1]
    return math.exp(statistics.fmean(logs)), math.exp(low), math.exp(high)


@dataclass(frozen=True)
class Placement:
    """Where the bench runs what: the training (the server's training thread and the engine-
    alone runs) on one CPU, the clients on another, or both anywhere."""

    train_cpu: int | None = None
    clients_cpu: int | None = None

    @classmethod
    def of(cls, pin: bool) -> Placement:
        cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        return cls(cpus[0], cpus[-1]) if pin and len(cpus) > 1 else cls()

    def describe(self) -> str:
        if self.train_cpu is None:
            return "training and clients on any CPU"
        return f"training on CPU {self.train_cpu}, clients on CPU {self.clients_cpu}"


def make_watchers(
    ws_url: str, clients: int, cpu: int | None, lean: bool
) -> Watchers | LeanWatchers:
    return LeanWatchers(ws_url, clients, cpu=cpu) if lean else Watchers(ws_url, clients, cpu=cpu)


@contextlib.contextmanager
def running_on(cpu: int | None) -> Iterator[None]:
    """This thread (not the whole process: Linux affinity is per thread) on `cpu` only, for the
    duration; None leaves it where it is."""
    if cpu is None:
        yield
        return
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, allowed)


def percentiles_ms(values: list[float]) -> tuple[float, float]:
    """p50 and p99 of latencies in seconds, in milliseconds (nan without values)."""
    if not values:
        return float("nan"), float("nan")
    p50, p99 = np.percentile(values, [50, 99])
    return float(p50) * 1000, float(p99) * 1000


def bench_net(
    config: dict[str, Any],
    seconds: float,
    clients: int,
    rounds: int,
    place: Placement,
    lean: bool = True,
    ws: str = "auto",
) -> dict[str, Any]:
    """Rounds of one window of each state, in the order a b c, then c b a, and so on.

    (b) and (c) are two sessions of the same server with the same configuration: "twin", which
    nobody watches, and "watched", which the clients watch from the start to the end. So the
    two states alternate window by window without 20 clients reconnecting (and getting hello frames)
    between windows; the clients' idle connections cost the twin nothing (no frame is sent while
    their session is stopped). A window starts its session, lets it settle, counts steps for
    `seconds` and stops it.
    """
    a_rates: list[float] = []
    b_windows: list[Window] = []
    c_windows: list[Window] = []
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp) / "data", ws)
        try:
            with httpx.Client(base_url=server.url, timeout=30) as http:
                twin = http.post("/api/sessions", json={"config": config}).json()["id"]
                watched = http.post("/api/sessions", json={"config": config}).json()["id"]
                ws_url = f"{server.ws_url}/ws/sessions/{watched}"
                watchers = make_watchers(ws_url, clients, place.clients_cpu, lean)
                watchers.start()
                engine = Trainer(config)
                engine.train(steps=200, on_report=lambda r: None)  # warm-up
                try:
                    for round_ in range(rounds):
                        for state in "abc" if round_ % 2 == 0 else "cba":
                            if state == "a":
                                with running_on(place.train_cpu):
                                    a_rates.append(engine_steps_per_second(engine, seconds))
                            elif state == "b":
                                b_windows.append(
                                    session_window(server, http, twin, seconds, None, place)
                                )
                            else:
                                c_windows.append(
                                    session_window(server, http, watched, seconds, watchers, place)
                                )
                finally:
                    watchers.stop()
                bare = engine_steps_per_second(engine, seconds, reports=False)
        finally:
            server.stop()
    b_rates = [w.steps_per_second for w in b_windows]
    c_rates = [w.steps_per_second for w in c_windows]
    measured = clients * sum(w.seconds for w in c_windows)  # client-seconds of recording
    p50_ms, p99_ms = percentiles_ms(watchers.latencies)
    return {
        # paired estimates: each round's own ratio, combined over rounds, with 90 % intervals
        "c/b": paired_ratio(c_rates, b_rates),
        "b/a": paired_ratio(b_rates, a_rates),
        "a": statistics.median(a_rates),
        "a_bare": bare,
        "b": statistics.median(b_rates),
        "c": statistics.median(c_rates),
        "b_cpu": tuple(statistics.median(getattr(w, k) for w in b_windows) for k in _CPU),
        "c_cpu": tuple(statistics.median(getattr(w, k) for w in c_windows) for k in _CPU),
        "runs": (a_rates, b_rates, c_rates),
        "p50_ms": p50_ms,
        "p99_ms": p99_ms,
        "frames_per_client_s": len(watchers.latencies) / measured if clients else 0.0,
        "snapshots_per_client_s": watchers.snapshots / measured if clients else 0.0,
    }


def session_window(
    server: LiveServer,
    http: httpx.Client,
    sid: str,
    seconds: float,
    watchers: Watchers | LeanWatchers | None,
    place: Placement,
) -> Window:
    """Start a session, let it settle, measure one window (the clients count the frames that
    arrive in it), stop it. The training thread runs where `place` says."""
    http.post(f"/api/sessions/{sid}/start").raise_for_status()
    if place.train_cpu is None:
        time.sleep(SETTLE_SECONDS)
    else:  # the training thread is the busiest of the server's threads while it settles
        time.sleep(SETTLE_SECONDS / 2)
        tid = busiest_thread(server_pid(server), SETTLE_SECONDS / 2)
        os.sched_setaffinity(tid, {place.train_cpu})
    if watchers is not None:
        watchers.recording = True
    window = measure_window(server, http, sid, seconds)
    if watchers is not None:
        watchers.recording = False
    http.post(f"/api/sessions/{sid}/stop").raise_for_status()
    return window


_CPU = ("train_cpu", "loop_cpu", "other_cpu")


def bench_memory(
    config: dict[str, Any],
    steps: int,
    clients: int,
    place: Placement,
    lean: bool = True,
    ws: str = "auto",
) -> dict[str, float]:
    """Server RSS after warm-up and after `steps` more steps with `clients` watching."""
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp) / "data", ws)
        pid = server_pid(server)
        try:
            with httpx.Client(base_url=server.url, timeout=30) as http:
                sid = http.post("/api/sessions", json={"config": config}).json()["id"]
                ws_url = f"{server.ws_url}/ws/sessions/{sid}"
                watchers = make_watchers(ws_url, clients, place.clients_cpu, lean)
                watchers.start()
                http.post(f"/api/sessions/{sid}/start").raise_for_status()
                time.sleep(3.0)
                start_step, rss0 = server_step(http, sid), rss_mb(pid)
                started = time.monotonic()
                peak = rss0
                while server_step(http, sid) < start_step + steps:
                    time.sleep(1.0)
                    peak = max(peak, rss_mb(pid))
                elapsed = time.monotonic() - started
                rss1 = rss_mb(pid)
                http.post(f"/api/sessions/{sid}/stop")
                watchers.stop()
        finally:
            server.stop()
    return {"rss0": rss0, "rss1": rss1, "peak": peak, "growth": rss1 - rss0, "seconds": elapsed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each window")
    parser.add_argument("--rounds", type=int, default=40, help="rounds of (a), (b), (c)")
    parser.add_argument("--clients", type=int, default=20, help="0: an A/A run of the bench")
    parser.add_argument("--long", action="store_true", help="memory run of 1,000,000 steps")
    parser.add_argument("--memory-steps", type=int, default=100_000, help="memory run (default)")
    parser.add_argument("--net", choices=list(NETS), action="append", help="only these nets")
    parser.add_argument("--memory-only", action="store_true", help="skip the throughput part")
    parser.add_argument("--threads", default="1", help="BLAS threads, here and in the server")
    parser.add_argument(
        "--ws", choices=WS_IMPLEMENTATIONS, default="auto", help="the server's --ws (default auto)"
    )
    parser.add_argument(
        "--no-pin", action="store_true", help="let training and clients run on any CPU"
    )
    parser.add_argument(
        "--websockets-clients",
        action="store_true",
        help="clients from the websockets library (asyncio) instead of the lean ones",
    )
    parser.add_argument("--verbose", action="store_true", help="print every window's rate")
    args = parser.parse_args(argv)
    place = Placement.of(not args.no_pin)
    lean = not args.websockets_clients
    kind = "lean" if lean else "websockets-library"

    print(
        f"Backprop Lens streaming bench: {os.cpu_count()} CPUs, {args.clients} {kind} clients, "
        f"server --ws {args.ws}, "
        f"{place.describe()}, {args.seconds:g} s windows "
        f"x {args.rounds} rounds of a b c / c b a (ratios: geometric mean of each round's ratio), "
        f"{_threads} BLAS thread(s), load average {os.getloadavg()[0]:.1f} before starting"
    )
    failed = False
    for name in [] if args.memory_only else args.net or list(NETS):
        r = bench_net(NETS[name], args.seconds, args.clients, args.rounds, place, lean, args.ws)
        (cb, cb_lo, cb_hi), (ba, ba_lo, ba_hi) = r["c/b"], r["b/a"]
        print(f"\n{name}")
        print(
            f"  (a) engine alone          {r['a']:10.0f} steps/s   (no reports: {r['a_bare']:.0f})"
        )
        print(f"  (b) server, no client     {r['b']:10.0f} steps/s")
        print(
            f"  (c) server, {args.clients} clients    {r['c']:10.0f} steps/s   "
            f"({r['frames_per_client_s']:.1f} metrics frames/s per client, "
            f"{r['snapshots_per_client_s']:.1f} snapshots/s)"
        )
        print(
            f"  (c)/(b) = {cb:.3f} [90 % interval {cb_lo:.3f}-{cb_hi:.3f}] "
            f"(target >= {TARGETS['c/b']})\n"
            f"  (b)/(a) = {ba:.3f} [90 % interval {ba_lo:.3f}-{ba_hi:.3f}] "
            f"(target >= {TARGETS['b/a']})"
        )
        print(
            f"  step-to-client latency p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms "
            f"(target p99 <= {TARGETS['p99_ms']:g} ms)"
        )
        if args.verbose:
            for label, values in zip(("(a)", "(b)", "(c)"), r["runs"], strict=True):
                print(f"  {label} every window (steps/s): " + " ".join(f"{x:.0f}" for x in values))
        for label, split in (("(b)", r["b_cpu"]), ("(c)", r["c_cpu"])):
            print(
                f"  server CPU {label}: training thread {split[0]:.0%}, event loop {split[1]:.0%}, "
                f"other threads {split[2]:.0%} of a core"
            )
        latency_missed = not r["p99_ms"] <= TARGETS["p99_ms"]  # nan (no frames) misses too
        failed |= cb < TARGETS["c/b"] or ba < TARGETS["b/a"] or latency_missed

    steps = 1_000_000 if args.long else args.memory_steps
    name = "2-8-8-1 tanh"
    m = bench_memory(NETS[name], steps, args.clients, place, lean, args.ws)
    print(f"\nmemory: {name}, {steps:,} steps with {args.clients} clients in {m['seconds']:.0f} s")
    print(
        f"  server RSS {m['rss0']:.1f} MB -> {m['rss1']:.1f} MB (peak {m['peak']:.1f}): "
        f"growth {m['growth']:+.1f} MB (target < {TARGETS['rss_mb']:g} MB)"
    )
    failed |= m["growth"] >= TARGETS["rss_mb"]
    if args.clients == 0:
        print("\nA/A run (no clients): (c)/(b) should be 1 within its interval; no targets judged")
    else:
        print("\nall targets met" if not failed else "\nsome targets missed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
