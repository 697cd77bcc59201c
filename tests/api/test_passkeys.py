"""Passkeys through the real app (CONTRACT.md "Passkeys (WebAuthn)"; issue 17),
with a software authenticator that answers as a browser would, and bends its
answers as an attacker would: another origin or RP ID, no user verification, a
counter going backwards, a replayed challenge, another tenant's or account's
credential. The real browser's run is tests/browser/test_passkeys.py."""

import json
from collections.abc import Iterator
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from models import AuditEvent, Passkey, PasskeyChallenge, Session, Tenant, User
from models.db import utcnow
from provisioning import set_relying_party
from tests.api.test_mfa import enroll
from tests.authenticator import ORIGIN, RP_ID, Authenticator
from tests.conftest import PASSWORD, Api, Result
from tests.races import app_api, at_once, codes

ANN, BOB = "ann@x.io", "bob@x.io"
START_REGISTRATION = "mutation { startPasskeyRegistration { challengeId options } }"
FINISH_REGISTRATION = """mutation($id: String!, $credential: String!, $name: String) {
  finishPasskeyRegistration(challengeId: $id, credential: $credential, name: $name) {
    id name createdAt lastUsedAt } }"""
START_LOGIN = """mutation($email: String) {
  startPasskeyLogin(email: $email) { challengeId options } }"""
FINISH_LOGIN = """mutation($id: String!, $credential: String!) {
  finishPasskeyLogin(challengeId: $id, credential: $credential) {
    accessToken tokenType refreshToken user { email } } }"""
REMOVE = "mutation($id: ID!) { removePasskey(id: $id) }"
MY_PASSKEYS = "{ me { passkeys { id name createdAt lastUsedAt } } }"


def relying_party(tenant_name: str = "dev") -> None:
    """What `python server.py tenant set NAME --webauthn-rp-id example.com
    --webauthn-origin https://app.example.com` does."""
    tenant = Tenant.by_name(tenant_name)
    assert tenant is not None
    set_relying_party(tenant, RP_ID, [ORIGIN])


@pytest.fixture
def passkey_api(api: Api) -> Api:
    """The dev tenant, its passkeys bound to example.com."""
    relying_party()
    return api


def other_tenant(api: Api, name: str = "acme") -> Api:
    """A second tenant with the very same relying party."""
    other = api.tenant(name)
    relying_party(name)
    return other


def start_registration(api: Api, token: str) -> dict[str, str]:
    data = api.gql(START_REGISTRATION, token=token).ok()
    return dict(data["startPasskeyRegistration"])


def finish_registration(
    api: Api, token: str, challenge_id: str, credential: str, name: str | None = None
) -> Result:
    variables = {"id": challenge_id, "credential": credential, "name": name}
    return api.gql(FINISH_REGISTRATION, variables, token=token)


def register(api: Api, token: str, name: str = "laptop", **bent: Any) -> Authenticator:
    authenticator = Authenticator()
    started = start_registration(api, token)
    credential = authenticator.create(started["options"], **bent)
    finish_registration(api, token, started["challengeId"], credential, name).ok()
    return authenticator


def start_login(api: Api, email: str | None = None) -> dict[str, str]:
    data = api.gql(START_LOGIN, {"email": email}).ok()
    return dict(data["startPasskeyLogin"])


def finish_login(api: Api, challenge_id: str, credential: str) -> Result:
    return api.gql(FINISH_LOGIN, {"id": challenge_id, "credential": credential})


def log_in(
    api: Api, authenticator: Authenticator, email: str | None = None, **bent: Any
) -> Result:
    started = start_login(api, email)
    credential = authenticator.get(started["options"], **bent)
    return finish_login(api, started["challengeId"], credential)


def assert_refused(result: Result) -> None:
    assert result.data is None, result.body
    assert result.error_code == "UNAUTHENTICATED", result.body


def actions(*names: str) -> list[tuple[str, str | None]]:
    wanted = AuditEvent.action.in_(names)
    return [(e.action, e.detail) for e in AuditEvent.select().where(wanted)]


# ---- the flow ----------------------------------------------------------------


def test_a_registered_passkey_logs_in_with_an_email_and_discoverably_until_removed(
    passkey_api: Api,
) -> None:
    api = passkey_api
    token = api.user(ANN)
    started = start_registration(api, token)
    options = json.loads(started["options"])
    assert options["rp"] == {"id": RP_ID, "name": "dev"}
    assert options["user"]["name"] == ANN
    assert options["authenticatorSelection"]["userVerification"] == "required"
    assert options["authenticatorSelection"]["residentKey"] == "required"
    authenticator = Authenticator()
    credential = authenticator.create(started["options"])
    added = finish_registration(
        api, token, started["challengeId"], credential, " Work laptop "
    ).ok()["finishPasskeyRegistration"]
    assert added["name"] == "Work laptop"
    assert added["lastUsedAt"] is None

    with_email = log_in(api, authenticator, ANN).ok()["finishPasskeyLogin"]
    assert with_email["user"] == {"email": ANN}
    assert with_email["tokenType"] == "Bearer"
    assert api.me(with_email["accessToken"]).ok()["me"]["email"] == ANN
    discoverable = log_in(api, authenticator).ok()["finishPasskeyLogin"]
    assert discoverable["user"] == {"email": ANN}

    listed = api.gql(MY_PASSKEYS, token=token).ok()["me"]["passkeys"]
    assert [(p["id"], p["name"]) for p in listed] == [(added["id"], "Work laptop")]
    assert listed[0]["lastUsedAt"] is not None
    assert api.gql(REMOVE, {"id": added["id"]}, token=token).ok() == {
        "removePasskey": True
    }
    assert api.gql(MY_PASSKEYS, token=token).ok()["me"]["passkeys"] == []
    assert_refused(log_in(api, authenticator))
    assert actions("PASSKEY_REGISTERED", "PASSKEY_REMOVED") == [
        ("PASSKEY_REGISTERED", None),
        ("PASSKEY_REMOVED", None),
    ]
    succeeded = actions("LOGIN_SUCCEEDED")
    assert succeeded.count(("LOGIN_SUCCEEDED", "with a passkey")) == 2


def test_a_passkey_login_of_an_account_with_totp_is_complete(passkey_api: Api) -> None:
    token = passkey_api.user(ANN)
    enroll(passkey_api, token)
    assert passkey_api.login(ANN).error_code == "MFA_REQUIRED"
    authenticator = register(passkey_api, token)
    payload = log_in(passkey_api, authenticator, ANN).ok()["finishPasskeyLogin"]
    assert payload["user"] == {"email": ANN}
    assert payload["refreshToken"]


def test_login_options_are_the_same_for_an_unknown_email_and_a_known_one(
    passkey_api: Api,
) -> None:
    register(passkey_api, passkey_api.user(ANN))

    def shape(email: str | None) -> dict[str, Any]:
        options = json.loads(start_login(passkey_api, email)["options"])
        return {**options, "challenge": "-"}

    assert shape(ANN) == shape("nobody@x.io") == shape(None)
    assert shape(ANN)["allowCredentials"] == []
    assert shape(ANN)["userVerification"] == "required"


# ---- attacks: registration -----------------------------------------------------


@pytest.mark.parametrize(
    "bent",
    [
        {"origin": "https://evil.example.net"},
        {"origin": "https://example.com.evil.net"},
        {"rp_id": "evil.example.net"},
        {"verified": False},
    ],
    ids=["wrong-origin", "origin-with-rp-id-prefix", "wrong-rp-id", "no-uv"],
)
def test_a_registration_that_does_not_verify_is_bad_user_input(
    passkey_api: Api, bent: dict[str, Any]
) -> None:
    token = passkey_api.user(ANN)
    started = start_registration(passkey_api, token)
    credential = Authenticator().create(started["options"], **bent)
    result = finish_registration(passkey_api, token, started["challengeId"], credential)
    assert result.error_code == "BAD_USER_INPUT", result.body
    assert result.extensions["fields"] == {
        "credential": "The passkey could not be verified."
    }
    assert Passkey.select().count() == 0


def test_a_registration_challenge_works_once_and_only_for_its_account(
    passkey_api: Api,
) -> None:
    ann, bob = passkey_api.user(ANN), passkey_api.user(BOB)
    started = start_registration(passkey_api, ann)
    credential = Authenticator().create(started["options"])
    stolen = finish_registration(passkey_api, bob, started["challengeId"], credential)
    assert stolen.extensions["fields"] == {
        "challengeId": "Unknown, used or expired: start again."
    }
    # Bob's try did not spend it; Ann's first use does.
    finish_registration(passkey_api, ann, started["challengeId"], credential).ok()
    again = finish_registration(passkey_api, ann, started["challengeId"], credential)
    assert again.error_code == "BAD_USER_INPUT"
    assert Passkey.select().count() == 1


def test_an_authenticator_registered_twice_is_bad_user_input(passkey_api: Api) -> None:
    token = passkey_api.user(ANN)
    authenticator = register(passkey_api, token)
    started = start_registration(passkey_api, token)
    excluded = json.loads(started["options"])["excludeCredentials"]
    assert [entry["id"] for entry in excluded] == [authenticator.id]
    credential = authenticator.create(started["options"])
    result = finish_registration(passkey_api, token, started["challengeId"], credential)
    assert result.extensions["fields"] == {
        "credential": "This passkey is registered already."
    }


def test_adding_a_passkey_needs_a_login_of_the_last_10_minutes(
    passkey_api: Api,
) -> None:
    """A stolen access token must not become the thief's lasting way in:
    a session opened (not refreshed) over 10 minutes ago adds no passkey."""
    token = passkey_api.user("ann@x.io")
    Session.update(created_at=utcnow() - timedelta(minutes=11)).execute()
    refused = passkey_api.gql(START_REGISTRATION, token=token)
    assert_refused(refused)
    assert PasskeyChallenge.select().count() == 0
    register(passkey_api, passkey_api.token("ann@x.io"))  # after a new login


def test_registration_needs_a_token_and_a_tenant_with_passkeys(api: Api) -> None:
    assert api.gql(START_REGISTRATION).error_code == "UNAUTHENTICATED"
    token = api.user(ANN)
    result = api.gql(START_REGISTRATION, token=token)
    assert result.error_code == "FORBIDDEN", result.body
    assert api.gql(START_LOGIN, {"email": None}).error_code == "FORBIDDEN"


# ---- attacks: login --------------------------------------------------------------


@pytest.mark.parametrize(
    "bent",
    [
        {"origin": "https://evil.example.net"},
        {"rp_id": "evil.example.net"},
        {"verified": False},
        {"challenge": "AAAA"},
    ],
    ids=["wrong-origin", "wrong-rp-id", "no-uv", "another-challenge"],
)
def test_an_assertion_that_does_not_verify_is_unauthenticated(
    passkey_api: Api, bent: dict[str, Any]
) -> None:
    authenticator = register(passkey_api, passkey_api.user(ANN))
    assert_refused(log_in(passkey_api, authenticator, ANN, **bent))
    assert_refused(log_in(passkey_api, authenticator, **bent))
    assert actions("LOGIN_FAILED") == [("LOGIN_FAILED", None)] * 2
    log_in(passkey_api, authenticator).ok()  # the passkey itself still works


def test_a_replayed_assertion_is_unauthenticated(passkey_api: Api) -> None:
    authenticator = register(passkey_api, passkey_api.user(ANN))
    started = start_login(passkey_api, ANN)
    credential = authenticator.get(started["options"])
    finish_login(passkey_api, started["challengeId"], credential).ok()
    assert_refused(finish_login(passkey_api, started["challengeId"], credential))
    # A fresh signature over the spent challenge fares no better.
    fresh = authenticator.get(started["options"])
    assert_refused(finish_login(passkey_api, started["challengeId"], fresh))


def test_a_sign_counter_going_backwards_is_unauthenticated(passkey_api: Api) -> None:
    authenticator = register(passkey_api, passkey_api.user(ANN))
    log_in(passkey_api, authenticator, sign_count=5).ok()
    assert_refused(log_in(passkey_api, authenticator, sign_count=3))
    assert_refused(log_in(passkey_api, authenticator, sign_count=5))
    log_in(passkey_api, authenticator, sign_count=6).ok()


def test_an_expired_challenge_is_unauthenticated(passkey_api: Api) -> None:
    authenticator = register(passkey_api, passkey_api.user(ANN))
    started = start_login(passkey_api, ANN)
    credential = authenticator.get(started["options"])
    PasskeyChallenge.update(expires_at=utcnow() - timedelta(seconds=1)).execute()
    assert_refused(finish_login(passkey_api, started["challengeId"], credential))


def test_a_login_with_an_email_takes_no_other_accounts_passkey(
    passkey_api: Api,
) -> None:
    ann = register(passkey_api, passkey_api.user(ANN))
    register(passkey_api, passkey_api.user(BOB))
    assert_refused(log_in(passkey_api, ann, BOB))
    [failed] = AuditEvent.select().where(AuditEvent.action == "LOGIN_FAILED")
    assert failed.target_id == passkey_api.me(passkey_api.token(BOB)).ok()["me"]["id"]
    assert_refused(log_in(passkey_api, ann, "nobody@x.io"))
    assert_refused(log_in(passkey_api, ann, "not an email"))
    log_in(passkey_api, ann, ANN.upper()).ok()


def test_another_tenants_passkey_and_challenge_are_unknown(passkey_api: Api) -> None:
    authenticator = register(passkey_api, passkey_api.user(ANN))
    acme = other_tenant(passkey_api)
    acme_ann = register(acme, acme.user(ANN))  # the same email, another account
    assert_refused(log_in(acme, authenticator))
    assert_refused(log_in(acme, authenticator, ANN))
    # dev's challenge, answered with acme's passkey, sent with acme's key.
    started = start_login(passkey_api)
    credential = acme_ann.get(started["options"])
    assert_refused(finish_login(acme, started["challengeId"], credential))
    log_in(acme, acme_ann, ANN).ok()


def test_a_deactivated_account_cannot_log_in_with_a_passkey(admin_api: Api) -> None:
    relying_party("acme")
    boss = admin_api.token("boss@acme.io")
    authenticator = register(admin_api, admin_api.user(ANN))
    deactivate = (
        'mutation { setUserActive(email: "ann@x.io", active: false) { active } }'
    )
    admin_api.gql(deactivate, token=boss).ok()
    assert_refused(log_in(admin_api, authenticator, ANN))


@pytest.mark.parametrize(
    "credential",
    [
        "",
        "{}",
        "[]",
        "null",
        '{"id": 5}',
        '{"id": "' + "A" * 5000 + '"}',
        "x" * 60000,
        '{"id": "\\ud800"}',
        '{"id": "a\\u0000b"}',
        '{"id": "a/b+c="}',
    ],
    ids=[
        "empty",
        "object",
        "array",
        "null",
        "number-id",
        "long-id",
        "huge",
        "lone-surrogate-id",
        "nul-id",
        "not-base64url-id",
    ],
)
def test_garbage_for_a_credential_is_refused_with_a_contract_code(
    passkey_api: Api, credential: str
) -> None:
    token = passkey_api.user(ANN)
    started = start_login(passkey_api)
    result = finish_login(passkey_api, started["challengeId"], credential)
    assert result.error_code in ("UNAUTHENTICATED", "BAD_REQUEST"), result.body
    started = start_registration(passkey_api, token)
    result = finish_registration(passkey_api, token, started["challengeId"], credential)
    assert result.error_code in ("BAD_USER_INPUT", "BAD_REQUEST"), result.body


@pytest.mark.parametrize("email", ["a\x00@x.io", "\ud800@x.io", "x" * 5000])
def test_a_login_for_an_impossible_email_gets_a_challenge_all_the_same(
    passkey_api: Api, email: str
) -> None:
    # json.dumps escapes a lone surrogate, as a browser's JSON.stringify does.
    body = json.dumps({"query": START_LOGIN, "variables": {"email": email}})
    response = passkey_api.client.post(
        "/graphql",
        content=body,
        headers={"X-API-Key": passkey_api.api_key, "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["startPasskeyLogin"]["challengeId"]


def test_wrong_assertions_count_like_failed_logins(tmp_path: Path) -> None:
    limit = {"USER_SERVICE_LOGIN_FAILURES_PER_ACCOUNT": "3 per 15 minutes"}
    with app_api(tmp_path, "memory", **limit) as api:
        relying_party()
        authenticator = register(api, api.user(ANN))
        for _ in range(3):
            assert_refused(log_in(api, authenticator, ANN, verified=False))
        assert log_in(api, authenticator, ANN).error_code == "RATE_LIMITED"
        assert api.login(ANN).error_code == "RATE_LIMITED"  # one count for both
        assert ("ACCOUNT_LOCKED", None) in actions("ACCOUNT_LOCKED")


def test_an_unverified_email_is_refused_when_required(tmp_path: Path) -> None:
    required = {"USER_SERVICE_REQUIRE_VERIFIED_EMAIL": "true"}
    with app_api(tmp_path, "memory", **required) as api:
        relying_party()
        api.sign_up(ANN).ok()
        User.update(email_verified=True).execute()
        authenticator = register(api, api.token(ANN))
        User.update(email_verified=False).execute()
        assert log_in(api, authenticator).error_code == "EMAIL_NOT_VERIFIED"


# ---- concurrency ------------------------------------------------------------------


@pytest.fixture
def loose_api(tmp_path: Path) -> Iterator[Api]:
    loose = {
        "USER_SERVICE_LOGIN_FAILURES_PER_ACCOUNT": "1000 per minute",
        "USER_SERVICE_LOGIN_FAILURES_PER_ADDRESS": "1000 per minute",
    }
    with app_api(tmp_path, "memory", **loose) as api:
        relying_party()
        yield api


def test_one_challenge_finished_by_many_at_once_logs_in_exactly_once(
    loose_api: Api,
) -> None:
    authenticator = register(loose_api, loose_api.user(ANN))
    started = start_login(loose_api, ANN)
    # Ten signatures over the one challenge, without a counter (as synced
    # passkeys send): only the challenge's single use stands in the way.
    answers = [authenticator.get(started["options"], sign_count=0) for _ in range(10)]
    results = at_once(
        [partial(finish_login, loose_api, started["challengeId"], a) for a in answers]
    )
    assert codes(results) == {None: 1, "UNAUTHENTICATED": 9}


def test_one_assertion_sent_many_times_at_once_logs_in_exactly_once(
    loose_api: Api,
) -> None:
    authenticator = register(loose_api, loose_api.user(ANN))
    started = start_login(loose_api)
    answer = authenticator.get(started["options"])
    results = at_once(
        [partial(finish_login, loose_api, started["challengeId"], answer)] * 10
    )
    assert codes(results) == {None: 1, "UNAUTHENTICATED": 9}


def test_two_logins_at_once_with_one_counter_value_let_one_through(
    loose_api: Api,
) -> None:
    """A cloned authenticator: two challenges answered with the same counter."""
    authenticator = register(loose_api, loose_api.user(ANN))
    answers = []
    for _ in range(6):
        started = start_login(loose_api)
        answer = authenticator.get(started["options"], sign_count=7)
        answers.append((started["challengeId"], answer))
    results = at_once([partial(finish_login, loose_api, *pair) for pair in answers])
    assert codes(results) == {None: 1, "UNAUTHENTICATED": 5}


# ---- what the account holds ---------------------------------------------------------


def test_my_data_lists_passkeys_by_name_and_date_without_keys(
    passkey_api: Api,
) -> None:
    token = passkey_api.user(ANN)
    authenticator = register(passkey_api, token, name="phone")
    log_in(passkey_api, authenticator).ok()
    data = passkey_api.gql("{ myData }", token=token).ok()["myData"]
    [listed] = json.loads(data)["factors"]["passkeys"]
    assert set(listed) == {"id", "name", "createdAt", "lastUsedAt"}
    assert listed["name"] == "phone"
    assert listed["lastUsedAt"] is not None
    stored = Passkey.get()
    assert stored.credential_id not in data
    assert stored.public_key not in data


def test_passkeys_go_with_a_deleted_account(passkey_api: Api) -> None:
    token = passkey_api.user(ANN)
    authenticator = register(passkey_api, token)
    start_login(passkey_api, ANN)
    start_registration(passkey_api, token)
    delete = "mutation($p: String!) { deleteAccount(password: $p) }"
    passkey_api.gql(delete, {"p": PASSWORD}, token=token).ok()
    assert Passkey.select().count() == 0
    assert (
        PasskeyChallenge.select().where(PasskeyChallenge.user.is_null(False)).count()
        == 0
    )
    assert_refused(log_in(passkey_api, authenticator))


def test_only_the_account_itself_sees_and_removes_its_passkeys(
    passkey_api: Api,
) -> None:
    ann = passkey_api.user(ANN)
    register(passkey_api, ann)
    [passkey] = passkey_api.gql(MY_PASSKEYS, token=ann).ok()["me"]["passkeys"]
    bob = passkey_api.user(BOB)
    assert passkey_api.gql(REMOVE, {"id": passkey["id"]}, token=bob).error_code == (
        "NOT_FOUND"
    )
    assert passkey_api.gql(REMOVE, {"id": "nonsense"}, token=ann).error_code == (
        "NOT_FOUND"
    )
    assert Passkey.select().count() == 1
