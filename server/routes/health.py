"""GET /api/health: is the server up, and which version is it."""

from fastapi import APIRouter
from pydantic import BaseModel

from server import __version__

router = APIRouter(tags=["health"])


class Health(BaseModel):
    """The answer of GET /api/health."""

    status: str
    version: str


@router.get("/health", response_model=Health, summary="Liveness and version")
def health() -> Health:
    """Answer at once; never touches a training session."""
    return Health(status="ok", version=__version__)
