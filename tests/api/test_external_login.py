"""Sign-in through a tenant's OpenID Connect provider, against a real one:
panva's oidc-provider in Node on loopback, its login and consent pages driven
like a browser (CONTRACT.md "Sign-in through a tenant's identity provider";
issue 16). The crafted-token attacks are in test_external_login_attacks.py."""

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from peewee import fn

from models import AuditEvent, ExternalIdentity, Passkey, Session, Tenant, User
from models.db import utcnow
from provisioning import add_identity_provider
from tests.api.test_mfa import enroll, verify
from tests.api.test_passkeys import MY_PASSKEYS, REMOVE, relying_party
from tests.api.test_passkeys import register as register_passkey
from tests.conftest import PASSWORD, Api, Result
from tests.identity_providers import (
    APP_CALLBACK,
    CLIENT_SECRET,
    CONFIDENTIAL,
    PUBLIC,
    authorize,
    running_openid_provider,
)
from tests.races import at_once, codes

START = """mutation($provider: ID!, $uri: String!) {
  startExternalLogin(provider: $provider, redirectUri: $uri) { authorizationUrl } }"""
START_LINK = """mutation($provider: ID!, $uri: String!) {
  startExternalLink(provider: $provider, redirectUri: $uri) { authorizationUrl } }"""
COMPLETE = """mutation($code: String!, $state: String!) {
  completeExternalLogin(code: $code, state: $state) {
    accessToken refreshToken
    user { id email emailVerified }
  } }"""
IDENTITIES = "{ me { externalIdentities { provider { name } subject email } } }"
UNLINK = """mutation($provider: ID!) { unlinkExternalIdentity(provider: $provider) {
  email externalIdentities { subject } } }"""
PROVIDERS = "{ identityProviders { id name } }"


@pytest.fixture(scope="module")
def issuer() -> Iterator[str]:
    with running_openid_provider() as issuer:
        yield issuer


def register(
    api: Api,
    issuer: str,
    *,
    tenant: str = "dev",
    name: str = "Corp SSO",
    allow_sign_up: bool = True,
    public: bool = False,
) -> str:
    """Register the provider for `tenant`, as `idp add` does; return its id."""
    found = Tenant.by_name(tenant)
    assert found is not None
    provider = add_identity_provider(
        api.settings,
        found,
        name=name,
        issuer=issuer,
        client_id=PUBLIC if public else CONFIDENTIAL,
        client_secret=None if public else CLIENT_SECRET,
        redirect_uris=[APP_CALLBACK],
        allow_sign_up=allow_sign_up,
    )
    return str(provider.id)


def start(api: Api, provider: str, *, token: str | None = None) -> str:
    document = START_LINK if token else START
    data = api.gql(document, {"provider": provider, "uri": APP_CALLBACK}, token=token)
    field = "startExternalLink" if token else "startExternalLogin"
    return str(data.ok()[field]["authorizationUrl"])


def complete(api: Api, back: dict[str, str], *, token: str | None = None) -> Result:
    return api.gql(
        COMPLETE, {"code": back["code"], "state": back["state"]}, token=token
    )


def identities(api: Api, token: str) -> list[dict[str, object]]:
    return list(api.gql(IDENTITIES, token=token).ok()["me"]["externalIdentities"])


def sign_in(api: Api, provider: str, account: str, **kwargs: str) -> Result:
    return complete(api, authorize(start(api, provider), account), **kwargs)


def test_identity_providers_lists_the_tenants_own_for_the_login_page(
    api: Api, issuer: str
) -> None:
    provider = register(api, issuer)
    api.tenant("other")
    assert api.gql(PROVIDERS).ok() == {
        "identityProviders": [{"id": provider, "name": "Corp SSO"}]
    }
    assert api.tenant("third").gql(PROVIDERS).ok() == {"identityProviders": []}


@pytest.mark.parametrize("public", [False, True], ids=["confidential", "public"])
def test_sign_up_through_the_provider_makes_a_verified_account_without_password(
    api: Api, issuer: str, public: bool
) -> None:
    provider = register(api, issuer, public=public)
    payload = sign_in(api, provider, "ann").ok()["completeExternalLogin"]
    assert payload["user"] == {
        "id": payload["user"]["id"],
        "email": "ann@x.io",
        "emailVerified": True,
    }
    assert identities(api, payload["accessToken"]) == [
        {"provider": {"name": "Corp SSO"}, "subject": "ann", "email": "ann@x.io"}
    ]
    assert api.me(payload["accessToken"]).ok()["me"]["email"] == "ann@x.io"
    # No password was set, so none logs in.
    assert api.login("ann@x.io", PASSWORD).error_code == "UNAUTHENTICATED"
    data = json.loads(
        api.gql("{ myData }", token=payload["accessToken"]).ok()["myData"]
    )
    assert data["factors"]["password"] is False
    assert data["externalIdentities"] == [
        {
            "provider": "Corp SSO",
            "subject": "ann",
            "email": "ann@x.io",
            "linkedAt": data["externalIdentities"][0]["linkedAt"],
        }
    ]


def test_a_linked_identity_signs_in_to_the_same_account_again(
    api: Api, issuer: str
) -> None:
    provider = register(api, issuer)
    first = sign_in(api, provider, "ann").ok()["completeExternalLogin"]["user"]["id"]
    again = sign_in(api, provider, "ann").ok()["completeExternalLogin"]["user"]["id"]
    assert again == first


def test_a_state_works_once(api: Api, issuer: str) -> None:
    provider = register(api, issuer)
    back = authorize(start(api, provider), "ann")
    complete(api, back).ok()
    assert complete(api, back).error_code == "UNAUTHENTICATED"


def test_a_used_code_does_not_work_with_a_new_state(api: Api, issuer: str) -> None:
    provider = register(api, issuer)
    used = authorize(start(api, provider), "ann")
    complete(api, used).ok()
    fresh = authorize(start(api, provider), "ann")
    replayed = complete(api, {"code": used["code"], "state": fresh["state"]})
    assert replayed.error_code == "UNAUTHENTICATED"


def test_a_tampered_code_is_unauthenticated(api: Api, issuer: str) -> None:
    provider = register(api, issuer)
    back = authorize(start(api, provider), "ann")
    tampered = back["code"][:-2] + ("AA" if back["code"][-2:] != "AA" else "BB")
    assert complete(api, {**back, "code": tampered}).error_code == "UNAUTHENTICATED"


def test_a_state_of_another_tenant_is_refused_and_stays_good_for_its_own(
    api: Api, issuer: str
) -> None:
    provider = register(api, issuer)
    back = authorize(start(api, provider), "ann")
    other = api.tenant("other")
    assert complete(other, back).error_code == "UNAUTHENTICATED"
    complete(api, back).ok()


@pytest.mark.parametrize(
    "uri",
    [
        APP_CALLBACK + "/evil",
        APP_CALLBACK + "?next=https://evil.example",
        APP_CALLBACK[:-1],
        APP_CALLBACK.replace("app.example", "app.example.evil.example"),
        APP_CALLBACK.upper(),
        "https://evil.example/auth/callback",
    ],
    ids=["suffix", "query", "prefix", "host-suffix", "case", "other-host"],
)
def test_a_redirect_uri_not_registered_exactly_is_bad_user_input(
    api: Api, issuer: str, uri: str
) -> None:
    provider = register(api, issuer)
    token = api.user("bob@x.io")
    for document, caller in ((START, None), (START_LINK, token)):
        result = api.gql(document, {"provider": provider, "uri": uri}, token=caller)
        assert result.error_code == "BAD_USER_INPUT", result.body
        assert result.extensions["fields"] == {
            "redirectUri": "Not a registered redirect URI."
        }


def test_another_tenants_provider_is_not_found(api: Api, issuer: str) -> None:
    provider = register(api, issuer)
    other = api.tenant("other")
    result = other.gql(START, {"provider": provider, "uri": APP_CALLBACK})
    assert result.error_code == "NOT_FOUND"
    assert other.gql(START, {"provider": "junk", "uri": APP_CALLBACK}).error_code == (
        "NOT_FOUND"
    )


def test_without_sign_up_an_unknown_user_is_not_found(api: Api, issuer: str) -> None:
    provider = register(api, issuer, allow_sign_up=False)
    assert sign_in(api, provider, "ann").error_code == "NOT_FOUND"


def test_a_squatters_unverified_account_is_never_linked(api: Api, issuer: str) -> None:
    provider = register(api, issuer)
    api.sign_up("victim@x.io").ok()  # a squatter's: the email was never verified
    assert sign_in(api, provider, "vic").error_code == "EMAIL_TAKEN"
    assert ExternalIdentity.select().count() == 0


def test_an_email_the_provider_has_not_verified_is_never_linked(
    admin_api: Api, issuer: str
) -> None:
    provider = register(admin_api, issuer, tenant="acme")
    # The ADMIN's address is verified here; the provider does not vouch for it.
    admin_api.user("victim@x.io")
    User.update(email_verified=True).where(User.email == "victim@x.io").execute()
    assert sign_in(admin_api, provider, "eve").error_code == "EMAIL_TAKEN"
    assert ExternalIdentity.select().count() == 0


def test_an_email_verified_on_both_sides_is_linked_and_audited(
    admin_api: Api, issuer: str
) -> None:
    provider = register(admin_api, issuer, tenant="acme")
    boss_id = admin_api.me(admin_api.token("boss@acme.io")).ok()["me"]["id"]
    payload = sign_in(admin_api, provider, "boss").ok()["completeExternalLogin"]
    assert payload["user"]["id"] == boss_id
    actions = [event.action for event in AuditEvent.select().order_by(AuditEvent.id)]
    assert actions[-2:] == ["EXTERNAL_IDENTITY_LINKED", "LOGIN_SUCCEEDED"]


def test_mfa_applies_to_an_external_login(admin_api: Api, issuer: str) -> None:
    provider = register(admin_api, issuer, tenant="acme")
    token = admin_api.token("boss@acme.io")
    _, recovery_codes = enroll(admin_api, token)
    result = sign_in(admin_api, provider, "boss")
    assert result.error_code == "MFA_REQUIRED", result.body
    assert result.data is None
    # The TOTP step was spent by confirmTotp: a recovery code finishes it.
    finished = verify(admin_api, result.extensions["mfaToken"], recovery_codes[0])
    assert finished.ok()["verifyMfa"]["accessToken"]


def test_a_link_flow_links_to_the_caller_and_needs_its_token(
    api: Api, issuer: str
) -> None:
    provider = register(api, issuer, allow_sign_up=False)
    token = api.user("someone@y.io")
    back = authorize(start(api, provider, token=token), "bob")
    assert complete(api, back).error_code == "UNAUTHENTICATED"  # no token: refused
    back = authorize(start(api, provider, token=token), "bob")
    payload = complete(api, back, token=token).ok()["completeExternalLogin"]
    assert payload["user"]["email"] == "someone@y.io"
    assert identities(api, token)[0]["subject"] == "bob"
    # bob now signs in to that account, whatever its email.
    again = sign_in(api, provider, "bob").ok()["completeExternalLogin"]
    assert again["user"]["email"] == "someone@y.io"


def test_linking_needs_a_login_of_the_last_10_minutes(api: Api, issuer: str) -> None:
    provider = register(api, issuer)
    token = api.user("someone@y.io")
    Session.update(created_at=utcnow() - timedelta(minutes=11)).execute()
    stale = api.gql(
        START_LINK, {"provider": provider, "uri": APP_CALLBACK}, token=token
    )
    assert stale.error_code == "UNAUTHENTICATED", stale.body
    fresh = api.token("someone@y.io")
    back = authorize(start(api, provider, token=fresh), "bob")
    assert complete(api, back, token=fresh).ok()


def test_an_account_without_password_keeps_its_last_way_in(
    api: Api, issuer: str
) -> None:
    provider = register(api, issuer)
    token = sign_in(api, provider, "ann").ok()["completeExternalLogin"]["accessToken"]
    result = api.gql(UNLINK, {"provider": provider}, token=token)
    assert result.error_code == "FORBIDDEN", result.body
    assert ExternalIdentity.select().count() == 1


def test_a_passkey_is_a_way_in_too(api: Api, issuer: str) -> None:
    """Of an account without a password, the identity goes while a passkey is
    left, and the passkey goes while the identity is linked: never both."""
    relying_party()
    provider = register(api, issuer)
    token = sign_in(api, provider, "ann").ok()["completeExternalLogin"]["accessToken"]
    register_passkey(api, token)
    [passkey] = api.gql(MY_PASSKEYS, token=token).ok()["me"]["passkeys"]
    assert api.gql(REMOVE, {"id": passkey["id"]}, token=token).ok()
    register_passkey(api, token)
    assert api.gql(UNLINK, {"provider": provider}, token=token).ok()
    [passkey] = api.gql(MY_PASSKEYS, token=token).ok()["me"]["passkeys"]
    last = api.gql(REMOVE, {"id": passkey["id"]}, token=token)
    assert last.error_code == "FORBIDDEN", last.body
    assert Passkey.select().count() == 1


def test_an_account_with_a_password_may_unlink(admin_api: Api, issuer: str) -> None:
    provider = register(admin_api, issuer, tenant="acme")
    sign_in(admin_api, provider, "boss").ok()
    token = admin_api.token("boss@acme.io")
    unlinked = admin_api.gql(UNLINK, {"provider": provider}, token=token).ok()
    assert unlinked == {
        "unlinkExternalIdentity": {"email": "boss@acme.io", "externalIdentities": []}
    }
    again = admin_api.gql(UNLINK, {"provider": provider}, token=token)
    assert again.error_code == "NOT_FOUND"


def test_deleting_the_account_removes_its_identities(
    admin_api: Api, issuer: str
) -> None:
    provider = register(admin_api, issuer, tenant="acme")
    sign_in(admin_api, provider, "boss").ok()
    admin_api.user("second@acme.io")  # roles:manage must stay with someone
    User.update(role="ADMIN").where(User.email == "second@acme.io").execute()
    token = admin_api.token("boss@acme.io")
    deleted = admin_api.gql(
        "mutation($p: String!) { deleteAccount(password: $p) }",
        {"p": PASSWORD},
        token=token,
    )
    assert deleted.ok() == {"deleteAccount": True}
    assert ExternalIdentity.select().count() == 0


def test_concurrent_completions_of_one_state_let_exactly_one_through(
    api: Api, issuer: str
) -> None:
    provider = register(api, issuer)
    back = authorize(start(api, provider), "ann")
    results = at_once([lambda: complete(api, back)] * 8)
    assert codes(results) == {None: 1, "UNAUTHENTICATED": 7}


DELETE_ACCOUNT = "mutation($password: String!) { deleteAccount(password: $password) }"


def test_an_account_without_password_is_deleted_within_minutes_of_its_login(
    api: Api, issuer: str
) -> None:
    provider = register(api, issuer)
    stale = sign_in(api, provider, "ann").ok()["completeExternalLogin"]["accessToken"]
    fresh = sign_in(api, provider, "ann").ok()["completeExternalLogin"]["accessToken"]
    an_hour_ago = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=1)
    oldest = Session.select(fn.MIN(Session.created_at)).scalar()
    Session.update(created_at=an_hour_ago).where(Session.created_at == oldest).execute()
    refused = api.gql(DELETE_ACCOUNT, {"password": ""}, token=stale)
    assert refused.error_code == "UNAUTHENTICATED"
    deleted = api.gql(DELETE_ACCOUNT, {"password": ""}, token=fresh)
    assert deleted.ok() == {"deleteAccount": True}
    assert ExternalIdentity.select().count() == 0
    assert sign_in(api, provider, "ann").ok()  # signs up anew


def test_an_identity_linked_to_one_account_is_never_linked_to_another(
    api: Api, issuer: str
) -> None:
    provider = register(api, issuer, allow_sign_up=False)
    first, second = api.user("first@y.io"), api.user("second@y.io")
    linked = authorize(start(api, provider, token=first), "bob")
    complete(api, linked, token=first).ok()
    again = authorize(start(api, provider, token=second), "bob")
    assert complete(api, again, token=second).error_code == "FORBIDDEN"
    assert identities(api, second) == []
    payload = sign_in(api, provider, "bob").ok()["completeExternalLogin"]
    assert payload["user"]["email"] == "first@y.io"
