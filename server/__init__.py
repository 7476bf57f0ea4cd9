"""Backprop Lens server: FastAPI app, training sessions, live streaming and persistence."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("backprop-lens")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
