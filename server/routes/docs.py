"""GET /docs (Swagger UI) and GET /redoc (ReDoc) from files vendored under static/vendor/.

FastAPI's own pages load both from a CDN, so they are blank offline or behind a proxy; the app
turns them off (docs_url=None, redoc_url=None) and serves these instead, built with FastAPI's
public page builders pointed at /static. The pages still run one inline script and ReDoc
injects styles and starts a blob: worker, so these paths alone get `DOCS_CSP`
(server/guards/headers.py), which names no host but this one.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)

SWAGGER_PATH = "/docs"
REDOC_PATH = "/redoc"
DOCS_PATHS = (SWAGGER_PATH, REDOC_PATH)  # the paths that get the docs' security policy

VENDOR = "/static/vendor"
FAVICON = f"{VENDOR}/swagger-ui/favicon-32x32.png"


@router.get(SWAGGER_PATH, response_class=HTMLResponse)
def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI on the app's OpenAPI document, every file from this server."""
    return get_swagger_ui_html(
        openapi_url=request.app.openapi_url,
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=f"{VENDOR}/swagger-ui/swagger-ui-bundle.js",
        swagger_css_url=f"{VENDOR}/swagger-ui/swagger-ui.css",
        swagger_favicon_url=FAVICON,
        # null: no badge fetched from validator.swagger.io (nothing leaves this machine)
        swagger_ui_parameters={"validatorUrl": None},
    )


@router.get(REDOC_PATH, response_class=HTMLResponse)
def redoc(request: Request) -> HTMLResponse:
    """ReDoc on the app's OpenAPI document, every file from this server (no Google Fonts)."""
    return get_redoc_html(
        openapi_url=request.app.openapi_url,
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=f"{VENDOR}/redoc/redoc.standalone.js",
        redoc_favicon_url=FAVICON,
        with_google_fonts=False,
    )
