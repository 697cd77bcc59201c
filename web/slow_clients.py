"""Deadlines for a request's head and body, and a cap on connections, in uvicorn.

uvicorn bounds only the idle time between requests (`timeout_keep_alive`), and
every byte received cancels even that: a client that trickles its headers, or
a body, holds the connection for ever. Middleware cannot help, since it sees a
request only once its head is whole. So `SlowClientGuard` extends uvicorn's
httptools protocol (what `uvicorn[standard]` serves with) and server.py hands
it to uvicorn; nothing else here knows the app.
"""

import asyncio
import functools
import json
import uuid
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class SlowClientGuard(HttpToolsProtocol):
    """Close a connection whose request head or body is late; refuse past the cap.

    The head must be whole `header_timeout` seconds after the connection opens,
    or after the first byte of a next request on a kept-alive connection. The
    body must be whole `body_timeout` seconds after the head: a late one gets
    408 (or, when the app has answered already, the connection just closes).
    """

    def __init__(
        self,
        *args: Any,
        header_timeout: float,
        body_timeout: float,
        max_connections: int,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self.max_connections = max_connections
        self.deadline: asyncio.TimerHandle | None = None
        self.in_request = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            transport.close()
            return
        self.start_deadline(self.header_timeout, self.head_is_late)

    def data_received(self, data: bytes) -> None:
        if self.deadline is None and not self.in_request:
            # The first byte of a next request: its head is on the clock.
            self.start_deadline(self.header_timeout, self.head_is_late)
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.in_request = True

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self.start_deadline(self.body_timeout, self.body_is_late)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.in_request = False
        self.stop_deadline()

    def handle_websocket_upgrade(self) -> None:
        self.stop_deadline()
        super().handle_websocket_upgrade()

    def connection_lost(self, exc: Exception | None) -> None:
        self.stop_deadline()
        super().connection_lost(exc)

    def start_deadline(self, seconds: float, on_expiry: Callable[[], None]) -> None:
        self.stop_deadline()
        self.deadline = self.loop.call_later(seconds, on_expiry)

    def stop_deadline(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def head_is_late(self) -> None:
        self.deadline = None
        self.transport.close()

    def body_is_late(self) -> None:
        self.deadline = None
        cycle = self.cycle
        # Answer only when this request's is the next answer on the wire.
        if cycle is not None and not cycle.response_started and not self.pipeline:
            # The app is waiting for the body: end its reads, drop its answer.
            cycle.disconnected = True
            cycle.message_event.set()
            self.transport.write(request_timeout())
        self.transport.close()


def slow_client_guard(
    *, header_timeout: float, body_timeout: float, max_connections: int
) -> Callable[..., SlowClientGuard]:
    """What uvicorn's `http` option takes: it calls it like the class itself."""
    return functools.partial(
        SlowClientGuard,
        header_timeout=header_timeout,
        body_timeout=body_timeout,
        max_connections=max_connections,
    )


def request_timeout() -> bytes:
    """A whole 408 response in the contract's error shape, closing the connection."""
    request_id = uuid.uuid4().hex
    error = {"code": "BAD_REQUEST", "requestId": request_id}
    message = "The request took too long to arrive."
    body = json.dumps({"errors": [{"message": message, "extensions": error}]})
    head = (
        "HTTP/1.1 408 Request Timeout\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "x-content-type-options: nosniff\r\n"
        "cache-control: no-store\r\n"
        f"x-request-id: {request_id}\r\n"
        "connection: close\r\n\r\n"
    )
    return (head + body).encode()
