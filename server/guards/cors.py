"""CORS: other sites may read this server's answers only from the origins configured in
`SecuritySettings.cors_origins` (none by default: no Access-Control-Allow-* header is ever sent).

Starlette's CORSMiddleware answers preflights and adds Access-Control-Allow-Origin. `CorsGate`
hands it only the requests whose Origin is a configured one, so requests from any other origin
get no CORS headers at all and their preflights go on to the app, as they always have; and its
accepted preflights are answered 204 No Content, as this server always has, where Starlette
answers 200 with the text "OK".
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from server.guards.settings import TOKEN_HEADER, SecuritySettings, parse_origin

CORS_ALLOW_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
CORS_ALLOW_HEADERS = ("Content-Type", "Authorization", TOKEN_HEADER)
CORS_MAX_AGE = 600  # seconds a browser may cache a preflight's answer


class CorsGate:
    """Starlette's CORS handling for requests from a configured CORS origin; the rest pass by."""

    def __init__(self, app: ASGIApp, settings: SecuritySettings) -> None:
        self.app = app
        self.settings = settings
        self._cors = _NoContentPreflight(
            app,
            allow_origins=sorted(settings.cors_origin_texts),
            allow_methods=CORS_ALLOW_METHODS,
            allow_headers=CORS_ALLOW_HEADERS,
            max_age=CORS_MAX_AGE,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.settings.cors_origins:
            origin = Headers(scope=scope).get("origin")
            if origin is not None and self.settings.is_cors_origin(parse_origin(origin)):
                await self._cors(scope, receive, send)
                return
        await self.app(scope, receive, send)


class _NoContentPreflight(CORSMiddleware):
    """CORSMiddleware whose accepted preflights are 204 No Content (there is nothing to read)."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code != 200:
            return response
        headers = {
            name: value
            for name, value in response.headers.items()
            if name not in ("content-length", "content-type")
        }
        return Response(status_code=204, headers=headers)
