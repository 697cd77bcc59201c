"""Liveness and readiness; neither needs an API key, neither says more than it must."""

from starlette.requests import Request
from starlette.responses import JSONResponse

from models.db import is_answering


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    if is_answering():
        return JSONResponse({"status": "ready"})
    return JSONResponse({"status": "unavailable"}, status_code=503)
