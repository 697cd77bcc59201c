"""Access tokens: HS256 JWTs bound to one tenant (the audience) and one user.

Pure functions: secrets and "now" are parameters. Only HS256 is accepted, the
`typ` header must say this is an access token, and the `kid` header may only name
one of the configured secrets; it is never used to fetch a key.
"""

import base64
import binascii
import functools
import hashlib
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import jwt

from errors import Unauthenticated

ALGORITHMS = ["HS256"]
TOKEN_TYPE = "at+jwt"  # noqa: S105  # a media type, not a secret
ISSUER = "user-service"
REQUIRED_CLAIMS = ["iss", "aud", "sub", "sid", "iat", "exp", "jti"]
# Far above any token we issue; refuses 100 KB of garbage before decoding it.
MAX_TOKEN_LENGTH = 2048
# Hosts' clocks differ a little: a token from a host a few seconds ahead is fine.
CLOCK_SKEW = timedelta(seconds=30)


@dataclass(frozen=True)
class TokenClaims:
    user_id: UUID
    tenant_id: UUID
    session_id: UUID
    token_id: str
    issued_at: datetime
    expires_at: datetime


@functools.lru_cache(maxsize=16)
def key_id(secret: str) -> str:
    """Name a secret without revealing it: the `kid` header of its tokens."""
    return hashlib.sha256(b"kid:" + secret.encode()).hexdigest()[:16]


def issue_access_token(
    *,
    user_id: UUID,
    tenant_id: UUID,
    session_id: UUID,
    secret: str,
    ttl: int,
    now: datetime,
) -> str:
    claims = {
        "iss": ISSUER,
        "aud": str(tenant_id),
        "sub": str(user_id),
        # The session (login family) it belongs to: ending it ends this token.
        "sid": str(session_id),
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl)).timestamp()),
        "jti": secrets.token_urlsafe(16),
    }
    headers = {"typ": TOKEN_TYPE, "kid": key_id(secret)}
    return jwt.encode(claims, secret, algorithm="HS256", headers=headers)


def read_access_token(
    token: str, *, tenant_id: UUID, secrets: Sequence[str], now: datetime
) -> TokenClaims:
    """Verify a token for this tenant; raise Unauthenticated if it is not valid.

    Args:
        secrets: the current secret first, then those still accepted in a rotation.
    """
    if len(token) > MAX_TOKEN_LENGTH:
        raise Unauthenticated("Invalid access token.")
    try:
        # The kid only chooses among our own secrets; the header is signed, so
        # a changed one fails the verification below.
        secret = _signing_secret(_unverified_part(token, 0), secrets)
        verified = jwt.decode_complete(
            token,
            secret,
            algorithms=ALGORITHMS,
            audience=str(tenant_id),
            issuer=ISSUER,
            # Time is checked below against the given `now`.
            options={
                "require": REQUIRED_CLAIMS,
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
        _signing_secret(verified["header"], secrets)  # typ and kid, now verified
        return _claims_at(verified["payload"], now)
    except (jwt.PyJWTError, ValueError, TypeError):
        raise Unauthenticated("Invalid access token.") from None


def bearer_token(authorization: Sequence[str]) -> str:
    """The token of the request's one `Authorization: Bearer <token>` header."""
    if len(authorization) != 1:
        raise Unauthenticated()
    scheme, _, token = authorization[0].partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Use an 'Authorization: Bearer <token>' header.")
    return token.strip()


def named_session(token: str) -> tuple[UUID, UUID] | None:
    """The user and session a token names, NOT verified: only to read them early.

    What is read with these may be used only once `read_access_token` has
    verified the token and found that it names the same user and session.
    """
    if len(token) > MAX_TOKEN_LENGTH:
        return None
    try:
        claims = _unverified_part(token, 1)
        return UUID(claims["sub"]), UUID(claims["sid"])
    except (jwt.PyJWTError, ValueError, TypeError, KeyError):
        return None


def _unverified_part(token: str, index: int) -> dict[str, Any]:
    """The header (0) or the claims (1) of a token, as JSON, NOT verified.

    PyJWT parses every segment on each call (its alphabet check runs per
    character in Python, ~9% of a `me` request per parse); this reads one.
    """
    parts = token.split(".")
    if len(parts) != 3:  # header.payload.signature
        raise jwt.DecodeError("not a JWS compact token")
    try:
        raw = base64.urlsafe_b64decode(parts[index] + "=" * (-len(parts[index]) % 4))
        value = json.loads(raw)
    except (binascii.Error, ValueError) as error:
        raise jwt.DecodeError("malformed token") from error
    if not isinstance(value, dict):
        raise jwt.DecodeError("not a JSON object")
    return value


def _signing_secret(header: dict[str, Any], secrets: Sequence[str]) -> str:
    if header.get("typ") != TOKEN_TYPE:
        raise jwt.InvalidTokenError("not an access token")
    for secret in secrets:
        if header.get("kid") == key_id(secret):
            return secret
    raise jwt.InvalidTokenError("unknown key id")


def _claims_at(claims: dict[str, Any], now: datetime) -> TokenClaims:
    issued_at = datetime.fromtimestamp(int(claims["iat"]), tz=now.tzinfo)
    expires_at = datetime.fromtimestamp(int(claims["exp"]), tz=now.tzinfo)
    not_before = datetime.fromtimestamp(int(claims.get("nbf", 0)), tz=now.tzinfo)
    if max(issued_at, not_before) > now + CLOCK_SKEW:
        raise jwt.ImmatureSignatureError("issued in the future")
    if expires_at <= now:
        raise Unauthenticated("The access token has expired.", reason="TOKEN_EXPIRED")
    return TokenClaims(
        user_id=UUID(claims["sub"]),
        tenant_id=UUID(claims["aud"]),
        session_id=UUID(claims["sid"]),
        token_id=str(claims["jti"]),
        issued_at=issued_at,
        expires_at=expires_at,
    )
