"""A real HTTP receiver of webhooks on loopback, for the webhook tests.

It records every POST (headers and body as received) and answers with the
status the test sets; it can be down (nothing listens on its port), answer
with errors, or hold a request unanswered until released.
"""

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from standardwebhooks import Webhook

from tests.servers import free_port

WAIT_SECONDS = 30.0


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: str
    path: str

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def payload(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed

    @property
    def type(self) -> str:
        return str(self.payload["type"])

    def verified(self, secret: str) -> dict[str, Any]:
        """The payload, once `standardwebhooks` accepts its signature."""
        payload: dict[str, Any] = Webhook(secret).verify(self.body, self.headers)
        return payload


class Receiver:
    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[Received] = []
        self.status = 204
        self.failures_left = 0  # answer 503 to this many requests first
        self.holds_left = 0  # leave this many unanswered until `released` is set
        self.redirect_to: str | None = None  # answer 307 with this Location
        self.released = threading.Event()
        self.changed = threading.Condition()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.released.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def wait_for(self, count: int, seconds: float = WAIT_SECONDS) -> list[Received]:
        """The first `count` requests, once that many arrived."""
        deadline = time.monotonic() + seconds
        with self.changed:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    types = [one.type for one in self.received]
                    pytest.fail(f"{len(self.received)} of {count} arrived: {types}")
                self.changed.wait(left)
            return list(self.received[:count])

    def ids(self) -> list[str]:
        with self.changed:
            return [one.id for one in self.received]

    def _answer(self, received: Received) -> int:
        with self.changed:
            self.received.append(received)
            self.changed.notify_all()
            if self.failures_left > 0:
                self.failures_left -= 1
                return 503
            hold = self.holds_left > 0
            self.holds_left -= hold
        if hold:
            self.released.wait(WAIT_SECONDS)
        return 307 if self.redirect_to else self.status

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length).decode()
                headers = {name.lower(): value for name, value in self.headers.items()}
                status = receiver._answer(Received(headers, body, self.path))
                with contextlib.suppress(OSError):  # the sender may be gone
                    self.send_response(status)
                    if receiver.redirect_to:
                        self.send_header("location", receiver.redirect_to)
                    self.send_header("content-length", "0")
                    self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the test's output stays readable

        return Handler


@contextlib.contextmanager
def running_receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()
