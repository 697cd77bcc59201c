"""auth/tokens.py as pure functions: keys and "now" are parameters."""

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from auth.signing_keys import generate_key, load_private_key, load_public_key
from auth.tokens import (
    Grants,
    SigningKey,
    TokenClaims,
    UnknownKey,
    VerificationKey,
    issue_access_token,
    verify_access_token,
)
from errors import Unauthenticated

NOW = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
TTL = 900
ISSUER = "https://users.example.com"
USER_ID = UUID("11111111-1111-4111-8111-111111111111")
TENANT_ID = UUID("22222222-2222-4222-8222-222222222222")
SESSION_ID = UUID("33333333-3333-4333-8333-333333333333")
GRANTS = Grants(roles=("ADMIN",), permissions=("users:read", "audit:read"))


def key_pair(algorithm: str) -> tuple[SigningKey, VerificationKey]:
    pem, jwk = generate_key(algorithm)
    private = SigningKey(jwk["kid"], algorithm, load_private_key(pem))
    public = VerificationKey(jwk["kid"], algorithm, load_public_key(jwk))
    return private, public


SIGNER, VERIFIER = key_pair("ES256")
KEYS = {VERIFIER.kid: VERIFIER}


def issued(*, key: SigningKey = SIGNER) -> str:
    return issue_access_token(
        user_id=USER_ID,
        tenant_id=TENANT_ID,
        session_id=SESSION_ID,
        grants=GRANTS,
        key=key,
        issuer=ISSUER,
        ttl=TTL,
        now=NOW,
    )


def read(
    token: str,
    *,
    now: datetime = NOW,
    keys: dict[str, VerificationKey] = KEYS,
    issuer: str = ISSUER,
) -> TokenClaims:
    return verify_access_token(token, keys=keys, issuer=issuer, now=now)


def refusal(token: str, **options: Any) -> Unauthenticated:
    with pytest.raises(Unauthenticated) as caught:
        read(token, **options)
    return caught.value


def seconds(n: int) -> timedelta:
    return timedelta(seconds=n)


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def signed(claims: dict[str, Any], *, key: SigningKey = SIGNER, **headers: str) -> str:
    """Claims signed as the app signs them, unless `headers` say otherwise."""
    all_headers = {"typ": "at+jwt", "kid": key.kid, **headers}
    return jwt.encode(
        claims,
        key.private_key,  # type: ignore[arg-type]
        algorithm=key.algorithm,
        headers=all_headers,
    )


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value).encode())


@pytest.mark.parametrize("algorithm", ["ES256", "EdDSA", "RS256"])
def test_issued_token_reads_back_with_each_algorithm(algorithm: str) -> None:
    signer, verifier = key_pair(algorithm)
    claims = read(issued(key=signer), keys={verifier.kid: verifier})
    assert (claims.user_id, claims.tenant_id) == (USER_ID, TENANT_ID)
    assert (claims.session_id, claims.key_id) == (SESSION_ID, signer.kid)
    assert (claims.issued_at, claims.expires_at) == (NOW, NOW + seconds(TTL))


def test_issued_token_follows_rfc_9068_and_carries_roles_and_permissions() -> None:
    token = issued()
    assert jwt.get_unverified_header(token) == {
        "alg": "ES256",
        "typ": "at+jwt",
        "kid": SIGNER.kid,
    }
    claims = claims_of(token)
    assert claims["iss"] == ISSUER
    assert claims["sub"] == str(USER_ID)
    assert claims["aud"] == claims["client_id"] == str(TENANT_ID)
    assert claims["sid"] == str(SESSION_ID)
    assert (claims["iat"], claims["exp"]) == (NOW.timestamp(), NOW.timestamp() + TTL)
    assert claims["roles"] == ["ADMIN"]
    assert claims["permissions"] == ["users:read", "audit:read"]


def test_each_issued_token_has_its_own_token_id() -> None:
    assert read(issued()).token_id != read(issued()).token_id


def test_token_one_second_before_expiry_is_accepted() -> None:
    assert read(issued(), now=NOW + seconds(TTL - 1)).user_id == USER_ID


@pytest.mark.parametrize("after", [TTL, TTL + 3600], ids=["at-expiry", "hour-later"])
def test_expired_token_is_refused_with_reason_token_expired(after: int) -> None:
    error = refusal(issued(), now=NOW + seconds(after))
    assert error.extensions == {"code": "UNAUTHENTICATED", "reason": "TOKEN_EXPIRED"}


def test_token_issued_30_seconds_ahead_of_the_reader_is_accepted() -> None:
    assert read(issued(), now=NOW - seconds(30)).issued_at == NOW


def test_token_issued_31_seconds_ahead_of_the_reader_is_refused() -> None:
    error = refusal(issued(), now=NOW - seconds(31))
    assert error.extensions == {"code": "UNAUTHENTICATED"}


def test_token_of_another_issuer_is_refused() -> None:
    assert refusal(issued(), issuer="https://other.example.com").code == (
        "UNAUTHENTICATED"
    )


def test_token_of_a_key_no_longer_published_is_refused_as_unknown() -> None:
    with pytest.raises(UnknownKey):
        read(issued(), keys={})


def test_token_signed_like_the_app_does_is_accepted() -> None:
    assert read(signed(claims_of(issued()))).user_id == USER_ID


def test_foreign_key_claiming_a_published_kid_is_refused() -> None:
    foreign, _ = key_pair("ES256")
    forged = signed(claims_of(issued()), key=foreign, kid=SIGNER.kid)
    assert refusal(forged).code == "UNAUTHENTICATED"


def test_token_whose_kid_names_another_published_key_is_refused() -> None:
    other_signer, other_verifier = key_pair("ES256")
    keys = {VERIFIER.kid: VERIFIER, other_verifier.kid: other_verifier}
    forged = signed(claims_of(issued()), key=other_signer, kid=SIGNER.kid)
    assert refusal(forged, keys=keys).code == "UNAUTHENTICATED"


@pytest.mark.parametrize(
    "public_format",
    [serialization.PublicFormat.SubjectPublicKeyInfo, "jwk"],
    ids=["pem", "jwk-json"],
)
def test_hs256_signed_with_the_public_key_is_refused(public_format: object) -> None:
    # The classic confusion: a verifier that lets the token choose HMAC would
    # use the published public key, which everyone has, as the HMAC secret.
    public = VERIFIER.public_key
    if public_format == "jwk":
        secret = json.dumps(load_public_jwk_of(VERIFIER)).encode()
    else:
        secret = public.public_bytes(serialization.Encoding.PEM, public_format)  # type: ignore[arg-type]
    header = {"alg": "HS256", "typ": "at+jwt", "kid": SIGNER.kid}
    signing_input = f"{b64url_json(header)}.{b64url_json(claims_of(issued()))}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    assert refusal(f"{signing_input}.{b64url(mac)}").code == "UNAUTHENTICATED"


def load_public_jwk_of(key: VerificationKey) -> dict[str, Any]:
    public = key.public_key
    assert isinstance(public, ec.EllipticCurvePublicKey)
    return jwt.algorithms.ECAlgorithm.to_jwk(public, as_dict=True)


@pytest.mark.parametrize("signature", ["", "AAAA"], ids=["empty", "junk"])
def test_alg_none_is_refused(signature: str) -> None:
    header = {"alg": "none", "typ": "at+jwt", "kid": SIGNER.kid}
    token = f"{b64url_json(header)}.{b64url_json(claims_of(issued()))}.{signature}"
    assert refusal(token).code == "UNAUTHENTICATED"


def test_other_algorithm_than_the_named_keys_is_refused() -> None:
    rsa_signer, _ = key_pair("RS256")
    forged = signed(claims_of(issued()), key=rsa_signer, kid=SIGNER.kid)
    assert refusal(forged).code == "UNAUTHENTICATED"


def test_key_embedded_in_the_header_is_never_used() -> None:
    attacker, attacker_public = key_pair("ES256")
    embedded = load_public_jwk_of(attacker_public)
    forged = jwt.encode(
        claims_of(issued()),
        attacker.private_key,  # type: ignore[arg-type]
        algorithm="ES256",
        headers={"typ": "at+jwt", "kid": SIGNER.kid, "jwk": embedded},
    )
    assert refusal(forged).code == "UNAUTHENTICATED"


@pytest.mark.parametrize("typ", ["JWT", "refresh+jwt"])
def test_token_of_another_type_is_refused(typ: str) -> None:
    assert refusal(signed(claims_of(issued()), typ=typ)).code == "UNAUTHENTICATED"


@pytest.mark.parametrize("claim", ["iss", "aud", "sub", "sid", "iat", "exp", "jti"])
def test_token_missing_a_required_claim_is_refused(claim: str) -> None:
    claims = claims_of(issued())
    del claims[claim]
    assert refusal(signed(claims)).code == "UNAUTHENTICATED"


def test_token_longer_than_the_limit_is_refused_before_decoding() -> None:
    assert refusal("x" * 100_000).code == "UNAUTHENTICATED"


def test_header_changed_after_signing_is_refused() -> None:
    # The key is chosen by the header's kid before verifying: a header edited
    # to name another published key, another type or alg breaks the signature.
    _, other = key_pair("ES256")
    keys = {VERIFIER.kid: VERIFIER, other.kid: other}
    token = issued()
    _, payload, signature = token.split(".")
    for change in ({"kid": other.kid}, {"typ": "JWT"}, {"alg": "none"}):
        edited = {**jwt.get_unverified_header(token), **change}
        forged = f"{b64url_json(edited)}.{payload}.{signature}"
        assert refusal(forged, keys=keys).code == "UNAUTHENTICATED"


@pytest.mark.parametrize(
    "token",
    ["", "a.b", "a.b.c.d", "!!!.???.***", "e30.e30.", "W10.W10.x", "a" * 3000],
)
def test_malformed_tokens_are_refused(token: str) -> None:
    assert refusal(token).code == "UNAUTHENTICATED"
