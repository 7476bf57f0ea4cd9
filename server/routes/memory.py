"""GET /api/memory: the server's memory budget and which sessions are loaded or only stored."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from server.deps import SessionsDep

router = APIRouter(tags=["health"])


class SessionMemory(BaseModel):
    """One stored session: in memory or only in the store."""

    id: str
    loaded: bool = Field(description="its trainer or history is in memory")
    training: bool = Field(description="it trains or steps right now")
    memory_bytes: int = Field(description="what it holds of the budget (engine/cost.py's estimate)")
    idle_seconds: float | None = Field(description="since its last use; null when not loaded")


class MemoryReport(BaseModel):
    """The answer of GET /api/memory."""

    budget_bytes: int = Field(
        description="what loaded sessions may hold together (--memory-budget)"
    )
    reserved_bytes: int = Field(description="what the loaded sessions hold now")
    unload_after: float | None = Field(
        description="seconds of idleness before a session is unloaded (--unload-after); null: never"
    )
    stored: int = Field(description="sessions in the store")
    loaded: int = Field(description="sessions in memory")
    sessions: list[SessionMemory] = Field(description="every stored session, newest first")


@router.get(
    "/memory", response_model=MemoryReport, summary="Memory budget, loaded and stored sessions"
)
def memory(sessions: SessionsDep) -> dict[str, Any]:
    """A session is loaded while its trainer (or history) is in memory; it is unloaded after
    --unload-after idle seconds, or earlier to make room in the budget, and rebuilt from the
    store when next used."""
    return sessions.memory_report()
