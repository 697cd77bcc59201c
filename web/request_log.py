"""One JSON log line per request, and the request id that ties things together.

The id comes from X-Request-ID when it is short and plain, else it is made; it
is echoed in the response and put in every error's extensions. The line holds
the request id, tenant, operation name, outcome, status and duration: never the
query text, variables, tokens or keys.
"""

import json
import logging
import re
import time
import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from metrics import LATENCY, LOGINS, REQUESTS

log = logging.getLogger("user_service.requests")
PLAIN_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def request_id_of(headers: Headers) -> str:
    given = headers.get("x-request-id", "")
    return given if PLAIN_ID.fullmatch(given) else uuid.uuid4().hex


class RequestLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state = scope.setdefault("state", {})
        state["request_id"] = request_id = request_id_of(Headers(scope=scope))
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["x-request-id"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            entry = line(scope, status, seconds)
            log.info(json.dumps(entry))
            if scope["path"] == "/graphql":
                count(entry, seconds)


def line(scope: Scope, status: int, seconds: float) -> dict[str, object]:
    state = scope["state"]
    tenant = state.get("tenant")
    context = state.get("graphql_context")
    return {
        "requestId": state["request_id"],
        "method": scope["method"],
        "path": scope["path"],
        "status": status,
        "tenant": tenant.name if tenant is not None else None,
        "operation": getattr(context, "root_fields", None),
        "operationName": state.get("operation_name"),
        "outcome": state.get("outcome") or ("OK" if status < 400 else "HTTP_ERROR"),
        "durationMs": round(seconds * 1000, 2),
    }


def count(entry: dict[str, object], seconds: float) -> None:
    operation, outcome = str(entry["operation"] or "none"), str(entry["outcome"])
    REQUESTS.labels(operation, outcome).inc()
    LATENCY.labels(operation).observe(seconds)
    if operation == "login":
        LOGINS.labels(outcome).inc()
