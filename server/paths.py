"""Where the server finds its static files, templates and default data directory."""

from __future__ import annotations

import os
import sys
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def _asset_dir(name: str) -> Path:
    """An installed wheel carries `name` inside the package; a source tree keeps it at the top."""
    for candidate in (_PACKAGE_DIR / name, _PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"cannot find the '{name}' directory next to {_PACKAGE_DIR}")


def static_dir() -> Path:
    """The directory served under /static."""
    return _asset_dir("static")


def templates_dir() -> Path:
    """The Jinja2 templates directory."""
    return _asset_dir("templates")


def default_data_dir() -> Path:
    """The platform's user data directory, e.g. ~/.local/share/backprop-lens on Linux."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
    return base / "backprop-lens"
