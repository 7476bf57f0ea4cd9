"""The access token, when one is configured (always when bound beyond loopback): header
`X-Backprop-Lens-Token`, `Authorization: Bearer`, query `?token=` or cookie `bl_token`, compared
in constant time. A valid `?token=` sets the cookie (HttpOnly, SameSite=Strict), so the page the
printed URL opens keeps working. Missing or wrong: 401 for HTTP, close 4401 for a WebSocket.

Starlette's AuthenticationMiddleware does not fit: it refuses a WebSocket by closing it with
1000 before accepting it, which a browser only sees as 1006, where this server accepts and
closes with 4401 so the page can tell the user; and it cannot set the cookie of a first visit.
"""

from __future__ import annotations

from starlette.datastructures import Headers, QueryParams
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.guards.answers import answer
from server.guards.settings import TOKEN_COOKIE, TOKEN_HEADER, TOKEN_QUERY, SecuritySettings

WS_CLOSE_UNAUTHORIZED = 4401  # application close code: token missing or wrong (like HTTP 401)


class TokenGuard:
    """Requires the token on every path outside `settings.public_paths`."""

    def __init__(self, app: ASGIApp, settings: SecuritySettings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        settings = self.settings
        if (
            scope["type"] not in ("http", "websocket")
            or not settings.token_required
            or scope.get("path", "") in settings.public_paths
        ):
            await self.app(scope, receive, send)
            return
        presented, valid, set_cookie = self._token_state(scope)
        if scope["type"] == "websocket":
            if valid:
                await self.app(scope, receive, send)
            else:
                await _close_unauthorized(receive, send, presented)
            return
        if not valid:
            await answer(
                scope,
                send,
                401,
                "unauthorized",
                _token_problem(presented),
                [(b"www-authenticate", b'Bearer realm="backprop-lens"')],
            )
            return
        if set_cookie and settings.token is not None:
            cookie = f"{TOKEN_COOKIE}={settings.token}; Path=/; HttpOnly; SameSite=Strict"
            await self.app(
                scope, receive, _with_header(send, b"set-cookie", cookie.encode("latin-1"))
            )
            return
        await self.app(scope, receive, send)

    def _token_state(self, scope: Scope) -> tuple[bool, bool, bool]:
        """(presented, valid, valid_query_without_cookie): where the request's token stands."""
        headers = Headers(scope=scope)
        candidates: list[str] = []
        header = headers.get(TOKEN_HEADER.lower())
        if header is not None:
            candidates.append(header.strip())
        authorization = headers.get("authorization")
        if authorization is not None:
            scheme, _, value = authorization.strip().partition(" ")
            if scheme.lower() == "bearer":
                candidates.append(value.strip())
        query = QueryParams(scope.get("query_string", b"")).getlist(TOKEN_QUERY)
        cookie_header = headers.get("cookie")  # the first one, as a browser sends one
        cookie = cookie_parser(cookie_header).get(TOKEN_COOKIE) if cookie_header else None
        matches = self.settings.token_matches
        valid_header = any(matches(c) for c in candidates)
        valid_query = any(matches(q) for q in query)
        valid_cookie = cookie is not None and matches(cookie)
        presented = bool(candidates or query or cookie is not None)
        valid = valid_header or valid_query or valid_cookie
        return presented, valid, valid_query and not valid_cookie


def _token_problem(presented: bool) -> str:
    how = (
        "open the URL that backprop-lens printed when it started (it ends in ?token=...), "
        f"or send the token as the header '{TOKEN_HEADER}: <token>' or "
        f"'Authorization: Bearer <token>', the query parameter '{TOKEN_QUERY}', "
        f"or the cookie '{TOKEN_COOKIE}'"
    )
    if presented:
        return f"the access token is wrong: {how}"
    return f"this server requires an access token: {how}"


async def _close_unauthorized(receive: Receive, send: Send, presented: bool) -> None:
    """Accept, then close with 4401: a browser sees the close code (a refused handshake only
    shows as 1006), and the app never runs."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    reason = "access token missing" if not presented else "access token wrong"
    await send(
        {
            "type": "websocket.close",
            "code": WS_CLOSE_UNAUTHORIZED,
            # a page adds it to its URL; a script (the API client, watch(token=...)) sends it
            # as a header
            "reason": f"{reason}: add ?{TOKEN_QUERY}=... to the URL or send {TOKEN_HEADER}",
        }
    )


def _with_header(send: Send, name: bytes, value: bytes) -> Send:
    """`send`, adding one header to the response start."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), (name, value)]}
        await send(message)

    return sending
