"""The API-key check: plain ASGI middleware that sees every HTTP and WebSocket
connection, so nothing reaches the app without a live key of some tenant.

The tenant of the key travels on in `scope["state"]["tenant"]`. When the request
carries an access token, the user and session it names are read in the same query
(`scope["state"]["early_read"]`), for the GraphQL context to use once it has
verified the token.
"""

import time
from collections.abc import Callable

from peewee import DatabaseError
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from auth.opaque import digest
from auth.tokens import bearer_token, named_session
from errors import BadRequest, InvalidApiKey, ServiceUnavailable, Unauthenticated
from models import ApiKey
from models.db import close_database, is_unavailable
from models.session import EarlyRead, live_key_and_user
from web.responses import error_response

ALLOWED_METHODS = frozenset({"GET", "POST", "OPTIONS"})
# last_used_at is written at most this often per key, not on every request.
LAST_USED_RESOLUTION = 60.0


class ApiKeyMiddleware:
    def __init__(self, app: ASGIApp, *, is_public: Callable[[Scope], bool]) -> None:
        self.app = app
        self.is_public = is_public
        self._last_marked: dict[int, float] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "http" and scope["method"] not in ALLOWED_METHODS:
            response = error_response(
                BadRequest("Method not allowed."),
                405,
                scope=scope,
                headers={"allow": "GET, POST, OPTIONS"},
            )
            await response(scope, receive, send)
            return
        if self.is_public(scope):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        try:
            api_key, early_read = self.live_key(
                headers.getlist("x-api-key"), headers.getlist("authorization")
            )
        except DatabaseError as error:
            if not is_unavailable(error):
                raise
            close_database()  # a broken connection: the next request reconnects
            response = error_response(ServiceUnavailable(), 503, scope=scope)
            await response(scope, receive, send)
            return
        if api_key is None:
            await self.refuse(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["tenant"], state["early_read"] = api_key.tenant, early_read
        await self.app(scope, receive, send)

    def live_key(
        self, values: list[str], authorization: list[str]
    ) -> tuple[ApiKey | None, EarlyRead | None]:
        if len(values) != 1 or not values[0]:
            return None, None
        try:
            named = named_session(bearer_token(authorization))
        except Unauthenticated:
            named = None
        api_key, early_read = live_key_and_user(digest(values[0]), named)
        if api_key is not None:
            self.mark_used(api_key)
        return api_key, early_read

    def mark_used(self, api_key: ApiKey) -> None:
        now = time.monotonic()
        if (
            now - self._last_marked.get(api_key.id, -LAST_USED_RESOLUTION)
            >= LAST_USED_RESOLUTION
        ):
            self._last_marked[api_key.id] = now
            api_key.mark_used()

    async def refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await WebSocket(scope, receive, send).close(code=1008)
            return
        response = error_response(InvalidApiKey(), 401, scope=scope)
        await response(scope, receive, send)
