"""The keys other services verify our tokens with, and where to find them.

`/.well-known/jwks.json` (RFC 7517) and `/.well-known/openid-configuration`
(enough of OpenID Connect Discovery for gateways that take an issuer URL). No
API key; cacheable, unlike every other response.
"""

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from auth.key_ring import KeyRing
from errors import ServiceUnavailable
from models.workers import run
from web.responses import error_response

JWKS_PATH = "/.well-known/jwks.json"
DISCOVERY_PATH = "/.well-known/openid-configuration"
# Verifiers refetch well within the publish-ahead, so a new key reaches them
# before its first token.
MAX_AGE_LIMIT = 300


def well_known_routes(keys: KeyRing, *, issuer: str, publish_ahead: int) -> list[Route]:
    max_age = min(MAX_AGE_LIMIT, publish_ahead // 2)
    cache = {"cache-control": f"public, max-age={max_age}"}

    async def jwks(request: Request) -> Response:
        try:
            if keys.is_stale():
                await run(keys.load)
        except ServiceUnavailable as error:
            return error_response(error, 503, scope=request.scope)
        return JSONResponse(keys.jwks(datetime.now(UTC)), headers=cache)

    async def discovery(request: Request) -> Response:
        document = {
            "issuer": issuer,
            "jwks_uri": issuer + JWKS_PATH,
            "id_token_signing_alg_values_supported": [keys.algorithm],
            "subject_types_supported": ["public"],
        }
        return JSONResponse(document, headers=cache)

    return [
        Route(JWKS_PATH, jwks, methods=["GET"]),
        Route(DISCOVERY_PATH, discovery, methods=["GET"]),
    ]
