"""Attacks on access tokens through HTTP: SECURITY.md section D (D8 lives with
the settings tests). The tests read the service's signing key from its
database, so they can forge tokens the service would sign."""

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from uuid import uuid4

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from auth.signing_keys import generate_key, load_private_key
from auth.tokens import SigningKey
from models import User
from tests.conftest import Api, Result, make_environ, service_signing_key

ANN = "ann@x.io"
ME = "{ me { email } }"


@pytest.fixture
def environ(tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, str]:
    """conftest's environment, plus overrides from indirect parametrization."""
    return make_environ(tmp_path, **getattr(request, "param", {}))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value).encode())


def hand_built(header: dict[str, Any], payload: dict[str, Any], signature: str) -> str:
    return f"{b64json(header)}.{b64json(payload)}.{signature}"


def hmac_signed(
    header: dict[str, Any], payload: dict[str, Any], *, secret: bytes, digest: Any
) -> str:
    signing_input = f"{b64json(header)}.{b64json(payload)}"
    mac = hmac.new(secret, signing_input.encode(), digest).digest()
    return f"{signing_input}.{b64url(mac)}"


def attacker_key() -> SigningKey:
    pem, jwk = generate_key("ES256")
    return SigningKey(jwk["kid"], "ES256", load_private_key(pem))


def forge(
    payload: dict[str, Any], *, key: SigningKey | None = None, **headers: Any
) -> str:
    """A token signed as the app signs (its key, typ and kid), overridable."""
    key = key or service_signing_key()
    return jwt.encode(
        payload,
        key.private_key,  # type: ignore[arg-type]
        algorithm=key.algorithm,
        headers={"typ": "at+jwt", "kid": service_signing_key().kid, **headers},
    )


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def app_header(alg: str) -> dict[str, Any]:
    return {"alg": alg, "typ": "at+jwt", "kid": service_signing_key().kid}


def public_pem() -> bytes:
    public = service_signing_key().private_key.public_key()
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def fresh_claims(api: Api, email: str = ANN) -> dict[str, Any]:
    """Valid claims for a new account, taken from a token the service issued."""
    return claims_of(api.user(email))


def me_email(api: Api, token: str) -> str:
    return str(api.me(token).ok()["me"]["email"])


def send(api: Api, headers: list[tuple[str, str]], url: str = "/graphql") -> Result:
    response = api.client.post(
        url, json={"query": ME}, headers=[("X-API-Key", api.api_key), *headers]
    )
    return Result(response.status_code, response.json(), response.headers)


def assert_refused(result: Result) -> None:
    assert (result.status, result.error_code, result.data) == (
        200,
        "UNAUTHENTICATED",
        None,
    )


# The forging helpers work: a forged token with valid claims is accepted, so the
# refusals below are about the attack and not about the forgery.


def test_forged_token_with_valid_claims_and_headers_is_accepted(api: Api) -> None:
    assert me_email(api, forge(fresh_claims(api))) == ANN


# D1: only the named key's own algorithm is accepted.


@pytest.mark.parametrize("alg", ["none", "None", "noNE", "NONE"])
def test_unsigned_token_with_alg_none_is_unauthenticated(api: Api, alg: str) -> None:
    token = hand_built(app_header(alg), fresh_claims(api), "")
    assert_refused(api.me(token))


@pytest.mark.parametrize(
    ("alg", "digest"),
    [("HS256", hashlib.sha256), ("HS512", hashlib.sha512), ("hs256", hashlib.sha256)],
)
def test_hmac_token_keyed_with_the_published_public_key_is_unauthenticated(
    api: Api, alg: str, digest: Any
) -> None:
    # Everyone has the public key: a verifier that let the token pick HMAC would
    # take it for the secret.
    claims = fresh_claims(api)
    token = hmac_signed(app_header(alg), claims, secret=public_pem(), digest=digest)
    assert_refused(api.me(token))


def test_hmac_token_keyed_with_the_published_jwk_is_unauthenticated(
    api: Api,
) -> None:
    jwks = api.client.get("/.well-known/jwks.json").json()
    secret = json.dumps(jwks["keys"][0]).encode()
    token = hmac_signed(
        app_header("HS256"), fresh_claims(api), secret=secret, digest=hashlib.sha256
    )
    assert_refused(api.me(token))


def test_rs256_token_with_an_attacker_signature_is_unauthenticated(api: Api) -> None:
    # The kid names the service's ES256 key: RS256 is not its algorithm.
    signature = b64url(hashlib.sha512(b"attacker").digest() * 6)
    token = hand_built(app_header("RS256"), fresh_claims(api), signature)
    assert_refused(api.me(token))


# D2: the signature is always verified.


def test_token_with_stripped_signature_is_unauthenticated(api: Api) -> None:
    header, payload, _ = api.user(ANN).split(".")
    assert_refused(api.me(f"{header}.{payload}."))


def test_token_with_two_parts_is_unauthenticated(api: Api) -> None:
    header, payload, _ = api.user(ANN).split(".")
    assert_refused(api.me(f"{header}.{payload}"))


def test_token_with_one_flipped_signature_byte_is_unauthenticated(api: Api) -> None:
    header, payload, signature = api.user(ANN).split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=="))
    raw[0] ^= 0x01
    assert_refused(api.me(f"{header}.{payload}.{b64url(bytes(raw))}"))


def with_edited_payload(token: str, **edits: Any) -> str:
    """The token's header and signature around a payload with `edits`."""
    header, _, signature = token.split(".")
    return f"{header}.{b64json({**claims_of(token), **edits})}.{signature}"


@pytest.mark.parametrize(
    "edits",
    [{"role": "ADMIN"}, {"aud": str(uuid4())}, {"exp": 4_102_444_800}],
    ids=["role", "aud", "exp"],
)
def test_edited_payload_with_the_old_signature_is_unauthenticated(
    api: Api, edits: dict[str, Any]
) -> None:
    assert_refused(api.me(with_edited_payload(api.user(ANN), **edits)))


def test_payload_edited_to_another_user_is_unauthenticated(api: Api) -> None:
    bob = claims_of(api.user("bob@x.io"))["sub"]
    assert_refused(api.me(with_edited_payload(api.user(ANN), sub=bob)))


def test_token_signed_with_a_foreign_key_under_the_real_kid_is_unauthenticated(
    api: Api,
) -> None:
    token = forge(fresh_claims(api), key=attacker_key())
    assert_refused(api.me(token))


# D3: time claims are enforced and exp is required.


def test_token_expired_one_second_ago_is_unauthenticated_with_reason(
    api: Api,
) -> None:
    claims = fresh_claims(api)
    result = api.me(forge({**claims, "exp": int(time.time()) - 1}))
    assert_refused(result)
    assert result.extensions["reason"] == "TOKEN_EXPIRED"


def test_token_without_exp_is_unauthenticated(api: Api) -> None:
    claims = fresh_claims(api)
    del claims["exp"]
    assert_refused(api.me(forge(claims)))


@pytest.mark.parametrize(
    ("claim", "ahead"), [("nbf", 600), ("iat", 3600)], ids=["nbf", "iat"]
)
def test_token_valid_only_in_the_future_is_unauthenticated(
    api: Api, claim: str, ahead: int
) -> None:
    claims = {**fresh_claims(api), claim: int(time.time()) + ahead}
    assert_refused(api.me(forge(claims)))


@pytest.mark.parametrize(
    "environ", [{"USER_SERVICE_ACCESS_TOKEN_TTL": "2"}], indirect=True
)
def test_token_is_refused_as_expired_once_its_ttl_has_passed(api: Api) -> None:
    token = api.user(ANN)
    assert me_email(api, token) == ANN
    time.sleep(3)
    result = api.me(token)
    assert_refused(result)
    assert result.extensions["reason"] == "TOKEN_EXPIRED"


# D4 / A4: a token is bound to its tenant.


def test_token_of_tenant_a_with_the_key_of_tenant_b_is_unauthenticated(
    api: Api, admin_api: Api
) -> None:
    token_of_a = admin_api.token("boss@acme.io")
    assert_refused(api.me(token_of_a))


def test_forged_token_for_tenant_b_naming_a_user_of_a_is_unauthenticated(
    api: Api, admin_api: Api
) -> None:
    tenant_b = fresh_claims(api, "someone@x.io")["aud"]
    user_of_a = claims_of(admin_api.token("boss@acme.io"))
    token = forge({**user_of_a, "aud": tenant_b})
    assert_refused(api.me(token))


# D5: roles and accounts are read on every request.


def test_admin_token_after_demotion_by_another_admin_is_forbidden(
    admin_api: Api,
) -> None:
    boss = admin_api.token("boss@acme.io")
    admin_api.sign_up("second@acme.io", role="ADMIN", token=boss).ok()
    second = admin_api.token("second@acme.io")
    admin_api.update_profile(second, email="boss@acme.io", role="USER").ok()
    new_admin = admin_api.sign_up("new@acme.io", role="ADMIN", token=boss)
    assert new_admin.error_code == "FORBIDDEN"
    edit = admin_api.update_profile(boss, email="second@acme.io", city="Oslo")
    assert edit.error_code == "FORBIDDEN"


def test_token_of_a_deleted_account_is_unauthenticated(api: Api) -> None:
    token = api.user(ANN)
    User.delete().where(User.id == claims_of(token)["sub"]).execute()
    assert_refused(api.me(token))


# D6: only access tokens (typ at+jwt) are accepted.


@pytest.mark.parametrize("typ", [None, "JWT", "refresh+jwt"], ids=str)
def test_validly_signed_token_of_another_typ_is_unauthenticated(
    api: Api, typ: str | None
) -> None:
    assert_refused(api.me(forge(fresh_claims(api), typ=typ)))


# D7: key hints in the header are never followed.


@pytest.fixture
def listener() -> Iterator[tuple[str, list[str]]]:
    """A loopback HTTP server that records every request it gets."""
    received: list[str] = []

    class Recorder(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            received.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.mark.parametrize("kid", ["../../../dev/null", "' OR 1=1 --", ""])
def test_token_with_a_crafted_kid_is_unauthenticated(api: Api, kid: str) -> None:
    assert_refused(api.me(forge(fresh_claims(api), kid=kid)))


@pytest.mark.parametrize("hint", ["jku", "x5u"])
def test_token_pointing_at_a_remote_key_is_unauthenticated_and_never_fetched(
    api: Api, listener: tuple[str, list[str]], hint: str
) -> None:
    url, received = listener
    token = forge(
        fresh_claims(api), key=attacker_key(), kid="attacker", **{hint: f"{url}/jwks"}
    )
    assert_refused(api.me(token))
    assert received == []


@pytest.mark.parametrize("kid", ["attacker", None], ids=["own-kid", "real-kid"])
def test_token_with_an_embedded_jwk_is_unauthenticated(
    api: Api, kid: str | None
) -> None:
    pem, jwk = generate_key("ES256")
    key = SigningKey(jwk["kid"], "ES256", load_private_key(pem))
    kid = kid or service_signing_key().kid
    token = forge(fresh_claims(api), key=key, kid=kid, jwk=jwk)
    assert_refused(api.me(token))


# D9: garbage in the Authorization header is refused, never a 500.


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer " + "A" * 100_000,
        "Bearer !!!.@@@.###",
        "Bearer not-a-jwt",
        "Bearer",
        "Bearer ",
        "Basic YW5uQHguaW86czNjcmV0LVB3IQ==",
        "bearer-without-space",
    ],
    ids=["100kb", "non-base64", "one-part", "no-token", "empty", "basic", "no-space"],
)
def test_garbage_authorization_header_is_unauthenticated(
    api: Api, authorization: str
) -> None:
    assert_refused(send(api, [("Authorization", authorization)]))


def test_two_authorization_headers_are_unauthenticated(api: Api) -> None:
    token = api.user(ANN)
    bearer = ("Authorization", f"Bearer {token}")
    assert_refused(send(api, [bearer, bearer]))


# D10: a token in the URL is ignored.


def test_access_token_in_the_query_string_is_ignored(api: Api) -> None:
    token = api.user(ANN)
    assert_refused(send(api, [], url=f"/graphql?access_token={token}"))


# D11: the token carries what RFC 9068 asks, and what the user may do.


def test_issued_token_holds_rfc_9068_claims_and_typed_header(api: Api) -> None:
    api.sign_up(ANN, city="Oslo").ok()
    payload = api.login(ANN).ok()["login"]
    token = payload["accessToken"]
    claims = claims_of(token)
    assert set(claims) == {
        *("iss", "aud", "sub", "client_id", "iat", "exp", "jti", "sid"),
        *("roles", "permissions"),
    }
    assert claims["iss"] == "http://127.0.0.1:8000"
    assert claims["sub"] == payload["user"]["id"]
    assert claims["exp"] - claims["iat"] == 900
    assert (claims["roles"], claims["permissions"]) == (["USER"], [])
    assert jwt.get_unverified_header(token) == {
        "alg": "ES256",
        "typ": "at+jwt",
        "kid": service_signing_key().kid,
    }


def test_admin_token_carries_every_service_permission(admin_api: Api) -> None:
    claims = claims_of(admin_api.token("boss@acme.io"))
    assert claims["roles"] == ["ADMIN"]
    assert claims["permissions"] == [
        *("users:read", "users:write", "users:deactivate", "roles:manage"),
        *("sessions:revoke", "mfa:reset", "audit:read", "identity-providers:manage"),
    ]
