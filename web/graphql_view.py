"""Strawberry's ASGI view, answering every refusal with the contract's JSON.

GraphQL over WebSocket is not served: the schema has no subscriptions.
"""

import json
from pathlib import Path
from typing import Any

from cross_web import HTTPException
from graphql import GraphQLError
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLRequestData
from strawberry.types import ExecutionResult

from auth.hashing import PasswordHasher
from auth.key_ring import KeyRing
from auth.oidc import OidcClient
from auth.rate_limits import RateLimits
from errors import BadRequest, ServiceUnavailable
from mail import Mailer
from schema.context import Context
from schema.error_codes import with_code
from settings import Settings
from web.request_state import state_of
from web.responses import error_response

GRAPHIQL_PAGE = Path(__file__).with_name("static") / "graphiql.html"
GRAPHIQL_ASSETS = Path(__file__).with_name("static") / "graphiql"


class GraphQLView(GraphQL[Context, None]):
    def __init__(
        self,
        schema: Any,
        *,
        settings: Settings,
        hasher: PasswordHasher,
        limits: RateLimits,
        mailer: Mailer,
        keys: KeyRing,
        oidc: OidcClient,
    ) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if settings.graphiql else None,
            subscription_protocols=(),
        )
        self.settings = settings
        self.hasher = hasher
        self.limits = limits
        self.mailer = mailer
        self.keys = keys
        self.oidc = oidc

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            # Closing before accepting answers the handshake with 403.
            await WebSocket(scope, receive, send).close(code=1008)
            return
        request = Request(scope, receive)
        response: Response
        try:
            if self.graphql_ide and is_graphiql_page(scope):
                response = await self.render_graphql_ide(request)
            else:
                response = await self.run(request)
        except HTTPException as error:
            response = error_response(
                BadRequest(error.reason), error.status_code, scope=scope
            )
        await response(scope, receive, send)

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        headers = json.dumps({"X-API-Key": self.settings.dev_api_key})
        # "</" cannot end the script element early: the key is data, not markup.
        page = GRAPHIQL_PAGE.read_text().replace(
            "__HEADERS__", headers.replace("</", "<\\/")
        )
        return HTMLResponse(page)

    async def get_context(self, request: Request, response: Any) -> Context:  # type: ignore[override]
        state = state_of(request.scope)
        assert state.caller is not None  # noqa: S101  # the API-key check set it
        return Context(
            caller=state.caller,
            settings=self.settings,
            hasher=self.hasher,
            limits=self.limits,
            mailer=self.mailer,
            keys=self.keys,
            oidc=self.oidc,
            client_ip=request.client.host if request.client else None,
            user_agent=request.headers.get("user-agent"),
            request_id=state.request_id,
        )

    async def execute_single(self, **kwargs: Any) -> ExecutionResult:  # type: ignore[override]
        request: Request = kwargs["request"]
        data: GraphQLRequestData = kwargs["request_data"]
        if len(data.query or "") > self.settings.max_query_length:
            raise HTTPException(413, "The GraphQL document is too long.")
        state = state_of(request.scope)
        name = data.operation_name
        state.operation_name = name[:100] if name else None
        result = await super().execute_single(**kwargs)
        state.operation = kwargs["context"].root_fields
        if result.errors and any(is_unavailable(e) for e in result.errors):
            # A dependency did not answer: say so in the status too.
            kwargs["sub_response"].status_code = 503
        return result

    async def process_result(self, request: Request, result: ExecutionResult) -> Any:
        response = await super().process_result(request, result)
        if result.errors:
            suggestions = self.settings.field_suggestions
            errors = [with_code(e, suggestions=suggestions) for e in result.errors]
            state = state_of(request.scope)
            response["errors"] = [
                {
                    **e.formatted,
                    "extensions": {
                        **(e.extensions or {}),
                        "requestId": state.request_id,
                    },
                }
                for e in errors
            ]
            state.outcome = str((errors[0].extensions or {}).get("code"))
        return response

    def decode_json(self, data: str | bytes) -> object:
        try:
            value = json.loads(data)
        except (ValueError, RecursionError):
            # JSONDecodeError and UnicodeDecodeError are ValueErrors.
            raise HTTPException(400, "The request body is not valid JSON.") from None
        if isinstance(value, list):
            raise HTTPException(400, "Batching is not supported: send one operation.")
        if not isinstance(value, dict):
            raise HTTPException(400, "The request body must be a JSON object.")
        if not isinstance(value.get("operationName"), str | None):
            raise HTTPException(400, "operationName must be a string or null.")
        return value


def is_graphiql_page(scope: Scope) -> bool:
    """A browser asking for the GraphiQL page: GET /graphql for HTML, no query."""
    if scope["type"] != "http" or scope["method"] != "GET":
        return False
    if scope["path"] != "/graphql" or b"query=" in scope.get("query_string", b""):
        return False
    return "text/html" in Headers(scope=scope).get("accept", "")


def is_unavailable(error: GraphQLError) -> bool:
    return isinstance(error.original_error, ServiceUnavailable)
