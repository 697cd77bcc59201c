"""Refuse request bodies over USER_SERVICE_MAX_BODY_BYTES with 413, before parsing.

The body is read here, counted as it arrives, and handed on whole: nothing
downstream ever holds more than the limit.
"""

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from errors import BadRequest
from web.responses import error_response


class BodyLimit:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if len(scope.get("query_string", b"")) > self.max_bytes:
            await self.refuse(scope, receive, send, 414, "The URL is too long.")
            return
        declared = Headers(scope=scope).get("content-length", "0")
        if not declared.isdigit():
            await self.refuse(scope, receive, send, 400, "Bad Content-Length.")
            return
        if int(declared) > self.max_bytes:
            await self.refuse(
                scope, receive, send, 413, "The request body is too large."
            )
            return
        body = await self.read_body(receive)
        if body is None:
            await self.refuse(
                scope, receive, send, 413, "The request body is too large."
            )
            return
        await self.app(scope, replay(body, receive), send)

    async def read_body(self, receive: Receive) -> bytes | None:
        """The whole body, or None once it passes the limit."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def refuse(
        self, scope: Scope, receive: Receive, send: Send, status: int, message: str
    ) -> None:
        response = error_response(BadRequest(message), status, scope=scope)
        await response(scope, receive, send)


def replay(body: bytes, receive: Receive) -> Receive:
    """Hand the body on in one message, then pass on what the client sends next."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
