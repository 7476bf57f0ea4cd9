"""One APIRouter per resource, gathered by `api_router`."""

from fastapi import APIRouter

from server.routes import health

api_router = APIRouter(prefix="/api")
api_router.include_router(health.router)
