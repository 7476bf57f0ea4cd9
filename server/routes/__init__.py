"""One APIRouter per resource: the REST ones gathered by `api_router` (under /api), the
WebSocket stream and the ingest socket of watched scripts by `ws_router`, the API's documentation
pages (/docs, /redoc) by `docs_router`."""

from fastapi import APIRouter

from server.routes import (
    config_schema,
    datasets,
    docs,
    health,
    ingest,
    inspect,
    memory,
    sessions,
    stream,
    ws,
)

api_router = APIRouter(prefix="/api")
api_router.include_router(health.router)
api_router.include_router(memory.router)
api_router.include_router(datasets.router)
api_router.include_router(sessions.router)
api_router.include_router(inspect.router)
api_router.include_router(config_schema.router)
api_router.include_router(stream.router)

ws_router = APIRouter()
ws_router.include_router(ws.router)
ws_router.include_router(ingest.router)

docs_router = docs.router
DOCS_PATHS = docs.DOCS_PATHS
API_DESCRIPTION = stream.API_DESCRIPTION
OPENAPI_TAGS = [stream.STREAM_TAG]
