"""The FastAPI application: `create_app()` wires routers, static files, templates and lifespan.

The lifespan opens the Store (unless the CLI already did, to report a locked or read-only data
directory before serving), builds the SessionManager and the WebSocket Hub, and on exit stops
every training thread after its current step, checkpoints, writes the history and closes the
store.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from server import __version__
from server.deps import install_error_handlers
from server.hub import Hub
from server.limits import UPLOAD_QUOTA_BYTES
from server.paths import default_data_dir, static_dir, templates_dir
from server.routes import (
    API_DESCRIPTION,
    DOCS_PATHS,
    OPENAPI_TAGS,
    api_router,
    docs_router,
    ws_router,
)
from server.security import SecuritySettings, install_security
from server.sessions import UNLOAD_AFTER, SessionManager
from server.store import Store

log = logging.getLogger("backprop_lens")


def _default_max_training() -> int:
    return os.cpu_count() or 1


@dataclass
class ServerSettings:
    """How this server process was started."""

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path | None = None
    max_training: int = field(default_factory=_default_max_training)  # sessions training at once
    frame_rate: float = 30.0  # metrics frames per second per WebSocket client, at most
    security: SecuritySettings | None = None  # host/origin/token rules; default: loopback only
    memory_budget: int | None = None  # bytes loaded sessions may hold; None: half the memory
    unload_after: float | None = UNLOAD_AFTER  # idle seconds before unloading; None: never
    upload_quota: int = UPLOAD_QUOTA_BYTES  # bytes the stored uploads may take, decompressed

    def resolved_data_dir(self) -> Path:
        """The data directory, defaulting to the platform's user data directory."""
        return self.data_dir if self.data_dir is not None else default_data_dir()


def create_app(settings: ServerSettings | None = None, store: Store | None = None) -> FastAPI:
    """Build the app; start-up and shutdown live in the lifespan. `store` is closed on exit."""
    settings = settings or ServerSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        opened = store if store is not None else Store(settings.resolved_data_dir())
        hub = Hub(asyncio.get_running_loop(), frame_rate=settings.frame_rate)
        sessions = SessionManager(
            opened,
            settings.max_training,
            hub,
            memory_budget=settings.memory_budget,
            unload_after=settings.unload_after,
            upload_quota=settings.upload_quota,
        )
        app.state.settings = settings
        app.state.store = opened
        app.state.sessions = sessions
        app.state.hub = hub
        if sessions.interrupted:
            log.warning(
                "%d session(s) were training when the last server stopped; they are "
                "'interrupted' and resume from their checkpoint on start",
                len(sessions.interrupted),
            )
        try:
            yield
        finally:
            await hub.close_all()
            await run_in_threadpool(sessions.shutdown)
            opened.close()

    app = FastAPI(
        title="Backprop Lens",
        version=__version__,
        summary="Watch a neural network learn: live gradients, layer by layer.",
        description=API_DESCRIPTION,  # with the WebSocket, which OpenAPI cannot describe
        openapi_tags=OPENAPI_TAGS,
        lifespan=lifespan,
        # one RunConfig schema for requests and answers: the request form (which also takes
        # "init": "he") is what a client must send, and every answer fits it
        separate_input_output_schemas=False,
        # FastAPI's pages load Swagger UI and ReDoc from a CDN: server/routes/docs.py serves
        # the vendored copies instead, so the docs work offline.
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    install_security(
        app, settings.security or SecuritySettings(settings.host, settings.port), DOCS_PATHS
    )
    app.include_router(api_router)
    app.include_router(ws_router)
    app.include_router(docs_router)
    app.mount("/static", StaticFiles(directory=static_dir()), name="static")
    templates = Jinja2Templates(directory=str(templates_dir()))

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index(request: Request) -> HTMLResponse:
        return templates.TemplateResponse(request, "index.html", {"version": __version__})

    return app
