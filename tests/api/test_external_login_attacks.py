"""Attacks on the ID token and the provider's answers (RFC 9700, OpenID
Connect Core 3.1.3.7): a hostile issuer on loopback publishes its own key and
answers the code with whatever ID token a test crafted; another never answers.
The real provider's flow is tested in test_external_login.py."""

import base64
import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import RSAKey

from auth.oidc import KEYS_REFRESH_SECONDS
from models import ExternalIdentity
from tests.api.test_external_login import (
    COMPLETE,
    START,
    START_LINK,
    identities,
    register,
)
from tests.conftest import Api, Result, make_environ
from tests.identity_providers import (
    APP_CALLBACK,
    CONFIDENTIAL,
    HostileIssuer,
    hanging_issuer,
    query_of,
    running_hostile_issuer,
    s256,
)
from tests.races import at_once, codes

Claims = dict[str, Any]
# Far past the 2-second deadline these tests run with; only a hang reaches it.
HANG_SECONDS = 60


@pytest.fixture
def hostile() -> Iterator[HostileIssuer]:
    with running_hostile_issuer() as issuer:
        yield issuer


def attempt(
    api: Api,
    hostile: HostileIssuer,
    craft: Callable[[Claims], Claims],
    provider: str | None = None,
) -> Result:
    """Start a login at the hostile issuer; complete it with a crafted token."""
    provider = provider or register(api, hostile.url)
    started = api.gql(START, {"provider": provider, "uri": APP_CALLBACK}).ok()
    sent = query_of(started["startExternalLogin"]["authorizationUrl"])
    hostile.claims = craft(
        hostile.good_claims(client_id=CONFIDENTIAL, nonce=sent["nonce"])
    )
    return api.gql(COMPLETE, {"code": "any-code", "state": sent["state"]})


def test_the_well_formed_token_of_the_hostile_issuer_signs_in(
    api: Api, hostile: HostileIssuer
) -> None:
    """The baseline: what the attacks below change is all that is wrong."""
    result = attempt(api, hostile, lambda claims: claims)
    assert result.ok()["completeExternalLogin"]["user"]["email"] == "ann@x.io"


def without(name: str) -> Callable[[Claims], Claims]:
    return lambda claims: {k: v for k, v in claims.items() if k != name}


def changed(**values: Any) -> Callable[[Claims], Claims]:
    return lambda claims: {**claims, **values}


@pytest.mark.parametrize(
    "craft",
    [
        changed(aud="another-client"),
        changed(aud=["another-client"]),
        changed(aud=[CONFIDENTIAL, "another-client"], azp="another-client"),
        changed(iss="https://accounts.example"),
        without("iss"),
        changed(exp=int(time.time()) - 3600),
        without("exp"),
        changed(nonce="another-nonce"),
        without("nonce"),
        without("sub"),
        changed(sub=""),
        changed(sub={"nested": "object"}),
    ],
    ids=[
        "wrong-aud",
        "wrong-aud-list",
        "azp-of-another",
        "wrong-iss",
        "no-iss",
        "expired",
        "no-exp",
        "wrong-nonce",
        "no-nonce",
        "no-sub",
        "empty-sub",
        "object-sub",
    ],
)
def test_a_token_with_a_wrong_claim_is_unauthenticated(
    api: Api, hostile: HostileIssuer, craft: Callable[[Claims], Claims]
) -> None:
    assert attempt(api, hostile, craft).error_code == "UNAUTHENTICATED"
    assert ExternalIdentity.select().count() == 0


def test_a_token_signed_with_a_foreign_key_claiming_its_kid_is_unauthenticated(
    api: Api, hostile: HostileIssuer
) -> None:
    hostile.signed_with = RSAKey.generate_key(
        2048, parameters={"kid": str(hostile.key.kid)}, private=True
    )
    assert attempt(api, hostile, lambda claims: claims).error_code == (
        "UNAUTHENTICATED"
    )


def unsigned(claims: Claims, alg: str) -> str:
    def part(value: Any) -> str:
        encoded = base64.urlsafe_b64encode(json.dumps(value).encode())
        return encoded.rstrip(b"=").decode()

    return f"{part({'alg': alg, 'typ': 'JWT'})}.{part(claims)}."


@pytest.mark.parametrize("alg", ["none", "HS256"])
def test_a_token_without_an_asymmetric_signature_is_unauthenticated(
    api: Api, hostile: HostileIssuer, alg: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        HostileIssuer, "id_token", lambda self: unsigned(self.claims, alg)
    )
    assert attempt(api, hostile, lambda claims: claims).error_code == (
        "UNAUTHENTICATED"
    )


def test_pkce_s256_binds_the_code_to_the_verifier_of_its_state(
    api: Api, hostile: HostileIssuer
) -> None:
    provider = register(api, hostile.url)
    url = api.gql(START, {"provider": provider, "uri": APP_CALLBACK}).ok()
    sent = query_of(url["startExternalLogin"]["authorizationUrl"])
    assert sent["code_challenge_method"] == "S256"
    assert sent["redirect_uri"] == APP_CALLBACK
    assert set(sent["scope"].split()) == {"openid", "email", "profile"}
    hostile.claims = hostile.good_claims(client_id=CONFIDENTIAL, nonce=sent["nonce"])
    api.gql(COMPLETE, {"code": "the-code", "state": sent["state"]}).ok()
    [request] = hostile.token_requests
    assert s256(request["code_verifier"]) == sent["code_challenge"]
    assert request["code"] == "the-code"
    assert request["redirect_uri"] == APP_CALLBACK
    assert request["grant_type"] == "authorization_code"


def test_a_token_of_a_new_key_refetches_the_keys_once(
    api: Api, hostile: HostileIssuer
) -> None:
    provider = register(api, hostile.url)
    attempt(api, hostile, lambda claims: claims, provider).ok()
    assert hostile.jwks_requests == 1
    time.sleep(KEYS_REFRESH_SECONDS)  # keys are refetched at most this often
    hostile.key = RSAKey.generate_key(
        2048, parameters={"kid": "hostile-2"}, private=True
    )
    craft = changed(sub="someone-else", email="new@x.io")
    result = attempt(api, hostile, craft, provider)
    assert result.ok()["completeExternalLogin"]["user"]["email"] == "new@x.io"
    assert hostile.jwks_requests == 2


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    """Overrides conftest's: a short deadline, so a hang ends the test soon."""
    return make_environ(tmp_path, USER_SERVICE_DATABASE_TIMEOUT="2")


def test_a_provider_that_never_answers_is_service_unavailable_in_time(
    api: Api,
) -> None:
    with hanging_issuer() as url, ThreadPoolExecutor(1) as pool:
        provider = register(api, url)
        answer = pool.submit(
            api.gql, START, {"provider": provider, "uri": APP_CALLBACK}
        )
        # Bounded, so a regression fails here instead of hanging the suite.
        result = answer.result(timeout=HANG_SECONDS)
    assert result.error_code == "SERVICE_UNAVAILABLE", result.body
    assert result.status == 503


def start_at(api: Api, hostile: HostileIssuer) -> dict[str, str]:
    """A login started at the hostile issuer, which accepts any code any number
    of times: only the service's own state check stands in the way of a replay."""
    provider = register(api, hostile.url)
    started = api.gql(START, {"provider": provider, "uri": APP_CALLBACK}).ok()
    sent = query_of(started["startExternalLogin"]["authorizationUrl"])
    hostile.claims = hostile.good_claims(client_id=CONFIDENTIAL, nonce=sent["nonce"])
    return sent


def test_a_replayed_state_is_refused_even_where_the_code_would_work_again(
    api: Api, hostile: HostileIssuer
) -> None:
    sent = start_at(api, hostile)
    complete = {"code": "any-code", "state": sent["state"]}
    api.gql(COMPLETE, complete).ok()
    assert api.gql(COMPLETE, complete).error_code == "UNAUTHENTICATED"
    assert len(hostile.token_requests) == 1  # the replay never reached the provider


def test_one_state_completed_by_many_at_once_lets_exactly_one_through(
    api: Api, hostile: HostileIssuer
) -> None:
    sent = start_at(api, hostile)
    complete = {"code": "any-code", "state": sent["state"]}
    results = at_once([lambda: api.gql(COMPLETE, complete)] * 12)
    assert codes(results) == {None: 1, "UNAUTHENTICATED": 11}
    assert len(hostile.token_requests) == 1


def test_a_redirect_from_the_issuer_is_not_followed(
    api: Api, hostile: HostileIssuer
) -> None:
    with running_hostile_issuer() as elsewhere:
        hostile.discovery_redirect = f"{elsewhere.url}/.well-known/openid-configuration"
        provider = register(api, hostile.url)
        result = api.gql(START, {"provider": provider, "uri": APP_CALLBACK})
        assert result.error_code == "SERVICE_UNAVAILABLE", result.body
        assert (hostile.discovery_requests, elsewhere.discovery_requests) == (1, 0)


@pytest.mark.parametrize(
    "metadata",
    [
        {"issuer": "https://accounts.example"},
        {"token_endpoint": "http://10.0.0.1/token"},
        {"jwks_uri": "file:///etc/passwd"},
    ],
    ids=["another-issuer", "plain-http-elsewhere", "file-url"],
)
def test_a_discovery_document_that_does_not_fit_is_not_used(
    api: Api, hostile: HostileIssuer, metadata: dict[str, str]
) -> None:
    hostile.metadata = metadata
    provider = register(api, hostile.url)
    result = api.gql(START, {"provider": provider, "uri": APP_CALLBACK})
    assert result.error_code == "SERVICE_UNAVAILABLE", result.body
    assert hostile.token_requests == []


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        ((400, b'{"error": "invalid_grant"}'), "UNAUTHENTICATED"),
        ((401, b'{"error": "invalid_client"}'), "UNAUTHENTICATED"),
        ((200, b'{"error": "access_denied"}'), "UNAUTHENTICATED"),
        ((200, b"[1, 2]"), "UNAUTHENTICATED"),
        ((200, b"<html>"), "UNAUTHENTICATED"),
        ((200, b'{"access_token": "x"}'), "UNAUTHENTICATED"),
        ((503, b"<html>busy</html>"), "SERVICE_UNAVAILABLE"),
    ],
    ids=[
        "invalid-grant",
        "invalid-client",
        "error-with-200",
        "json-list",
        "not-json",
        "no-id-token",
        "outage",
    ],
)
def test_a_token_endpoint_that_refuses_or_fails_answers_a_contract_error(
    api: Api, hostile: HostileIssuer, answer: tuple[int, bytes], code: str
) -> None:
    hostile.token_answer = answer
    result = attempt(api, hostile, lambda claims: claims)
    assert result.error_code == code, result.body
    assert ExternalIdentity.select().count() == 0


@pytest.mark.parametrize(
    "email",
    ["not an email", "ann@x.io\x00", "a" * 300 + "@x.io", ["ann@x.io"]],
    ids=["no-at", "nul", "too-long", "list"],
)
def test_a_link_keeps_the_providers_email_only_when_it_is_valid(
    api: Api, hostile: HostileIssuer, email: object
) -> None:
    """A provider's word on an email is shown with the link and may be searched
    by: what the service would never accept as an email is not stored."""
    provider = register(api, hostile.url)
    token = api.user("kim@x.io")
    started = api.gql(
        START_LINK, {"provider": provider, "uri": APP_CALLBACK}, token=token
    ).ok()
    sent = query_of(started["startExternalLink"]["authorizationUrl"])
    claims = hostile.good_claims(client_id=CONFIDENTIAL, nonce=sent["nonce"])
    hostile.claims = {**claims, "email": email}
    api.gql(COMPLETE, {"code": "any-code", "state": sent["state"]}, token=token).ok()
    assert identities(api, token) == [
        {"provider": {"name": "Corp SSO"}, "subject": "hostile-subject", "email": None}
    ]
