"""The API-key check: plain ASGI middleware that sees every HTTP and WebSocket
connection, so nothing reaches the app without a live key of some tenant.

It also resolves the caller, once: the access token is verified here, and the
key with the user and live session the token names is read in one query. The
result travels on as the request state's `caller`.
"""

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Callable
from datetime import UTC, datetime

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from auth.caller import Caller
from auth.key_ring import KeyRing
from auth.opaque import digest
from auth.tokens import TokenClaims, UnknownKey, bearer_token, verify_access_token
from errors import BadRequest, InvalidApiKey, ServiceUnavailable, Unauthenticated
from models import ApiKey, live_key_and_user
from models.workers import run, run_read
from web.request_state import state_of
from web.responses import error_response

ALLOWED_METHODS = frozenset({"GET", "POST", "OPTIONS"})
# Tokens verified lately, by digest: a client sends the same one for minutes.
VERIFIED_TOKENS = 4096
# last_used_at is written at most this often per key, not on every request.
LAST_USED_RESOLUTION = 60.0


class ApiKeyMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        is_public: Callable[[Scope], bool],
        keys: KeyRing,
        issuer: str,
    ) -> None:
        self.app = app
        self.is_public = is_public
        self.keys = keys
        self.issuer = issuer
        self._last_marked: dict[int, float] = {}
        self._verified: dict[bytes, TokenClaims] = {}
        self._marking: set[asyncio.Task[None]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "http" and scope["method"] not in ALLOWED_METHODS:
            response = error_response(
                BadRequest("Method not allowed."),
                405,
                scope=scope,
                headers={"allow": "GET, POST, OPTIONS"},
            )
            await response(scope, receive, send)
            return
        if self.is_public(scope):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        keys = headers.getlist("x-api-key")
        try:
            caller = await self.caller(keys, headers.getlist("authorization"))
        except ServiceUnavailable as error:
            await error_response(error, 503, scope=scope)(scope, receive, send)
            return
        if caller is None:
            await self.refuse(scope, receive, send)
            return
        state_of(scope).caller = caller
        await self.app(scope, receive, send)

    async def caller(self, keys: list[str], authorization: list[str]) -> Caller | None:
        """The caller, or None when the API key is not one live key."""
        if len(keys) != 1 or not keys[0]:
            return None
        claims, token_error = await self.claims(authorization)
        names = (claims.user_id, claims.session_id, claims.key_id) if claims else ()
        api_key, user = await run_read(live_key_and_user, digest(keys[0]), *names)
        if api_key is None:
            return None
        if self.is_due(api_key):
            self.mark_used(api_key)
        tenant = api_key.tenant
        if claims is None:
            return Caller(tenant=tenant, token_error=token_error)
        # The token's audience is its tenant: another tenant's token names no one.
        if user is None or claims.tenant_id != tenant.id:
            invalid = Unauthenticated("Invalid access token.")
            return Caller(tenant=tenant, token_error=invalid)
        return Caller(tenant=tenant, user=user, session_id=claims.session_id)

    async def claims(
        self, authorization: list[str]
    ) -> tuple[TokenClaims | None, Unauthenticated | None]:
        """The verified claims of the request's token, or why it has none."""
        if not authorization:
            return None, None
        try:
            token = bearer_token(authorization)
            try:
                return self.verified(token, datetime.now(UTC)), None
            except UnknownKey:
                # Perhaps a key another worker or host has just started to use.
                if not self.keys.may_reload():
                    raise
                await run(self.keys.load)
                return self.verified(token, datetime.now(UTC)), None
        except Unauthenticated as error:
            return None, error

    def verified(self, token: str, now: datetime) -> TokenClaims:
        """Verify a token once; later requests with it only check its expiry.

        Only tokens that verified are kept, and a token's signature and claims
        never change: the same bytes verify the same way until they expire.
        """
        key = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        claims = self._verified.get(key)
        if claims is not None and claims.expires_at > now:
            return claims
        claims = verify_access_token(
            token, keys=self.keys.verification_keys, issuer=self.issuer, now=now
        )
        if len(self._verified) >= VERIFIED_TOKENS:
            del self._verified[next(iter(self._verified))]  # the oldest
        self._verified[key] = claims
        return claims

    def mark_used(self, api_key: ApiKey) -> None:
        """Record the key's use in the background: a write that waits on a
        writer's lock must not hold up a request that only reads."""
        task = asyncio.create_task(self._mark_used(api_key))
        self._marking.add(task)  # the loop keeps only a weak reference
        task.add_done_callback(self._marking.discard)

    async def _mark_used(self, api_key: ApiKey) -> None:
        with contextlib.suppress(ServiceUnavailable):  # next time, then
            await run(api_key.mark_used)

    def is_due(self, api_key: ApiKey) -> bool:
        now = time.monotonic()
        last = self._last_marked.get(api_key.id, -LAST_USED_RESOLUTION)
        if now - last < LAST_USED_RESOLUTION:
            return False
        self._last_marked[api_key.id] = now
        return True

    async def refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await WebSocket(scope, receive, send).close(code=1008)
            return
        response = error_response(InvalidApiKey(), 401, scope=scope)
        await response(scope, receive, send)
