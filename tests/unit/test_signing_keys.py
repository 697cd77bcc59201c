"""auth/signing_keys.py: keys, their JWKs, and which key signs or is published when."""

import base64
from datetime import UTC, datetime, timedelta

import pytest

from auth.signing_keys import KeySchedule, StoredKey, generate_key, thumbprint

NOW = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
TTL = timedelta(minutes=15)
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "k"}


def key(name: str, *, signs_from: datetime, retired: bool = False) -> StoredKey:
    return StoredKey(
        kid=name,
        algorithm="ES256",
        public_jwk={"kid": name},
        sealed_private_key="sealed",
        signs_from=signs_from,
        retired_at=NOW if retired else None,
    )


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def schedule(*keys: StoredKey) -> KeySchedule:
    return KeySchedule.of(keys, token_ttl=TTL)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


@pytest.mark.parametrize(
    ("algorithm", "kty"), [("ES256", "EC"), ("EdDSA", "OKP"), ("RS256", "RSA")]
)
def test_public_jwk_names_itself_and_holds_no_private_member(
    algorithm: str, kty: str
) -> None:
    pem, jwk = generate_key(algorithm)
    assert "PRIVATE KEY" in pem
    assert (jwk["kty"], jwk["alg"], jwk["use"]) == (kty, algorithm, "sig")
    assert jwk["kid"] == thumbprint(jwk).hex()
    assert not PRIVATE_MEMBERS & set(jwk)


def test_thumbprint_covers_only_the_required_members_in_any_order() -> None:
    jwk = {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
    }
    # RFC 8037, appendix A.3: this key's RFC 7638 thumbprint.
    expected = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    assert b64url(thumbprint(jwk)) == expected
    reordered = {"use": "sig", "kid": "x", **dict(reversed(jwk.items()))}
    assert b64url(thumbprint(reordered)) == expected


def test_the_newest_key_whose_time_has_come_signs() -> None:
    old, current = key("old", signs_from=NOW - minutes(60)), key("new", signs_from=NOW)
    ahead = key("ahead", signs_from=NOW + minutes(10))
    assert schedule(ahead, old, current).signing_key(NOW) == current


def test_a_key_published_ahead_signs_once_its_time_comes() -> None:
    old, ahead = key("old", signs_from=NOW - minutes(60)), key("ahead", signs_from=NOW)
    keys = schedule(old, ahead)
    assert keys.signing_key(NOW - minutes(1)) == old
    assert keys.signing_key(NOW) == ahead
    assert keys.published(NOW - minutes(1)) == [old, ahead]


def test_a_replaced_key_stays_published_until_its_last_token_expires() -> None:
    old, new = key("old", signs_from=NOW - minutes(60)), key("new", signs_from=NOW)
    keys = schedule(old, new)
    assert keys.state(old, NOW + TTL - minutes(1)) == "published"
    assert keys.published(NOW + TTL - minutes(1)) == [old, new]
    assert keys.state(old, NOW + TTL) == "expired"
    assert keys.published(NOW + TTL) == [new]


def test_a_retired_key_is_neither_published_nor_signing() -> None:
    old = key("old", signs_from=NOW - minutes(60))
    retired = key("retired", signs_from=NOW - minutes(5), retired=True)
    keys = schedule(old, retired)
    assert keys.signing_key(NOW) == old
    assert keys.published(NOW) == [old]


def test_when_only_keys_ahead_remain_the_earliest_signs_at_once() -> None:
    # Retiring a compromised signing key must not leave the service unable to sign.
    first = key("first", signs_from=NOW + minutes(5))
    second = key("second", signs_from=NOW + minutes(9))
    keys = schedule(second, first)
    assert keys.signing_key(NOW) == first
    assert keys.state(second, NOW) == "next"


def test_no_keys_sign_nothing_and_publish_nothing() -> None:
    assert schedule().signing_key(NOW) is None
    assert schedule().jwks(NOW) == {"keys": []}
