"""CORS for browsers, out of the way of everyone else.

Starlette's CORSMiddleware wraps every response to add `Vary: Origin`; here only
requests that carry an Origin header go through it, and the request log adds
`Vary: Origin` to the others. It sits outside the API-key check, so browsers'
preflights get their answer.
"""

from typing import Any

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send


class Cors:
    def __init__(self, app: ASGIApp, /, **options: Any) -> None:
        self.app = app
        self.cors = CORSMiddleware(app, **options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and has_origin(scope):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def has_origin(scope: Scope) -> bool:
    return any(name == b"origin" for name, _ in scope["headers"])
