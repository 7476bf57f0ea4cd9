"""Backprop Lens from your own scripts.

`backprop_lens.Client` drives a Backprop Lens server over its REST API and WebSocket: create
sessions, train them to exact numbers, read their history, watch their frames, change
hyperparameters, move weights and upload data (backprop_lens/client.py). Errors raise the
typed exceptions of backprop_lens/errors.py. `backprop_lens.torch.watch(model, optimizer,
url=...)` streams the per-layer gradient statistics of a PyTorch training run to a server, which
shows it as an "external" session on the same page as the engine's runs. Importing this package
imports neither torch nor the server.
"""

from backprop_lens.client import Client, Session, Stream
from backprop_lens.errors import ApiError, CapacityExceeded, ConfigError, Conflict, NotFound
from backprop_lens.results import (
    Evaluation,
    History,
    RunMetrics,
    Score,
    SweepResult,
    TrainResult,
    UploadInfo,
)

__all__: list[str] = [
    "ApiError",
    "CapacityExceeded",
    "Client",
    "ConfigError",
    "Conflict",
    "Evaluation",
    "History",
    "NotFound",
    "RunMetrics",
    "Score",
    "Session",
    "Stream",
    "SweepResult",
    "TrainResult",
    "UploadInfo",
]
