"""auth/tokens.py as pure functions: secrets and "now" are parameters."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import jwt
import pytest

from auth.tokens import (
    TokenClaims,
    issue_access_token,
    key_id,
    read_access_token,
)
from errors import Unauthenticated

SECRET = "unit-secret-" + "s" * 40
PREVIOUS = "unit-previous-" + "p" * 40
NOW = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
TTL = 900
USER_ID = UUID("11111111-1111-4111-8111-111111111111")
TENANT_ID = UUID("22222222-2222-4222-8222-222222222222")
SESSION_ID = UUID("33333333-3333-4333-8333-333333333333")


def issued(*, secret: str = SECRET) -> str:
    return issue_access_token(
        user_id=USER_ID,
        tenant_id=TENANT_ID,
        session_id=SESSION_ID,
        secret=secret,
        ttl=TTL,
        now=NOW,
    )


def read(
    token: str,
    *,
    now: datetime = NOW,
    tenant_id: UUID = TENANT_ID,
    secrets: tuple[str, ...] = (SECRET,),
) -> TokenClaims:
    return read_access_token(token, tenant_id=tenant_id, secrets=secrets, now=now)


def refusal(
    token: str,
    *,
    now: datetime = NOW,
    tenant_id: UUID = TENANT_ID,
    secrets: tuple[str, ...] = (SECRET,),
) -> Unauthenticated:
    with pytest.raises(Unauthenticated) as caught:
        read(token, now=now, tenant_id=tenant_id, secrets=secrets)
    return caught.value


def seconds(n: int) -> timedelta:
    return timedelta(seconds=n)


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def signed(claims: dict[str, Any], *, secret: str = SECRET, **headers: str) -> str:
    """Claims signed as the app signs them, unless `headers` say otherwise."""
    all_headers = {"typ": "at+jwt", "kid": key_id(secret), **headers}
    return jwt.encode(claims, secret, algorithm="HS256", headers=all_headers)


def test_issued_token_reads_back_as_its_user_tenant_and_times() -> None:
    claims = read(issued())
    assert (claims.user_id, claims.tenant_id) == (USER_ID, TENANT_ID)
    assert claims.session_id == SESSION_ID
    assert (claims.issued_at, claims.expires_at) == (NOW, NOW + seconds(TTL))


def test_each_issued_token_has_its_own_token_id() -> None:
    assert read(issued()).token_id != read(issued()).token_id


def test_issued_token_header_names_its_type_and_key() -> None:
    assert jwt.get_unverified_header(issued()) == {
        "alg": "HS256",
        "typ": "at+jwt",
        "kid": key_id(SECRET),
    }


def test_token_one_second_before_expiry_is_accepted() -> None:
    assert read(issued(), now=NOW + seconds(TTL - 1)).user_id == USER_ID


@pytest.mark.parametrize("after", [TTL, TTL + 3600], ids=["at-expiry", "hour-later"])
def test_expired_token_is_refused_with_reason_token_expired(after: int) -> None:
    error = refusal(issued(), now=NOW + seconds(after))
    assert error.extensions == {"code": "UNAUTHENTICATED", "reason": "TOKEN_EXPIRED"}


def test_token_for_another_tenant_is_refused_without_a_reason() -> None:
    error = refusal(issued(), tenant_id=uuid4())
    assert error.extensions == {"code": "UNAUTHENTICATED"}


def test_token_issued_30_seconds_ahead_of_the_reader_is_accepted() -> None:
    assert read(issued(), now=NOW - seconds(30)).issued_at == NOW


def test_token_issued_31_seconds_ahead_of_the_reader_is_refused() -> None:
    error = refusal(issued(), now=NOW - seconds(31))
    assert error.extensions == {"code": "UNAUTHENTICATED"}


def test_token_of_a_previous_secret_is_accepted_while_listed() -> None:
    claims = read(issued(secret=PREVIOUS), secrets=(SECRET, PREVIOUS))
    assert claims.user_id == USER_ID


def test_token_of_a_secret_no_longer_listed_is_refused() -> None:
    assert refusal(issued(secret=PREVIOUS)).code == "UNAUTHENTICATED"


def test_token_signed_like_the_app_does_is_accepted() -> None:
    assert read(signed(claims_of(issued()))).user_id == USER_ID


def test_token_whose_kid_names_another_listed_secret_is_refused() -> None:
    forged = signed(claims_of(issued()), secret=PREVIOUS, kid=key_id(SECRET))
    assert refusal(forged, secrets=(SECRET, PREVIOUS)).code == "UNAUTHENTICATED"


@pytest.mark.parametrize("typ", ["JWT", "refresh+jwt"])
def test_token_of_another_type_is_refused(typ: str) -> None:
    assert refusal(signed(claims_of(issued()), typ=typ)).code == "UNAUTHENTICATED"


@pytest.mark.parametrize("claim", ["iss", "aud", "sub", "iat", "exp", "jti"])
def test_token_missing_a_required_claim_is_refused(claim: str) -> None:
    claims = claims_of(issued())
    del claims[claim]
    assert refusal(signed(claims)).code == "UNAUTHENTICATED"


def test_token_longer_than_the_limit_is_refused_before_decoding() -> None:
    assert refusal("x" * 100_000).code == "UNAUTHENTICATED"


def test_key_id_names_a_secret_without_containing_it() -> None:
    assert key_id(SECRET) == key_id(SECRET) != key_id(PREVIOUS)
    assert SECRET[:16] not in key_id(SECRET)


def b64url_json(value: dict[str, Any]) -> str:
    return jwt.utils.base64url_encode(jwt.utils.force_bytes(json.dumps(value))).decode()


def test_header_changed_after_signing_is_refused() -> None:
    # The secret is chosen by the header's kid before verifying: a header edited
    # to name another listed secret, or another type, breaks the signature.
    token = issued()
    _, payload, signature = token.split(".")
    for change in ({"kid": key_id(PREVIOUS)}, {"typ": "JWT"}, {"alg": "none"}):
        edited = {**jwt.get_unverified_header(token), **change}
        forged = f"{b64url_json(edited)}.{payload}.{signature}"
        assert refusal(forged, secrets=(SECRET, PREVIOUS)).code == "UNAUTHENTICATED"


@pytest.mark.parametrize(
    "token",
    ["", "a.b", "a.b.c.d", "!!!.???.***", "e30.e30.", "W10.W10.x", "a" * 3000],
)
def test_malformed_tokens_are_refused(token: str) -> None:
    assert refusal(token).code == "UNAUTHENTICATED"
