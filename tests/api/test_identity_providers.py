"""addIdentityProvider and removeIdentityProvider: the tenant's OpenID Connect
providers, managed through GraphQL with `identity-providers:manage`."""

from typing import Any

import pytest

from auth.sealing import unseal
from models import AuditEvent, IdentityProvider, User
from tests.api.test_external_login import COMPLETE, START
from tests.conftest import DATA_KEY, Api, Result
from tests.identity_providers import (
    APP_CALLBACK,
    query_of,
    running_hostile_issuer,
)

ADD = """mutation($input: AddIdentityProviderInput!) {
  addIdentityProvider(input: $input) { id name } }"""
REMOVE = "mutation($id: ID!) { removeIdentityProvider(provider: $id) }"
BOSS = "boss@acme.io"
SECRET = "a-client-secret"


def provider_input(**changes: Any) -> dict[str, Any]:
    return {
        "name": "Acme SSO",
        "issuer": "https://idp.example.com/realms/acme",
        "clientId": "user-service",
        "clientSecret": SECRET,
        "redirectUris": [APP_CALLBACK],
        "allowSignUp": True,
        **changes,
    }


def add(api: Api, token: str | None, **changes: Any) -> Result:
    return api.gql(ADD, {"input": provider_input(**changes)}, token=token)


def test_an_admin_adds_a_provider_whose_secret_is_sealed(admin_api: Api) -> None:
    token = admin_api.token(BOSS)
    added = add(admin_api, token).ok()["addIdentityProvider"]
    assert added["name"] == "Acme SSO"
    assert admin_api.gql("{ identityProviders { id name } }").ok() == {
        "identityProviders": [added]
    }
    row = IdentityProvider.get_by_id(added["id"])
    assert row.sealed_client_secret is not None
    assert SECRET not in row.sealed_client_secret
    assert unseal(row.sealed_client_secret, keys=[DATA_KEY]) == SECRET
    [event] = AuditEvent.select().where(AuditEvent.action == "IDENTITY_PROVIDER_ADDED")
    assert event.actor_id == str(User.get(User.email == BOSS).id)
    assert event.detail == "Acme SSO (https://idp.example.com/realms/acme)"
    assert event.request_id


def test_a_user_without_the_permission_is_forbidden(admin_api: Api) -> None:
    token = admin_api.user("ann@acme.io")
    assert add(admin_api, token).error_code == "FORBIDDEN"
    assert add(admin_api, None).error_code == "UNAUTHENTICATED"
    added = add(admin_api, admin_api.token(BOSS)).ok()["addIdentityProvider"]
    assert admin_api.gql(REMOVE, {"id": added["id"]}, token=token).error_code == (
        "FORBIDDEN"
    )
    assert IdentityProvider.select().count() == 1


def test_the_permission_alone_does_not_let_anyone_name_a_provider(
    admin_api: Api,
) -> None:
    """A provider's email signs into that account, an ADMIN's too: naming one
    takes every service permission, not identity-providers:manage alone."""
    boss = admin_api.token(BOSS)
    admin_api.gql(
        'mutation { defineRole(name: "sso", permissions:'
        ' ["identity-providers:manage"]) { name } }',
        token=boss,
    ).ok()
    token = admin_api.user("mal@acme.io")
    admin_api.gql(
        'mutation { grantRole(email: "mal@acme.io", role: "sso") { email } }',
        token=boss,
    ).ok()
    assert add(admin_api, token).error_code == "FORBIDDEN"
    assert IdentityProvider.select().count() == 0


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": ""}, "name"),
        ({"issuer": "http://idp.example.com"}, "issuer"),
        ({"issuer": "https://idp.example.com/?x=1"}, "issuer"),
        ({"clientId": ""}, "clientId"),
        ({"clientSecret": ""}, "clientSecret"),
        ({"redirectUris": []}, "redirectUris"),
        ({"redirectUris": ["https://app.example/cb#fragment"]}, "redirectUris"),
        ({"redirectUris": ["http://10.0.0.1/cb"]}, "redirectUris"),
        ({"redirectUris": [APP_CALLBACK] * 11}, "redirectUris"),
    ],
    ids=[
        "empty-name",
        "http-issuer",
        "issuer-query",
        "empty-client-id",
        "empty-secret",
        "no-redirect",
        "fragment",
        "http-redirect",
        "too-many",
    ],
)
def test_a_bad_provider_is_bad_user_input(
    admin_api: Api, changes: dict[str, Any], field: str
) -> None:
    result = add(admin_api, admin_api.token(BOSS), **changes)
    assert result.error_code == "BAD_USER_INPUT", result.body
    assert set(result.extensions["fields"]) == {field}
    assert IdentityProvider.select().count() == 0


def test_a_second_provider_of_the_same_name_is_bad_user_input(admin_api: Api) -> None:
    token = admin_api.token(BOSS)
    add(admin_api, token).ok()
    result = add(admin_api, token, issuer="https://other.example.com")
    assert result.error_code == "BAD_USER_INPUT"
    assert result.extensions["fields"] == {
        "name": "The tenant has a provider of this name."
    }


def test_remove_takes_only_the_tenants_own_provider(admin_api: Api, api: Api) -> None:
    token = admin_api.token(BOSS)
    added = add(admin_api, token).ok()["addIdentityProvider"]
    other = api.tenant("other", admin=("root@other.io", "s3cret-Pw!"))
    foreign = other.gql(REMOVE, {"id": added["id"]}, token=other.token("root@other.io"))
    assert foreign.error_code == "NOT_FOUND"
    assert IdentityProvider.select().count() == 1
    assert admin_api.gql(REMOVE, {"id": added["id"]}, token=token).ok() == {
        "removeIdentityProvider": True
    }
    [event] = AuditEvent.select().where(
        AuditEvent.action == "IDENTITY_PROVIDER_REMOVED"
    )
    assert event.actor_id == str(User.get(User.email == BOSS).id)
    assert event.tenant.name == "acme"
    assert admin_api.gql(REMOVE, {"id": added["id"]}, token=token).error_code == (
        "NOT_FOUND"
    )


def test_a_public_provider_added_here_signs_users_in(admin_api: Api) -> None:
    with running_hostile_issuer() as issuer:
        token = admin_api.token(BOSS)
        changes = {"issuer": issuer.url, "clientSecret": None}
        added = add(admin_api, token, **changes).ok()["addIdentityProvider"]
        started = admin_api.gql(START, {"provider": added["id"], "uri": APP_CALLBACK})
        sent = query_of(started.ok()["startExternalLogin"]["authorizationUrl"])
        issuer.claims = issuer.good_claims(
            client_id="user-service", nonce=sent["nonce"]
        )
        done = admin_api.gql(COMPLETE, {"code": "c", "state": sent["state"]}).ok()
        assert done["completeExternalLogin"]["user"]["email"] == "ann@x.io"
        # A public client authenticates with PKCE alone: no secret is sent.
        [request] = issuer.token_requests
        assert request["client_id"] == "user-service"
        assert "client_secret" not in request
