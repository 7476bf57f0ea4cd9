"""Streaming benchmark: what serving and streaming cost the training loop.

For the 2-8-8-1 tanh and the 2-64-64-64-1 relu networks (spiral data, batch 10) it measures
training steps per second

  (a) the engine alone: Trainer.train in this process, with a no-op on_report (the reports,
      evaluations and layer statistics a watcher needs are part of the engine's work);
  (b) inside the server with nobody watching (a real `python -m server` subprocess);
  (c) the same with 20 WebSocket clients (in this process, so a separate one from the server)
      each receiving up to 30 metrics frames a second plus snapshots;

and prints the ratios (c)/(b) and (b)/(a), paired per round (windows in the order (a) b c c b, (a) last in every other round), as the
geometric mean of the rounds' ratios with a 90 % bootstrap interval: this VM's speed swings by
+-30 % from one half-second to the next even when idle (4,200 to 8,700 steps/s for the same
server and net), so many short paired windows measure the cost of streaming better than a few
long ones. It also prints the server's CPU split (training thread,
event loop, other threads), the step-to-client latency of metrics frames (p50/p99:
the server stamps each frame with its CLOCK_MONOTONIC time "t", the clients compare with theirs on
the same machine) and the server's RSS growth over a long run with the clients connected (a short
run by default, --long for 1,000,000 steps).

Targets: (c)/(b) >= 0.92, (b)/(a) >= 0.9, p99 <= 100 ms, RSS growth < 50 MB.
Run: `.venv/bin/python bench/stream.py [--seconds 2] [--rounds 10] [--clients 20] [--long]`.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import websockets

# One BLAS thread in this process and in the server (which inherits the environment), as in
# bench/engine.py: OpenBLAS worker threads spin-wait and, on a 2-core machine, compete with the
# WebSocket clients for the second core. --threads N raises it.
_threads = sys.argv[sys.argv.index("--threads") + 1] if "--threads" in sys.argv else "1"
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = _threads

ROOT = Path(__file__).resolve().parent.parent
_HERE = Path(__file__).resolve().parent  # bench/engine.py would shadow the engine package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(ROOT))

from engine.trainer import Trainer  # noqa: E402

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
TARGETS = {"c/b": 0.92, "b/a": 0.90, "p99_ms": 100.0, "rss_mb": 50.0}
BOOTSTRAP_SAMPLES = 2000


# ----------------------------------------------------------------------------- engine alone


def engine_steps_per_second(config: dict[str, Any], seconds: float, reports: bool = True) -> float:
    """Trainer.train in this thread for `seconds` (after a short warm-up)."""
    trainer = Trainer(config)
    trainer.train(steps=200, on_report=(lambda r: None) if reports else None)
    deadline = time.perf_counter() + seconds
    start_step, started = trainer.step, time.perf_counter()
    trainer.train(
        on_report=(lambda r: None) if reports else None,
        should_stop=lambda: time.perf_counter() >= deadline,
    )
    return (trainer.step - start_step) / (time.perf_counter() - started)


# ----------------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """`python -m server` in a subprocess on a temporary data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "server",
                "--port",
                str(self.port),
                "--data-dir",
                str(data_dir),
                "--log-level",
                "warning",
                "--max-training",
                "4",
            ],
            cwd=ROOT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/api/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("the server did not start")

    def rss_mb(self) -> float:
        """Resident set size of the server process (Linux /proc)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


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


def server_step(http: httpx.Client, sid: str) -> int:
    return int(http.get(f"/api/sessions/{sid}").json()["step"])


@dataclass
class Window:
    """One measurement window of a running session."""

    steps_per_second: float
    loop_cpu: float  # share of one core used by the server's main thread (the event loop)
    train_cpu: float  # ... by its busiest other thread (the training thread)
    other_cpu: float  # ... by the rest of its threads


def measure_window(server: Server, http: httpx.Client, sid: str, seconds: float) -> Window:
    """Steps per second of a running session over `seconds`, and where the CPU went."""
    pid = server.proc.pid
    cpu0, step0, t0 = thread_cpu(pid), server_step(http, sid), time.monotonic()
    time.sleep(seconds)
    cpu1, step1, t1 = thread_cpu(pid), server_step(http, sid), time.monotonic()
    used = {tid: cpu1[tid] - cpu0.get(tid, 0.0) for tid in cpu1}
    wall = t1 - t0
    loop = used.pop(pid, 0.0)
    train = max(used.values(), default=0.0)
    rest = sum(used.values()) - train
    return Window((step1 - step0) / wall, loop / wall, train / wall, rest / wall)


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
    _stop: threading.Event = field(default_factory=threading.Event)
    _ready: threading.Barrier | None = None
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._ready = threading.Barrier(2)
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self._thread.start()
        self._ready.wait(30)

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


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def bench_net(
    name: str, config: dict[str, Any], seconds: float, clients: int, rounds: int
) -> dict[str, Any]:
    """Rounds of windows in the order (a) b c c b (a at the end of every other round instead),
    so a machine whose speed drifts within a round biases no ratio; each round's (b) and (c)
    are the means of its two windows."""
    a_runs: list[float] = []
    bare_runs: list[float] = []
    b_runs: list[Window] = []
    c_runs: list[Window] = []
    b_rates: list[float] = []  # per round
    c_rates: list[float] = []  # per round
    latencies: list[float] = []
    frames = snaps = 0
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp) / "data")
        try:
            with httpx.Client(base_url=server.url, timeout=30) as http:
                sid = http.post("/api/sessions", json={"config": config}).json()["id"]
                ws_url = f"ws://127.0.0.1:{server.port}/ws/sessions/{sid}"
                for round_ in range(rounds):
                    a_first = round_ % 2 == 0
                    if a_first:
                        a_runs.append(engine_steps_per_second(config, seconds))
                    http.post(f"/api/sessions/{sid}/start").raise_for_status()
                    time.sleep(0.5)  # warm-up
                    windows_b = [measure_window(server, http, sid, seconds)]
                    watchers = Watchers(ws_url, clients)
                    watchers.start()
                    time.sleep(0.5)  # the hello frames are out
                    watchers.recording = True
                    windows_c = [measure_window(server, http, sid, seconds) for _ in range(2)]
                    watchers.recording = False
                    latencies += watchers.latencies
                    frames += watchers.frames
                    snaps += watchers.snapshots
                    watchers.stop()
                    time.sleep(0.5)  # the clients are gone
                    windows_b.append(measure_window(server, http, sid, seconds))
                    http.post(f"/api/sessions/{sid}/stop").raise_for_status()
                    if not a_first:
                        a_runs.append(engine_steps_per_second(config, seconds))
                    bare_runs.append(engine_steps_per_second(config, seconds / 2, reports=False))
                    b_runs += windows_b
                    c_runs += windows_c
                    b_rates.append(statistics.fmean(w.steps_per_second for w in windows_b))
                    c_rates.append(statistics.fmean(w.steps_per_second for w in windows_c))
        finally:
            server.stop()
    per_client = len(latencies) / clients / (2 * seconds * rounds) if clients else 0.0
    return {
        # paired estimates: geometric mean over rounds of each round's own ratio, 90 % interval
        "c/b": paired_ratio(c_rates, b_rates),
        "b/a": paired_ratio(b_rates, a_runs),
        "a": statistics.median(a_runs),
        "a_bare": statistics.median(bare_runs),
        "b": statistics.median(b_rates),
        "c": statistics.median(c_rates),
        "b_cpu": tuple(statistics.median(getattr(w, k) for w in b_runs) for k in _CPU),
        "c_cpu": tuple(statistics.median(getattr(w, k) for w in c_runs) for k in _CPU),
        "runs": (a_runs, b_rates, c_rates),
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "frames_per_client_s": per_client,
        "snapshots": snaps,
    }


_CPU = ("train_cpu", "loop_cpu", "other_cpu")


def bench_memory(config: dict[str, Any], steps: int, clients: int) -> dict[str, float]:
    """Server RSS after warm-up and after `steps` more steps with `clients` watching."""
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp) / "data")
        try:
            with httpx.Client(base_url=server.url, timeout=30) as http:
                sid = http.post("/api/sessions", json={"config": config}).json()["id"]
                watchers = Watchers(f"ws://127.0.0.1:{server.port}/ws/sessions/{sid}", clients)
                watchers.start()
                http.post(f"/api/sessions/{sid}/start").raise_for_status()
                time.sleep(3.0)
                start_step, rss0 = server_step(http, sid), server.rss_mb()
                started = time.monotonic()
                peak = rss0
                while server_step(http, sid) < start_step + steps:
                    time.sleep(1.0)
                    peak = max(peak, server.rss_mb())
                elapsed = time.monotonic() - started
                rss1 = server.rss_mb()
                http.post(f"/api/sessions/{sid}/stop")
                watchers.stop()
        finally:
            server.stop()
    return {"rss0": rss0, "rss1": rss1, "peak": peak, "growth": rss1 - rss0, "seconds": elapsed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each window")
    parser.add_argument("--rounds", type=int, default=10, help="rounds of (a), (b), (c)")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--long", action="store_true", help="memory run of 1,000,000 steps")
    parser.add_argument("--memory-steps", type=int, default=100_000, help="memory run (default)")
    parser.add_argument("--net", choices=list(NETS), action="append", help="only these nets")
    parser.add_argument("--memory-only", action="store_true", help="skip the throughput part")
    parser.add_argument("--threads", default="1", help="BLAS threads, here and in the server")
    args = parser.parse_args(argv)

    print(
        f"Backprop Lens streaming bench: {os.cpu_count()} CPUs, {args.clients} clients, "
        f"{args.seconds:g} s windows x {args.rounds} rounds of (a) b c c b (rates: medians of rounds; "
        f"ratios: geometric mean of each round's ratio), {_threads} BLAS thread(s), "
        f"load average {os.getloadavg()[0]:.1f} before starting"
    )
    failed = False
    for name in [] if args.memory_only else args.net or list(NETS):
        r = bench_net(name, NETS[name], args.seconds, args.clients, args.rounds)
        (cb, cb_lo, cb_hi), (ba, ba_lo, ba_hi) = r["c/b"], r["b/a"]
        print(f"\n{name}")
        print(
            f"  (a) engine alone          {r['a']:10.0f} steps/s   (no reports: {r['a_bare']:.0f})"
        )
        print(f"  (b) server, no client     {r['b']:10.0f} steps/s")
        print(
            f"  (c) server, {args.clients} clients    {r['c']:10.0f} steps/s   "
            f"({r['frames_per_client_s']:.1f} metrics frames/s per client, "
            f"{r['snapshots'] / args.clients / (2 * args.seconds * args.rounds):.1f} snapshots/s)"
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
        runs = "; ".join(
            f"{label} " + " ".join(f"{x:.0f}" for x in values)
            for label, values in zip(("(a)", "(b)", "(c)"), r["runs"], strict=True)
        )
        print(f"  every round (steps/s): {runs}")
        for label, cpu in (("(b)", r["b_cpu"]), ("(c)", r["c_cpu"])):
            print(
                f"  server CPU {label}: training thread {cpu[0]:.0%}, event loop {cpu[1]:.0%}, "
                f"other threads {cpu[2]:.0%} of a core"
            )
        failed |= cb < TARGETS["c/b"] or ba < TARGETS["b/a"] or r["p99_ms"] > TARGETS["p99_ms"]

    steps = 1_000_000 if args.long else args.memory_steps
    name = "2-8-8-1 tanh"
    m = bench_memory(NETS[name], steps, args.clients)
    print(f"\nmemory: {name}, {steps:,} steps with {args.clients} clients in {m['seconds']:.0f} s")
    print(
        f"  server RSS {m['rss0']:.1f} MB -> {m['rss1']:.1f} MB (peak {m['peak']:.1f}): "
        f"growth {m['growth']:+.1f} MB (target < {TARGETS['rss_mb']:g} MB)"
    )
    failed |= m["growth"] >= TARGETS["rss_mb"]
    print("\nall targets met" if not failed else "\nsome targets missed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
