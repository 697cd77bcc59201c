"""JSON error bodies in the GraphQL shape, for errors raised outside GraphQL."""

import logging
from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from errors import BadRequest, InternalServerError, NotFound, ServiceError

log = logging.getLogger("user_service.http")


def error_response(
    error: ServiceError, status_code: int, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    body = {"errors": [{"message": error.message, "extensions": error.extensions}]}
    return JSONResponse(body, status_code=status_code, headers=headers)


async def internal_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's last resort: the contract's JSON instead of a traceback."""
    log.error(
        "unhandled error on %s %s", request.method, request.url.path, exc_info=exc
    )
    return error_response(InternalServerError(), 500)


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own refusals (unknown path, wrong method) as contract JSON."""
    assert isinstance(exc, HTTPException)  # noqa: S101  # registered for it alone
    error = NotFound() if exc.status_code == 404 else BadRequest(exc.detail)
    return error_response(error, exc.status_code, exc.headers)
