"""GET /api/health: is the server up, which version is it, and how many runs may train at once."""

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from server import __version__

router = APIRouter(tags=["health"])


class Health(BaseModel):
    """The answer of GET /api/health."""

    status: str = Field(description="always 'ok' when the server answers")
    version: str = Field(description="the package version")
    max_training: int = Field(description="sessions that may train at once (--max-training)")


@router.get("/health", response_model=Health, summary="Liveness, version and training capacity")
def health(request: Request) -> Health:
    """Answer at once; never touches a training session."""
    settings = getattr(request.app.state, "settings", None)
    return Health(
        status="ok", version=__version__, max_training=getattr(settings, "max_training", 1)
    )
