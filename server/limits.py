"""Input limits of the server, in one place so every module imports the same numbers.

The security middleware (server/security.py) enforces the request-body limits before a route
runs; the routes, the WebSocket hub and the session manager import the others. Every refusal
names the limit it hit, e.g. "request body is larger than the 1 MiB limit for JSON", so the
helpers here format sizes the same way everywhere.
"""

from __future__ import annotations

from engine.cost import MAX_GRID_RESOLUTION

KiB = 1024
MiB = 1024 * KiB

# ---- HTTP request bodies (enforced by server.security while the body streams in)
MAX_JSON_BYTES = 1 * MiB  # any request body outside the upload paths (JSON in practice)
MAX_UPLOAD_BYTES = 10 * MiB  # the uploaded file of POST /api/datasets/upload
# Room for the multipart framing around the file (boundaries, part headers, the "target" field),
# so a file of exactly MAX_UPLOAD_BYTES is accepted; the route checks the file itself.
MULTIPART_OVERHEAD_BYTES = 64 * KiB
MAX_UPLOAD_REQUEST_BYTES = MAX_UPLOAD_BYTES + MULTIPART_OVERHEAD_BYTES
UPLOAD_PATHS = frozenset({"/api/datasets/upload"})  # request paths that take MAX_UPLOAD_BYTES
# Stored uploads together, counted decompressed (an NPZ's arrays as stored, not the zip sent);
# past it POST /api/datasets/upload answers 507 "upload_quota" (--upload-quota changes it).
UPLOAD_QUOTA_BYTES = 1024 * MiB

# ---- WebSocket
MAX_WS_MESSAGE_BYTES = 64 * KiB  # a client command; larger ones get an {"type": "error"} frame
# Hard cap on one incoming WebSocket message: larger ones close the socket with 1009 (uvicorn's
# ws_max_size should be set to this too, so the frame is never buffered whole).
MAX_WS_FRAME_BYTES = 1 * MiB
MAX_WS_CLIENTS_PER_SESSION = 32  # WebSocket clients watching one session; more are closed 1008

# ---- sessions and requests on them
MAX_SESSIONS = 200  # stored sessions; creating more answers 409 naming this limit
DEFAULT_LIST_LIMIT = 100  # GET /api/sessions: sessions per page unless ?limit= says otherwise
MAX_LIST_LIMIT = 1000  # GET /api/sessions?limit=N
MAX_STEPS_PER_REQUEST = 100_000  # POST /step {"steps": n} and the WebSocket "step" command
MAX_PACE = 100_000.0  # steps per second a paced run may ask for; above it, full speed is the same
MAX_BOUNDARY_RESOLUTION = MAX_GRID_RESOLUTION  # GET /boundary?resolution=N (the engine's bound)
MAX_DATA_POINTS = 100_000  # GET /data?limit=N, per split
MAX_METRICS_ROWS = 1_000_000  # GET /metrics?limit=N
# POST /trace and /predict are bounded by MAX_JSON_BYTES (about 100,000 numbers).

# ---- answers (estimated from the network's size before anything is computed)
# Numbers in one JSON answer of POST /trace or GET /weights (about 20 MB of JSON); past it they
# answer 413 naming this limit. GET /boundary thins its neuron maps instead, to
# BOUNDARY_NEURON_VALUES: with at most 200 x 200 points for the output, seven input features
# and twenty class maps (1,120,000 numbers) the whole answer stays under MAX_ANSWER_VALUES.
MAX_ANSWER_VALUES = 2_000_000
BOUNDARY_NEURON_VALUES = 800_000


def format_bytes(size: int) -> str:
    """A byte count as people write limits: 1048576 -> "1 MiB", 65536 -> "64 KiB", 1000 -> "1000 bytes"."""
    if size >= MiB and size % MiB == 0:
        return f"{size // MiB} MiB"
    if size >= KiB and size % KiB == 0:
        return f"{size // KiB} KiB"
    if size >= MiB:
        return f"{size / MiB:.1f} MiB"
    return f"{size} bytes"


def too_large_message(limit: int, what: str) -> str:
    """The 413 detail, e.g. "request body is larger than the 1 MiB limit for JSON"."""
    return f"request body is larger than the {format_bytes(limit)} limit for {what}"
