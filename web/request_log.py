"""The outermost layer of every HTTP request: its state, its deadline, the
headers every response carries, and one JSON log line.

The request id comes from X-Request-ID when it is short and plain, else it is
made; it is echoed in the response and put in every error's extensions. The
line holds the request id, tenant, operation name, outcome, status and duration:
never the query text, variables, tokens or keys.
"""

import functools
import itertools
import logging
import re
import time
import uuid

from prometheus_client import Counter, Histogram
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dependencies import deadline_in
from metrics import LATENCY, LOGINS, REQUESTS
from web.headers import SECURITY_HEADERS
from web.request_state import KEY, RequestState

log = logging.getLogger("user_service.requests")
PLAIN_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


# Made ids are this process's random prefix and a count: unique without asking
# the kernel for randomness on every request (uuid4 was 6% of a `me`).
PREFIX = uuid.uuid4().hex[:16]
COUNTER = itertools.count(1)


def request_id_of(headers: Headers) -> str:
    given = headers.get("x-request-id", "")
    return given if PLAIN_ID.fullmatch(given) else f"{PREFIX}{next(COUNTER):016x}"


class RequestLog:
    def __init__(self, app: ASGIApp, *, deadline: float) -> None:
        self.app = app
        self.deadline = deadline

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_of(Headers(scope=scope))
        state = RequestState(request_id=request_id)
        scope.setdefault("state", {})[KEY] = state
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    # Only the published keys say they may be cached.
                    headers.setdefault(name, value)
                headers["x-request-id"] = request_id
                if "vary" not in headers:  # CORS answers vary with the Origin
                    headers["vary"] = "Origin"
            await send(message)

        try:
            # What the request waits on (database, Redis) answers by then.
            with deadline_in(self.deadline):
                await self.app(scope, receive, send_with_headers)
        finally:
            seconds = time.perf_counter() - started
            entry = line(scope, state, status, seconds)
            log.info("request", extra=entry)  # its fields are keys of the JSON line
            if scope["path"] == "/graphql":
                count(entry, seconds)


def line(
    scope: Scope, state: RequestState, status: int, seconds: float
) -> dict[str, object]:
    caller = state.caller
    return {
        "requestId": state.request_id,
        "method": scope["method"],
        "path": scope["path"],
        "status": status,
        "tenant": caller.tenant.name if caller is not None else None,
        "operation": state.operation,
        "operationName": state.operation_name,
        "outcome": state.outcome or ("OK" if status < 400 else "HTTP_ERROR"),
        "durationMs": round(seconds * 1000, 2),
    }


def count(entry: dict[str, object], seconds: float) -> None:
    requests, latency, logins = metrics_of(
        str(entry["operation"] or "none"), str(entry["outcome"])
    )
    requests.inc()
    latency.observe(seconds)
    if logins is not None:
        logins.inc()


@functools.lru_cache(maxsize=1024)  # label values come from bounded sets
def metrics_of(
    operation: str, outcome: str
) -> tuple[Counter, Histogram, Counter | None]:
    """The metrics one request of this operation and outcome counts in, looked
    up once: finding a labelled child costs more than counting in it."""
    logins = LOGINS.labels(outcome) if operation == "login" else None
    return REQUESTS.labels(operation, outcome), LATENCY.labels(operation), logins
