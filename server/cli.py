"""Command line: `backprop-lens [--host H] [--port P] [--data-dir D] [--open]`."""

from __future__ import annotations

import argparse
import threading
import webbrowser
from pathlib import Path

import uvicorn

from server.app import ServerSettings, create_app
from server.paths import default_data_dir


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
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, build the app and serve it until Ctrl-C."""
    args = build_parser().parse_args(argv)
    settings = ServerSettings(host=args.host, port=args.port, data_dir=args.data_dir)
    app = create_app(settings)
    url = f"http://{'[' + args.host + ']' if ':' in args.host else args.host}:{args.port}/"
    print(f"Backprop Lens is serving on {url}", flush=True)
    if args.open:
        threading.Timer(1.0, lambda: webbrowser.open(url)).start()
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        ws_per_message_deflate=False,
    )
    return 0
