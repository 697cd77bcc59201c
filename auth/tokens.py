"""Access tokens: RFC 9068 JWTs bound to one tenant (the audience) and one user.

Pure functions: keys and "now" are parameters. A token is accepted only when its
`kid` names one of the published keys and its `alg` is that key's own: never
HMAC, never `none`, never a key the token brings along (`jwk`, `jku`, `x5u`).
The `typ` header must say this is an access token.
"""

import base64
import binascii
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import jwt
from cryptography.hazmat.primitives.asymmetric.types import (
    PrivateKeyTypes,
    PublicKeyTypes,
)

from errors import Unauthenticated

TOKEN_TYPE = "at+jwt"  # noqa: S105  # a media type, not a secret
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
    key_id: str  # the kid that signed it: retiring that key ends the token


@dataclass(frozen=True)
class SigningKey:
    kid: str
    algorithm: str
    private_key: PrivateKeyTypes


@dataclass(frozen=True)
class VerificationKey:
    kid: str
    algorithm: str
    public_key: PublicKeyTypes


class UnknownKey(Unauthenticated):
    """The token names a key this process does not know (yet): perhaps a new one."""


@dataclass(frozen=True)
class Grants:
    """What the token tells the tenant's services the user may do."""

    roles: Sequence[str]
    permissions: Sequence[str]


def issue_access_token(
    *,
    user_id: UUID,
    tenant_id: UUID,
    session_id: UUID,
    grants: Grants,
    key: SigningKey,
    issuer: str,
    ttl: int,
    now: datetime,
) -> str:
    claims = {
        "iss": issuer,
        "aud": str(tenant_id),
        "sub": str(user_id),
        # RFC 9068 asks for the client the token was issued to: the tenant.
        "client_id": str(tenant_id),
        # The session (login family) it belongs to: ending it ends this token.
        "sid": str(session_id),
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl)).timestamp()),
        "jti": secrets.token_urlsafe(16),
        "roles": list(grants.roles),
        "permissions": list(grants.permissions),
    }
    headers = {"typ": TOKEN_TYPE, "kid": key.kid}
    return jwt.encode(claims, key.private_key, algorithm=key.algorithm, headers=headers)  # type: ignore[arg-type]


def verify_access_token(
    token: str,
    *,
    keys: Mapping[str, VerificationKey],
    issuer: str,
    now: datetime,
) -> TokenClaims:
    """Verify a token of any tenant: the caller compares `tenant_id` with its own.

    Anything but a valid token raises Unauthenticated (UnknownKey for a `kid`
    not in `keys`), whatever its bytes: a payload that decodes but holds the
    wrong types is one more invalid token.
    """
    if len(token) > MAX_TOKEN_LENGTH:
        raise Unauthenticated("Invalid access token.")
    try:
        # The kid only chooses among our own published keys, and the alg must
        # be that key's: the header is signed, so a changed one fails below.
        key = _verification_key(_unverified_part(token, 0), keys)
        verified = jwt.decode_complete(
            token,
            key.public_key,  # type: ignore[arg-type]
            algorithms=[key.algorithm],
            issuer=issuer,
            # The audience (tenant) and the times are checked below.
            options={
                "require": REQUIRED_CLAIMS,
                "verify_aud": False,
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
        _verification_key(verified["header"], keys)  # typ, kid and alg, verified
        return _claims_at(verified["payload"], now, key_id=key.kid)
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


def _verification_key(
    header: dict[str, Any], keys: Mapping[str, VerificationKey]
) -> VerificationKey:
    if header.get("typ") != TOKEN_TYPE:
        raise jwt.InvalidTokenError("not an access token")
    kid = header.get("kid")
    key = keys.get(kid) if isinstance(kid, str) else None
    if key is None:
        raise UnknownKey("Invalid access token.")
    if header.get("alg") != key.algorithm:
        raise jwt.InvalidAlgorithmError("not the algorithm of the named key")
    return key


def _claims_at(claims: dict[str, Any], now: datetime, *, key_id: str) -> TokenClaims:
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
        key_id=key_id,
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
