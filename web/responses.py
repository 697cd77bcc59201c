"""JSON error bodies in the GraphQL shape, for errors raised outside GraphQL."""

import logging
from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Scope

from errors import BadRequest, InternalServerError, NotFound, ServiceError
from web.headers import SECURITY_HEADERS
from web.request_state import state_of

log = logging.getLogger("user_service.http")


def error_response(
    error: ServiceError,
    status_code: int,
    *,
    scope: Scope,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    state = state_of(scope)
    extensions = {**error.extensions, "requestId": state.request_id}
    state.outcome = state.outcome or error.code
    body = {"errors": [{"message": error.message, "extensions": extensions}]}
    return JSONResponse(body, status_code=status_code, headers=headers)


async def internal_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's last resort: the contract's JSON instead of a traceback.

    It answers from outside every middleware, so it adds their headers itself.
    """
    log.error(
        "unhandled error on %s %s", request.method, request.url.path, exc_info=exc
    )
    request_id = state_of(request.scope).request_id
    headers = {**SECURITY_HEADERS, "x-request-id": request_id}
    return error_response(
        InternalServerError(), 500, scope=request.scope, headers=headers
    )


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own refusals (unknown path, wrong method) as contract JSON."""
    assert isinstance(exc, HTTPException)  # noqa: S101  # registered for it alone
    error = NotFound() if exc.status_code == 404 else BadRequest(exc.detail)
    return error_response(
        error, exc.status_code, scope=request.scope, headers=exc.headers
    )
