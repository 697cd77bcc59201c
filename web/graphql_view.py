"""/graphql: GraphQL over HTTP, from the request straight to Strawberry's schema.

POST carries the operation as JSON; GET carries a query in the query string
(mutations over GET are refused). The context is built from the caller the
API-key check resolved, the schema executes, and the answer is the contract's
JSON, each error with its code and the request id.

A plain ASGI endpoint rather than Strawberry's HTTP view: the view's request
adapters, sub-responses and streaming hooks cost as much as executing `me`
itself, for features this service does not serve (batching, uploads,
incremental delivery, subscriptions). GraphQL over WebSocket is refused.
"""

import json
from pathlib import Path
from typing import Any

from graphql import GraphQLError
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry import Schema
from strawberry.exceptions import MissingQueryError
from strawberry.http import process_result
from strawberry.schema.exceptions import (
    CannotGetOperationTypeError,
    InvalidOperationTypeError,
)
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from auth.hashing import PasswordHasher
from auth.key_ring import KeyRing
from auth.oidc import OidcClient
from auth.rate_limits import RateLimits
from errors import ServiceUnavailable
from mail import Mailer
from schema.context import Context
from schema.error_codes import with_code
from settings import Settings
from web.request_state import RequestState, state_of

GRAPHIQL_PAGE = Path(__file__).with_name("static") / "graphiql.html"
GRAPHIQL_ASSETS = Path(__file__).with_name("static") / "graphiql"
ALLOWED = {
    "GET": frozenset({OperationType.QUERY}),
    "POST": frozenset({OperationType.QUERY, OperationType.MUTATION}),
}


class GraphQLView:
    def __init__(
        self,
        schema: Schema,
        *,
        settings: Settings,
        hasher: PasswordHasher,
        limits: RateLimits,
        mailer: Mailer,
        keys: KeyRing,
        oidc: OidcClient,
    ) -> None:
        self.schema = schema
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
        if self.settings.graphiql and is_graphiql_page(scope):
            response: Response = self.graphiql_page()
        else:
            response = await self.answer(request)
        await response(scope, receive, send)

    def graphiql_page(self) -> HTMLResponse:
        headers = json.dumps({"X-API-Key": self.settings.dev_api_key})
        # "</" cannot end the script element early: the key is data, not markup.
        page = GRAPHIQL_PAGE.read_text().replace(
            "__HEADERS__", headers.replace("</", "<\\/")
        )
        return HTMLResponse(page)

    async def answer(self, request: Request) -> JSONResponse:
        """Execute the request's operation; refusals raise HTTPException, which
        the app answers as BAD_REQUEST with the exception's status."""
        operation = await read_operation(request)
        query = operation.get("query")
        if isinstance(query, str) and len(query) > self.settings.max_query_length:
            raise HTTPException(413, "The GraphQL document is too long.")
        state = state_of(request.scope)
        name = operation.get("operationName")
        state.operation_name = name[:100] if name else None
        context = self.context(request, state)
        method = request.method
        try:
            result = await self.schema.execute(
                query,
                variable_values=operation.get("variables"),
                context_value=context,
                operation_name=name,
                allowed_operation_types=ALLOWED[method],
                operation_extensions=operation.get("extensions"),
            )
        except CannotGetOperationTypeError as error:
            raise HTTPException(400, error.as_http_error_reason()) from None
        except InvalidOperationTypeError as error:
            reason = error.as_http_error_reason(method)
            raise HTTPException(405, reason, headers={"allow": "POST"}) from None
        except MissingQueryError:
            raise HTTPException(400, "No GraphQL query found in the request.") from None
        state.operation = context.root_fields
        return self.response(result, state)

    def context(self, request: Request, state: RequestState) -> Context:
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

    def response(self, result: ExecutionResult, state: RequestState) -> JSONResponse:
        body: dict[str, Any] = dict(process_result(result))
        if not result.errors:
            return JSONResponse(body)
        suggestions = self.settings.field_suggestions
        errors = [with_code(e, suggestions=suggestions) for e in result.errors]
        body["errors"] = [
            {
                **e.formatted,
                "extensions": {**(e.extensions or {}), "requestId": state.request_id},
            }
            for e in errors
        ]
        state.outcome = str((errors[0].extensions or {}).get("code"))
        # A dependency did not answer: say so in the status too.
        unavailable = any(is_unavailable(e) for e in result.errors)
        return JSONResponse(body, status_code=503 if unavailable else 200)


async def read_operation(request: Request) -> dict[str, Any]:
    """The operation's fields (query, variables, operationName, extensions),
    from the query string of a GET or the JSON body of a POST."""
    if request.method == "GET":
        params = dict(request.query_params)
        for name in ("variables", "extensions"):
            if params.get(name):
                params[name] = decode_json(params[name], what=name)
        operation: dict[str, Any] = params
    else:
        media_type = request.headers.get("content-type", "").partition(";")[0]
        if media_type.strip().lower() != "application/json":
            raise HTTPException(415, "Send the operation as application/json.")
        operation = decode_json(await request.body(), what="The request body")
        if isinstance(operation, list):
            raise HTTPException(400, "Batching is not supported: send one operation.")
        if not isinstance(operation, dict):
            raise HTTPException(400, "The request body must be a JSON object.")
    for name, (types, what) in FIELDS.items():
        if not isinstance(operation.get(name), types):
            raise HTTPException(400, f"{name} must be {what}.")
    return operation


# Each field of an operation: the types it may have, and how a refusal says so.
FIELDS: dict[str, tuple[Any, str]] = {
    "query": (str | None, "a string"),
    "variables": (dict | None, "an object or null"),
    "operationName": (str | None, "a string or null"),
    "extensions": (dict | None, "an object or null"),
}


def decode_json(data: str | bytes, *, what: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        # JSONDecodeError and UnicodeDecodeError are ValueErrors.
        raise HTTPException(400, f"{what} is not valid JSON.") from None


def is_graphiql_page(scope: Scope) -> bool:
    """A browser asking for the GraphiQL page: GET /graphql for HTML, no query."""
    if scope["type"] != "http" or scope["method"] != "GET":
        return False
    if scope["path"] != "/graphql" or b"query=" in scope.get("query_string", b""):
        return False
    return "text/html" in Headers(scope=scope).get("accept", "")


def is_unavailable(error: GraphQLError) -> bool:
    return isinstance(error.original_error, ServiceUnavailable)
