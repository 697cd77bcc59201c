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
    claims = verify_access_token(token, secrets=secrets, now=now)
    if claims.tenant_id != tenant_id:
        raise Unauthenticated("Invalid access token.")
    return claims


def verify_access_token(
    token: str, *, secrets: Sequence[str], now: datetime
) -> TokenClaims:
    """Verify a token of any tenant: the caller compares `tenant_id` with its own.

    Anything but a valid token raises Unauthenticated, whatever its bytes: a
    payload that decodes but holds the wrong types is one more invalid token.
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
            issuer=ISSUER,
            # The audience (tenant) and the times are checked below.
            options={
                "require": REQUIRED_CLAIMS,
                "verify_aud": False,
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
        _signing_secret(verified["header"], secrets)  # typ and kid, now verified
        return _claims_at(verified["payload"], now)
    # What a token's bytes can make the parsers raise, from JSON nested too
    # deep to a time too far: all of it is one more invalid token.
    except (
        jwt.PyJWTError,
        ValueError,
        TypeError,
        OverflowError,
        OSError,
        RecursionError,
    ):
        raise Unauthenticated("Invalid access token.") from None


def bearer_token(authorization: Sequence[str]) -> str:
    """The token of the request's one `Authorization: Bearer <token>` header."""
    if len(authorization) != 1:
        raise Unauthenticated()
    scheme, _, token = authorization[0].partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Use an 'Authorization: Bearer <token>' header.")
    return token.strip()


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
    issued_at = _moment(claims["iat"], now)
    expires_at = _moment(claims["exp"], now)
    not_before = _moment(claims.get("nbf", 0), now)
    if max(issued_at, not_before) > now + CLOCK_SKEW:
        raise jwt.ImmatureSignatureError("issued in the future")
    if expires_at <= now:
        raise Unauthenticated("The access token has expired.", reason="TOKEN_EXPIRED")
    return TokenClaims(
        user_id=_uuid(claims["sub"]),
        tenant_id=_uuid(claims["aud"]),
        session_id=_uuid(claims["sid"]),
        token_id=_text(claims["jti"]),
        issued_at=issued_at,
        expires_at=expires_at,
    )


def _moment(value: object, now: datetime) -> datetime:
    # bool is an int to Python, never a time to us.
    if not isinstance(value, int) or isinstance(value, bool):
        raise jwt.InvalidTokenError("a time claim is not a whole number")
    return datetime.fromtimestamp(value, tz=now.tzinfo)  # OverflowError, ValueError


def _uuid(value: object) -> UUID:
    return UUID(_text(value))  # ValueError


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise jwt.InvalidTokenError("a claim is not a string")
    return value
