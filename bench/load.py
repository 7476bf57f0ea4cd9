"""Load benchmark: many sessions, several training at once, many WebSocket clients, one stalled.

Against a real `python -m server --max-training 4` subprocess (one BLAS thread, as in
bench/stream.py), for --seconds (default 60):

  - 20 sessions are stored and 4 train at once (2-8-8-1 tanh on spiral data, batch 10), each
    watched by --clients WebSocket clients (default 32, the most a session takes) that read
    everything; every few seconds the learning rate of each training session is changed
    (PATCH), which every client must see as a "hyperparameters" event, and at the end every
    client must see the final "paused" status: any lost status/event frame is printed;
  - GET /api/health is timed every 20 ms from a separate process (target p99 < 100 ms);
  - the server's RSS (/proc/<pid>/status VmRSS) at start, after the clients connected, peak
    and end;
  - after 10 s, one of the first session's clients is replaced by one that stops reading (a raw
    socket with a 4 KiB receive buffer, never read) for --stall-seconds (default 30): the
    server's RSS growth meanwhile (target < 50 MB), the kernel send queue of that socket,
    whether and when the server dropped it and with which close code, and the other clients'
    metrics rate before and during the stall.

Run: `.venv/bin/python -m bench.load [--seconds 60] [--clients 32] [--stall-seconds 30]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # inherited by the server, as in bench/stream.py

ROOT = Path(__file__).resolve().parent.parent

import httpx  # noqa: E402
import orjson  # noqa: E402
from websockets.asyncio.client import ClientConnection, connect  # noqa: E402
from websockets.exceptions import ConnectionClosedOK  # noqa: E402

from tests.support import (  # noqa: E402
    LiveServer,  # noqa: E402
    drain,
    percentile,
    rss_mb,
    server_side_tcp,
    stalled_websocket,
)

SESSIONS = 20
TRAINING = 4
NET = {
    "seed": 0,
    "dataset": {"name": "spiral", "samples": 500},
    "layers": [
        {"type": "dense", "units": 8, "activation": "tanh"},
        {"type": "dense", "units": 8, "activation": "tanh"},
        {"type": "dense", "units": 1, "activation": "tanh"},
    ],
    "batch_size": 10,
}
HEALTH_INTERVAL = 0.02  # seconds between two GET /api/health
STALL_AFTER = 10.0  # seconds of training before the client stalls


# ---- measuring ----------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def probe_health(url: str, stop: Any, out: Any) -> None:
    """In a process of its own: GET /api/health every HEALTH_INTERVAL until `stop` is set;
    puts (latencies, failures) on `out`."""
    latencies: list[float] = []
    failures: list[str] = []
    with httpx.Client(base_url=url, timeout=10.0, trust_env=False) as http:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                if http.get("/api/health").status_code != 200:
                    failures.append("status")
            except httpx.HTTPError as exc:
                failures.append(repr(exc))
            latencies.append(time.perf_counter() - started)
            stop.wait(HEALTH_INTERVAL)
    out.put((latencies, failures))


@dataclass
class Reader:
    """A WebSocket client that reads everything; it parses only status/event/hello frames."""

    session_id: str
    hello: bool = False
    frames: int = 0
    metrics: int = 0
    snapshots: int = 0
    metric_times: list[float] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    status_steps: list[int] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)  # learning rates of hyperparameter events
    errors: list[str] = field(default_factory=list)
    ws: ClientConnection | None = None

    async def run(self, ws: ClientConnection) -> None:
        self.ws = ws
        try:
            while True:
                self.take(await ws.recv(decode=False))
        except ConnectionClosedOK:
            pass
        except Exception as exc:
            self.errors.append(repr(exc))

    def take(self, data: bytes) -> None:
        self.frames += 1
        if data.startswith(b'{"type":"metrics"'):
            self.metrics += 1
            self.metric_times.append(time.monotonic())
            return
        if data.startswith(b'{"type":"snapshot"'):
            self.snapshots += 1
            return
        frame = orjson.loads(data)
        kind = frame.get("type")
        if kind == "hello":
            self.hello = True
        elif kind == "status":
            self.statuses.append(frame["session"]["status"])
            self.status_steps.append(frame["session"]["step"])
        elif kind == "event" and frame["event"]["type"] == "hyperparameters":
            change = frame["event"]["changes"].get("learning_rate")
            if change is not None:
                self.rates.append(change["new"])

    def rate(self, start: float, end: float) -> float:
        return sum(start <= t < end for t in self.metric_times) / max(end - start, 1e-9)


def ws_connect(server: LiveServer, session_id: str) -> Any:
    return connect(
        f"{server.ws_url}/ws/sessions/{session_id}",
        max_size=None,
        compression=None,
        proxy=None,
        open_timeout=60,
    )


# ---- the stalled client -------------------------------------------------------------------------


@dataclass
class Stall:
    started: float = 0.0
    ended: float = 0.0
    rss_start: float = 0.0
    rss_peak: float = 0.0
    queued_peak: int = 0
    states: list[tuple[float, str]] = field(default_factory=list)  # (seconds, state) changes
    drained: int = 0
    eof: bool = False
    close: tuple[int, str] | None = None


async def run_stall(
    server: LiveServer, session_id: str, seconds: float, pid: int, stall: Stall
) -> None:
    """Connect the stalled client, watch the server's side of it for `seconds`, then read it."""
    sock = await asyncio.to_thread(stalled_websocket, server.port, session_id)
    port = sock.getsockname()[1]
    stall.started = time.monotonic()
    stall.rss_start = stall.rss_peak = rss_mb(pid)
    last = None
    while time.monotonic() - stall.started < seconds:
        tcp = server_side_tcp(server.port, port)
        state = tcp[0] if tcp is not None else "closed"
        if state != last:
            stall.states.append((time.monotonic() - stall.started, state))
            last = state
        if tcp is not None:
            stall.queued_peak = max(stall.queued_peak, tcp[1])
        stall.rss_peak = max(stall.rss_peak, rss_mb(pid))
        await asyncio.sleep(0.25)
    stall.ended = time.monotonic()
    stall.drained, stall.eof, stall.close = await asyncio.to_thread(drain, sock, 5.0)
    sock.close()


# ---- the run ------------------------------------------------------------------------------------


async def run(args: argparse.Namespace, server: LiveServer) -> dict[str, Any]:
    pid = server.proc.pid if server.proc else 0
    out: dict[str, Any] = {"rss_start": rss_mb(pid)}
    async with httpx.AsyncClient(base_url=server.url, timeout=120.0, trust_env=False) as http:
        ids = []
        for i in range(SESSIONS):
            answer = await http.post("/api/sessions", json={"config": NET, "name": f"load {i}"})
            answer.raise_for_status()
            ids.append(answer.json()["id"])
        training = ids[:TRAINING]
        # The first session keeps a place for the stalled client (32 clients at most each).
        counts = [args.clients - (1 if i == 0 and args.stall_seconds > 0 else 0) for i in range(4)]
        readers = [Reader(sid) for sid, n in zip(training, counts, strict=True) for _ in range(n)]
        async with contextlib.AsyncExitStack() as stack:
            limit = asyncio.Semaphore(16)

            async def open_one(reader: Reader) -> ClientConnection:
                async with limit:
                    return await stack.enter_async_context(ws_connect(server, reader.session_id))

            sockets = await asyncio.gather(*(open_one(r) for r in readers))
            tasks = [asyncio.create_task(r.run(ws)) for r, ws in zip(readers, sockets, strict=True)]
            while not all(r.hello for r in readers):
                await asyncio.sleep(0.05)
            out["rss_connected"] = rss_peak = rss_mb(pid)

            context = multiprocessing.get_context("spawn")
            stop, results = context.Event(), context.Queue()
            prober = context.Process(target=probe_health, args=(server.url, stop, results))
            prober.start()
            await asyncio.sleep(1.0)  # the prober is up

            for sid in training:
                (await http.post(f"/api/sessions/{sid}/start")).raise_for_status()
            began = time.monotonic()
            cpu_began = (cpu_seconds(pid), time.process_time())
            sent: dict[str, list[float]] = {sid: [] for sid in training}
            stall = Stall()
            stall_task = None
            next_patch = began + args.seconds / 6
            round_ = 0
            while time.monotonic() - began < args.seconds:
                now = time.monotonic()
                if stall_task is None and args.stall_seconds > 0 and now - began >= STALL_AFTER:
                    stall_task = asyncio.create_task(
                        run_stall(server, training[0], args.stall_seconds, pid, stall)
                    )
                if now >= next_patch:
                    round_ += 1
                    for index, sid in enumerate(training):
                        rate = round(0.01 * round_ + 0.001 * index, 6)
                        answer = await http.patch(
                            f"/api/sessions/{sid}", json={"learning_rate": rate}
                        )
                        answer.raise_for_status()
                        sent[sid].append(rate)
                    next_patch += args.seconds / 6
                rss_peak = max(rss_peak, rss_mb(pid))
                await asyncio.sleep(0.5)
            trained = time.monotonic() - began
            cpu = (cpu_seconds(pid) - cpu_began[0], time.process_time() - cpu_began[1])
            if stall_task is not None:
                await stall_task  # a stall longer than the run ends here
            stopped = {}
            for sid in training:
                answer = await http.post(f"/api/sessions/{sid}/stop")
                answer.raise_for_status()
                stopped[sid] = answer.json()["step"]
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not all(
                r.statuses and r.statuses[-1] == "paused" for r in readers
            ):
                await asyncio.sleep(0.1)
            stop.set()
            latencies, failures = await asyncio.to_thread(results.get, True, 60)
            prober.join(10)
            out["rss_peak"] = max(rss_peak, rss_mb(pid))
            for reader in readers:
                if reader.ws is not None:
                    await reader.ws.close()
            await asyncio.gather(*tasks, return_exceptions=True)
        out["rss_end"] = rss_mb(pid)
        steps = [(await http.get(f"/api/sessions/{sid}")).json()["step"] for sid in training]
    out.update(
        readers=readers,
        sent=sent,
        stopped=stopped,
        trained=trained,
        began=began,
        latencies=latencies,
        failures=failures,
        stall=stall if args.stall_seconds > 0 else None,
        steps=steps,
        cpu=cpu,
    )
    return out


def report(args: argparse.Namespace, out: dict[str, Any]) -> None:
    readers: list[Reader] = out["readers"]
    latencies: list[float] = out["latencies"]
    trained = out["trained"]
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    ms = 1000
    print(
        f"load: {SESSIONS} sessions, {TRAINING} training at once, {len(readers)} reading "
        f"WebSocket clients{' (+1 stalled)' if out['stall'] else ''} for {trained:.1f} s; "
        f"steps reached {out['steps']}"
    )
    server_cpu, client_cpu = out["cpu"]
    print(
        f"CPU while training: server {server_cpu / trained:.2f} cores, these clients "
        f"{client_cpu / trained:.2f} cores, of {os.cpu_count()} cores"
    )
    verdict = "OK" if p99 < 0.1 else "ABOVE TARGET"
    print(
        f"GET /api/health: n={len(latencies)} p50={p50 * ms:.1f} ms p99={p99 * ms:.1f} ms "
        f"max={max(latencies, default=0) * ms:.1f} ms failures={len(out['failures'])} "
        f"(target p99 < 100 ms: {verdict})"
    )
    print(
        f"server RSS: start {out['rss_start']:.1f} MB, clients connected "
        f"{out['rss_connected']:.1f} MB, peak {out['rss_peak']:.1f} MB, end "
        f"{out['rss_end']:.1f} MB (growth {out['rss_end'] - out['rss_start']:+.1f} MB)"
    )
    for name, values in (
        ("frames", [r.frames for r in readers]),
        ("metrics", [r.metrics for r in readers]),
        ("snapshots", [r.snapshots for r in readers]),
    ):
        print(
            f"  {name} per client: min {min(values)}, median {statistics.median(values):.0f}, "
            f"max {max(values)} (median {statistics.median(values) / trained:.1f}/s)"
        )
    lost = []
    for i, reader in enumerate(readers):
        expected = out["sent"][reader.session_id]
        if reader.rates != expected:
            lost.append(f"client {i}: hyperparameter events {reader.rates} != sent {expected}")
        if reader.statuses != ["running", "paused"]:
            lost.append(f"client {i}: status frames {reader.statuses}")
        elif reader.status_steps[-1] != out["stopped"][reader.session_id]:
            lost.append(f"client {i}: final status step {reader.status_steps[-1]}")
        if reader.errors:
            lost.append(f"client {i}: {reader.errors[:2]}")
    events = sum(len(v) for v in out["sent"].values())
    print(
        f"status/event frames: {events} hyperparameter events and 2 status frames per session "
        f"expected by every client; lost or wrong: {len(lost)}"
    )
    for line in lost[:20]:
        print("  " + line)
    stall: Stall | None = out["stall"]
    if stall is None:
        return
    before = [r.rate(out["began"] + 2.0, stall.started) for r in readers]
    during = [r.rate(stall.started + 3.0, stall.ended) for r in readers]
    growth = stall.rss_peak - stall.rss_start
    print(
        f"stalled client ({args.stall_seconds:g} s, session {readers[0].session_id}): server RSS "
        f"{stall.rss_start:.1f} -> peak {stall.rss_peak:.1f} MB (growth {growth:+.1f} MB, target "
        f"< 50 MB: {'OK' if growth < 50 else 'ABOVE TARGET'}); kernel send queue up to "
        f"{stall.queued_peak / 1e6:.2f} MB"
    )
    states = ", ".join(f"{state} at {at:.1f} s" for at, state in stall.states)
    dropped = any(state != "ESTABLISHED" for _, state in stall.states)
    print(f"  server side of its socket: {states} -> dropped: {'yes' if dropped else 'NO'}")
    print(
        f"  reading it afterwards: {stall.drained / 1e6:.2f} MB, EOF {stall.eof}, close frame "
        f"{stall.close if stall.close else 'none'}"
    )
    print(
        f"  other clients' metrics/s: before the stall median {statistics.median(before):.1f} "
        f"(min {min(before):.1f}), during median {statistics.median(during):.1f} "
        f"(min {min(during):.1f})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="training time (default 60)")
    parser.add_argument(
        "--clients", type=int, default=32, help="WebSocket clients per training session (32)"
    )
    parser.add_argument(
        "--stall-seconds",
        type=float,
        default=30.0,
        help="how long the stalled client stays unread (default 30; 0 = none)",
    )
    args = parser.parse_args()
    if not 1 <= args.clients <= 32:
        parser.error(
            f"--clients: expected 1..32 (the server's limit per session), got {args.clients}"
        )
    if args.stall_seconds > 0 and args.seconds < STALL_AFTER + 1:
        parser.error(f"--seconds: at least {STALL_AFTER + 1:g} with a stalled client")
    with tempfile.TemporaryDirectory(prefix="bl-load-") as tmp:
        server = LiveServer(Path(tmp) / "data", ["--max-training", str(TRAINING)]).start()
        try:
            out = asyncio.run(run(args, server))
        finally:
            server.stop()
    report(args, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
