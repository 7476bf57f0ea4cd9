"""The FastAPI application: `create_app()` wires routers, static files, templates and lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from server import __version__
from server.paths import default_data_dir, static_dir, templates_dir
from server.routes import api_router


@dataclass
class ServerSettings:
    """How this server process was started."""

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path | None = None

    def resolved_data_dir(self) -> Path:
        """The data directory, defaulting to the platform's user data directory."""
        return self.data_dir if self.data_dir is not None else default_data_dir()


def create_app(settings: ServerSettings | None = None) -> FastAPI:
    """Build the app; start-up and shutdown live in the lifespan."""
    settings = settings or ServerSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        yield

    app = FastAPI(
        title="Backprop Lens",
        version=__version__,
        summary="Watch a neural network learn: live gradients, layer by layer.",
        lifespan=lifespan,
    )
    app.include_router(api_router)
    app.mount("/static", StaticFiles(directory=static_dir()), name="static")
    templates = Jinja2Templates(directory=str(templates_dir()))

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index(request: Request) -> HTMLResponse:
        return templates.TemplateResponse(request, "index.html", {"version": __version__})

    return app
