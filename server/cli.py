"""Command line: `backprop-lens [--host H] [--port P] [--data-dir D] [--open] [--max-training N]
[--frame-rate F] [--ws IMPL] [--ws-per-message-deflate] [--header-timeout S]
[--max-connections N] [--memory-budget SIZE] [--unload-after S] [--upload-quota SIZE]
[--log-level L]`.

The data directory is opened here, before serving, so a directory locked by another server, not
writable or holding a damaged database ends the command with one clear line and exit code 2.
uvicorn serves the app behind the connection guard (server/connections.py) and logs through
the token filter (server/log_redact.py).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import webbrowser
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from server.app import ServerSettings, create_app
from server.connections import HEADER_TIMEOUT, MAX_CONNECTIONS, ConnectionGuard
from server.limits import MAX_WS_FRAME_BYTES, UPLOAD_QUOTA_BYTES
from server.log_redact import log_config
from server.memory import DEFAULT_BUDGET_FRACTION, parse_bytes
from server.paths import default_data_dir
from server.security import SecurityConfigError, SecuritySettings
from server.sessions import UNLOAD_AFTER
from server.store import Store, StoreError

EXIT_USAGE = 2
# uvicorn's WebSocket implementations; "auto" is websockets-sansio when websockets is installed.
WS_IMPLEMENTATIONS = ("auto", "websockets-sansio", "websockets", "wsproto")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return value


def _size(text: str) -> int:
    try:
        return parse_bytes(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _seconds_or_never(text: str) -> float | None:
    if text.strip().lower() == "never":
        return None
    return _positive_float(text)


def build_parser() -> argparse.ArgumentParser:
    """The CLI's arguments; `make run ARGS='--port 9000'` passes flags through."""
    parser = argparse.ArgumentParser(
        prog="backprop-lens", description="Watch a neural network learn, in your browser."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to serve on (default 8000)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help=f"where runs are stored (default {default_data_dir()})",
    )
    parser.add_argument("--open", action="store_true", help="open a browser tab once serving")
    parser.add_argument(
        "--max-training",
        type=_positive_int,
        default=os.cpu_count() or 1,
        help="sessions that may train at once; more answer 429 (default: CPU count)",
    )
    parser.add_argument(
        "--frame-rate",
        type=_positive_float,
        default=30.0,
        help="most metrics frames per second per WebSocket client (default 30)",
    )
    parser.add_argument(
        "--ws",
        choices=WS_IMPLEMENTATIONS,
        default="auto",
        help="uvicorn's WebSocket implementation (default auto: websockets-sansio)",
    )
    parser.add_argument(
        "--ws-per-message-deflate",
        action="store_true",
        help="compress WebSocket frames when the browser offers it (default off: costs CPU)",
    )
    parser.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="another host name or address this server answers to (repeatable)",
    )
    parser.add_argument(
        "--token",
        default=None,
        help="access token to require (default: a random one when --host is not loopback)",
    )
    parser.add_argument(
        "--header-timeout",
        type=_positive_float,
        default=HEADER_TIMEOUT,
        metavar="SECONDS",
        help=f"close a connection whose request head takes longer (default {HEADER_TIMEOUT:g})",
    )
    parser.add_argument(
        "--max-connections",
        type=_positive_int,
        default=MAX_CONNECTIONS,
        metavar="N",
        help=f"open connections at most; more are refused (default {MAX_CONNECTIONS})",
    )
    parser.add_argument(
        "--memory-budget",
        type=_size,
        default=None,
        metavar="SIZE",
        help="memory the loaded sessions may hold together, by engine/cost.py's estimate, e.g. "
        f"4GiB; past it creating, starting or loading one answers 507 (default "
        f"{DEFAULT_BUDGET_FRACTION * 100:.0f}%% of the machine's memory)",  # argparse: %% is %
    )
    parser.add_argument(
        "--unload-after",
        type=_seconds_or_never,
        default=UNLOAD_AFTER,
        metavar="SECONDS",
        help="unload a session not training after this many idle seconds; it is rebuilt from "
        f"the store when used ('never' keeps them; default {UNLOAD_AFTER:g})",
    )
    parser.add_argument(
        "--upload-quota",
        type=_size,
        default=UPLOAD_QUOTA_BYTES,
        metavar="SIZE",
        help="what the stored uploads may take, decompressed; past it an upload answers 507 "
        f"(default {UPLOAD_QUOTA_BYTES // 2**20} MiB)",
    )
    parser.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, open the data directory, build the app and serve it until Ctrl-C."""
    args = build_parser().parse_args(argv)
    try:
        security = SecuritySettings.for_bind(args.host, args.port, args.allowed_host, args.token)
    except SecurityConfigError as exc:
        print(f"backprop-lens: error: {exc}", file=sys.stderr, flush=True)
        return EXIT_USAGE
    settings = ServerSettings(
        host=args.host,
        port=args.port,
        data_dir=args.data_dir,
        max_training=args.max_training,
        frame_rate=args.frame_rate,
        security=security,
        memory_budget=args.memory_budget,
        unload_after=args.unload_after,
        upload_quota=args.upload_quota,
    )
    try:
        store = Store(settings.resolved_data_dir())
    except StoreError as exc:  # includes StoreLockedError
        print(f"backprop-lens: error: {exc}", file=sys.stderr, flush=True)
        return EXIT_USAGE
    app = create_app(settings, store=store)
    url = security.url()  # carries ?token=... when one is required: printed once, here
    print(f"Backprop Lens is serving on {url}", flush=True)
    if args.open:
        threading.Timer(1.0, lambda: webbrowser.open(url)).start()
    guard = ConnectionGuard(args.header_timeout, args.max_connections)
    # The guard finds a request's connection by scope["client"], which X-Forwarded-For would
    # change before the guard saw it: the proxy headers apply inside it (as uvicorn would).
    trusted = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")  # uvicorn's default
    uvicorn.run(
        guard.wrap(ProxyHeadersMiddleware(app, trusted_hosts=trusted)),
        **uvicorn_options(args),
        http=guard.protocol(),  # uvicorn's own HTTP protocol, with a deadline for request heads
        proxy_headers=False,
        log_config=log_config(security.token),  # ?token= never reaches the access log
    )
    return 0


def uvicorn_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments for uvicorn.run / uvicorn.Config that the command line asks for
    (the tests' in-process servers use them too)."""
    return {
        "host": args.host,
        "port": args.port,
        "log_level": args.log_level,
        "ws": args.ws,
        # Off unless asked: compressing every frame costs the event loop more CPU than anything
        # else in streaming (docs/performance.md), and the frames are small.
        "ws_per_message_deflate": args.ws_per_message_deflate,
        "ws_max_size": MAX_WS_FRAME_BYTES,  # larger client messages close the socket (1009)
        "timeout_graceful_shutdown": 5,
    }
