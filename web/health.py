"""Liveness and readiness; neither needs an API key, neither says more than it must.

`/healthz` waits on nothing. `/readyz` asks the database and, when configured,
Redis, each within its deadline.
"""

from starlette.requests import Request
from starlette.responses import JSONResponse

from auth.rate_limits import RateLimits
from dependencies import deadline_in
from errors import ServiceUnavailable
from models.db import ping
from models.workers import run

READY_DEADLINE = 2.0


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def readyz(limits: RateLimits):  # type: ignore[no-untyped-def]
    async def endpoint(request: Request) -> JSONResponse:
        try:
            with deadline_in(READY_DEADLINE):
                await run(ping)
                await limits.ping()
        except ServiceUnavailable:
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ready"})

    return endpoint
