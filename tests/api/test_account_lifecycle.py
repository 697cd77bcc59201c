"""Email change, account deletion and the export of one's own data, through the
real app (CONTRACT.md "Account lifecycle: email change, deletion, export";
issue 19). Mail goes over SMTP to a server on loopback."""

import json
import time
from pathlib import Path
from typing import Any

import pytest

from models import AuditEvent, EmailToken, RecoveryCode, RefreshToken, Session, User
from models.db import database
from models.grants import GroupMember, RoleGrant
from models.mfa import MfaChallenge
from tests.api.test_mfa import enroll
from tests.api.test_recovery import (
    assert_used_link,
    expire_tokens,
    link_token,
    login_pair,
    mail_environ,
    request_reset,
    reset,
    reset_token,
)
from tests.api.test_roles import ADD, DEFINE_GROUP, DEFINE_ROLE, GRANT
from tests.conftest import ON_POSTGRES, PASSWORD, Api, Result
from tests.mail_server import Inbox

CHANGE_URL = "https://app.example/confirm-email-change?token={token}"
CHANGE_LINK = CHANGE_URL.partition("{token}")[0]
ANN, NEW, BOB = "ann@x.io", "ann.new@x.io", "bob@x.io"
BOSS = "boss@acme.io"
WRONG = "wrong-Pw1!"

REQUEST_CHANGE = """mutation($email: String!, $password: String!) {
  requestEmailChange(newEmail: $email, password: $password) }"""
CONFIRM_CHANGE = """mutation($token: String!) {
  confirmEmailChange(token: $token) { email emailVerified } }"""
DELETE_ACCOUNT = "mutation($password: String!) { deleteAccount(password: $password) }"
DELETE_USER = "mutation($email: String!) { deleteUser(email: $email) }"
MY_DATA = "{ myData }"
REFRESH = (
    "mutation($token: String!) { refreshSession(refreshToken: $token) { accessToken } }"
)
AUDIT_LOG = """{ auditLog(first: 100) {
  edges { node { action actor { email } target { email } ip detail } } } }"""


@pytest.fixture
def environ(tmp_path: Path, inbox: Inbox) -> dict[str, str]:
    """Overrides conftest's: `api` and `admin_api` mail to `inbox`."""
    return mail_environ(tmp_path, inbox.url, USER_SERVICE_EMAIL_CHANGE_URL=CHANGE_URL)


def request_change(
    api: Api, token: str | None, email: str = NEW, password: str = PASSWORD
) -> Result:
    return api.gql(REQUEST_CHANGE, {"email": email, "password": password}, token=token)


def change_token(inbox: Inbox, email: str = NEW, count: int = 1) -> str:
    mails = inbox.wait_for(email, count, containing=CHANGE_LINK)
    return link_token(mails[count - 1], CHANGE_URL)


def confirm(api: Api, token: str) -> Result:
    return api.gql(CONFIRM_CHANGE, {"token": token})


def audit_actions(api: Api, token: str) -> list[str]:
    edges = api.gql(AUDIT_LOG, token=token).ok()["auditLog"]["edges"]
    return [edge["node"]["action"] for edge in edges]


# ---- email change ----------------------------------------------------------------


def test_email_change_mails_a_link_to_the_new_address_and_a_notice_to_the_old(
    api: Api, inbox: Inbox
) -> None:
    token = api.user(ANN)
    assert request_change(api, token).ok() == {"requestEmailChange": True}
    change_token(inbox)
    notice = inbox.wait_for(ANN, containing="asked to")[0]
    assert NEW not in notice.text  # the old inbox learns of it, not the new address
    assert CHANGE_LINK not in notice.text


def test_confirming_changes_the_email_verifies_it_and_ends_every_session(
    api: Api, inbox: Inbox
) -> None:
    api.sign_up(ANN).ok()
    access, refresh = login_pair(api, ANN)
    request_change(api, access).ok()
    changed = confirm(api, change_token(inbox)).ok()
    assert changed == {"confirmEmailChange": {"email": NEW, "emailVerified": True}}
    assert api.me(access).error_code == "UNAUTHENTICATED"
    assert api.gql(REFRESH, {"token": refresh}).error_code == "UNAUTHENTICATED"
    assert api.login(ANN).error_code == "UNAUTHENTICATED"
    assert api.me(api.token(NEW)).ok()["me"]["email"] == NEW


def test_an_email_change_link_works_once(api: Api, inbox: Inbox) -> None:
    request_change(api, api.user(ANN)).ok()
    token = change_token(inbox)
    confirm(api, token).ok()
    assert_used_link(confirm(api, token))


def test_an_email_change_link_past_24_hours_is_unauthenticated(
    api: Api, inbox: Inbox
) -> None:
    request_change(api, api.user(ANN)).ok()
    token = change_token(inbox)
    expire_tokens()
    assert_used_link(confirm(api, token))
    assert api.login(ANN).ok()


def test_only_the_latest_email_change_link_works(api: Api, inbox: Inbox) -> None:
    access = api.user(ANN)
    request_change(api, access, "first@x.io").ok()
    first = change_token(inbox, "first@x.io")
    request_change(api, access).ok()
    assert_used_link(confirm(api, first))
    assert confirm(api, change_token(inbox)).ok()["confirmEmailChange"]["email"] == NEW


@pytest.mark.parametrize(
    "token",
    ["", "junk", "x" * 43, "ä" * 43, "a" * 5000],
    ids=["empty", "short", "unknown", "non-ascii", "huge"],
)
def test_junk_email_change_tokens_are_unauthenticated(api: Api, token: str) -> None:
    assert_used_link(confirm(api, token))


def test_a_reset_link_cannot_confirm_an_email_change(api: Api, inbox: Inbox) -> None:
    api.sign_up(ANN).ok()
    request_reset(api, ANN).ok()
    assert_used_link(confirm(api, reset_token(inbox, ANN)))


def test_email_change_link_of_one_tenant_is_refused_with_another_tenants_key(
    api: Api, admin_api: Api, inbox: Inbox
) -> None:
    request_change(api, api.user(ANN)).ok()
    assert_used_link(confirm(admin_api, change_token(inbox)))


def test_email_change_link_of_a_deactivated_account_is_unauthenticated(
    admin_api: Api, inbox: Inbox
) -> None:
    request_change(admin_api, admin_api.user("ann@acme.io"), "ann@new.io").ok()
    token = change_token(inbox, "ann@new.io")
    deactivate = (
        'mutation { setUserActive(email: "ann@acme.io", active: false) { active } }'
    )
    admin_api.gql(deactivate, token=admin_api.token(BOSS)).ok()
    assert_used_link(confirm(admin_api, token))


def test_email_change_without_an_access_token_is_unauthenticated(api: Api) -> None:
    assert request_change(api, None).error_code == "UNAUTHENTICATED"


def test_email_change_with_a_wrong_password_changes_nothing_and_counts_as_failed_login(
    admin_api: Api, inbox: Inbox
) -> None:
    access = admin_api.user("ann@acme.io")
    for _ in range(5):  # the default limit: 5 failures per account
        result = request_change(admin_api, access, password=WRONG)
        assert result.error_code == "UNAUTHENTICATED"
    assert request_change(admin_api, access).error_code == "RATE_LIMITED"
    assert admin_api.login("ann@acme.io").error_code == "RATE_LIMITED"
    inbox.stays(NEW, 0, seconds=0.2)
    failures = audit_actions(admin_api, admin_api.token(BOSS)).count("LOGIN_FAILED")
    assert failures == 5


@pytest.mark.parametrize(
    "taken",
    [BOB, "BOB@X.IO", "\uff42\uff4f\uff42@x.io"],
    ids=["same", "other-case", "fullwidth"],
)
def test_email_change_to_an_address_of_the_tenant_is_email_taken(
    api: Api, inbox: Inbox, taken: str
) -> None:
    api.sign_up(BOB).ok()
    assert request_change(api, api.user(ANN), taken).error_code == "EMAIL_TAKEN"
    time.sleep(0.2)
    assert inbox.mails(BOB, containing=CHANGE_LINK) == []


def test_email_change_to_an_address_of_another_tenant_is_allowed(
    api: Api, admin_api: Api, inbox: Inbox
) -> None:
    admin_api.sign_up(NEW).ok()
    request_change(api, api.user(ANN)).ok()
    assert confirm(api, change_token(inbox)).ok()["confirmEmailChange"]["email"] == NEW


def test_address_taken_before_the_link_is_opened_is_email_taken_then(
    api: Api, inbox: Inbox
) -> None:
    request_change(api, api.user(ANN)).ok()
    token = change_token(inbox)
    api.sign_up(NEW).ok()
    assert confirm(api, token).error_code == "EMAIL_TAKEN"
    assert api.login(ANN).ok()


@pytest.mark.parametrize(
    ("email", "message"),
    [
        ("", "Email is required."),
        ("not-an-email", "Email is not a valid address."),
        ("a@" + "b" * 300 + ".io", "Email is not a valid address."),
        ("ann\x00@x.io", "Email is not a valid address."),
    ],
    ids=["empty", "no-at", "too-long", "control"],
)
def test_bad_new_email_is_bad_user_input(api: Api, email: str, message: str) -> None:
    result = request_change(api, api.user(ANN), email)
    assert result.error_code == "BAD_USER_INPUT"
    assert result.extensions["fields"] == {"newEmail": message}


@pytest.mark.parametrize(
    ("query", "variables"),
    [(REQUEST_CHANGE, {"email": NEW}), (DELETE_ACCOUNT, {})],
    ids=["requestEmailChange", "deleteAccount"],
)
def test_a_password_no_account_can_have_is_bad_user_input(
    api: Api, query: str, variables: dict[str, str]
) -> None:
    access = api.user(ANN)
    result = api.gql(query, {**variables, "password": "x" * 5000}, token=access)
    assert result.error_code == "BAD_USER_INPUT"
    assert result.extensions["fields"] == {"password": "Password is not valid."}
    assert api.me(access).ok()["me"]["email"] == ANN


def test_email_change_requests_are_rate_limited_per_address(api: Api) -> None:
    access = api.user(ANN)
    for _ in range(10):  # USER_SERVICE_MAIL_REQUESTS_PER_ADDRESS: 10 per hour
        request_change(api, access).ok()
    assert request_change(api, access).error_code == "RATE_LIMITED"


def test_email_change_ends_the_reset_links_sent_to_the_old_address(
    api: Api, inbox: Inbox
) -> None:
    access = api.user(ANN)
    request_reset(api, ANN).ok()
    old_reset = reset_token(inbox, ANN)
    request_change(api, access).ok()
    confirm(api, change_token(inbox)).ok()
    assert_used_link(reset(api, old_reset))


def test_email_change_is_audited(admin_api: Api, inbox: Inbox) -> None:
    boss = admin_api.token(BOSS)
    access = admin_api.user("ann@acme.io")
    request_change(admin_api, access).ok()
    confirm(admin_api, change_token(inbox)).ok()
    actions = audit_actions(admin_api, boss)
    assert actions[:2] == ["EMAIL_CHANGED", "EMAIL_CHANGE_REQUESTED"]


# ---- deletion --------------------------------------------------------------------


def test_delete_account_removes_it_and_every_token_stops(api: Api) -> None:
    api.sign_up(ANN).ok()
    access, refresh = login_pair(api, ANN)
    assert api.gql(DELETE_ACCOUNT, {"password": PASSWORD}, token=access).ok() == {
        "deleteAccount": True
    }
    assert api.me(access).error_code == "UNAUTHENTICATED"
    assert api.gql(REFRESH, {"token": refresh}).error_code == "UNAUTHENTICATED"
    assert api.login(ANN).error_code == "UNAUTHENTICATED"
    api.sign_up(ANN).ok()  # the address is free again


def test_delete_account_with_a_wrong_password_keeps_it(api: Api) -> None:
    access = api.user(ANN)
    result = api.gql(DELETE_ACCOUNT, {"password": WRONG}, token=access)
    assert result.error_code == "UNAUTHENTICATED"
    assert api.me(access).ok()["me"]["email"] == ANN


def test_delete_account_without_an_access_token_is_unauthenticated(api: Api) -> None:
    result = api.gql(DELETE_ACCOUNT, {"password": PASSWORD})
    assert result.error_code == "UNAUTHENTICATED"


def rows_of(user_id: str) -> dict[str, int]:
    """How many rows of each table hang on the account."""
    sessions = Session.select(Session.id).where(Session.user == user_id)
    return {
        "user": User.select().where(User.id == user_id).count(),
        "session": sessions.count(),
        "refresh_token": RefreshToken.select()
        .where(RefreshToken.session.in_(sessions))
        .count(),
        "email_token": EmailToken.select().where(EmailToken.user == user_id).count(),
        "recovery_code": RecoveryCode.select()
        .where(RecoveryCode.user == user_id)
        .count(),
        "mfa_challenge": MfaChallenge.select()
        .where(MfaChallenge.user == user_id)
        .count(),
        "role_grant": RoleGrant.select().where(RoleGrant.user == user_id).count(),
        "group_member": GroupMember.select().where(GroupMember.user == user_id).count(),
    }


def full_account(api: Api, email: str, boss: str) -> tuple[str, str, str]:
    """An account with a bit of everything: sessions, refresh tokens, TOTP,
    recovery codes, a pending reset link, a role and a group. Returns its id,
    an access token and a refresh token."""
    user_id = api.sign_up(email).ok()["signUp"]["id"]
    login_pair(api, email)
    access, refresh = login_pair(api, email)
    enroll(api, access)
    api.login(email)  # an MFA challenge
    request_reset(api, email).ok()
    api.gql(DEFINE_ROLE, {"name": "support", "permissions": ["users:read"]}, token=boss)
    api.gql(GRANT, {"e": email, "r": "support"}, token=boss).ok()
    api.gql(DEFINE_GROUP, {"n": "desk", "r": ["support"]}, token=boss).ok()
    api.gql(ADD, {"e": email, "g": "desk"}, token=boss).ok()
    return user_id, access, refresh


def test_deletion_removes_every_row_tied_to_the_account(admin_api: Api) -> None:
    boss = admin_api.token(BOSS)
    user_id, access, _ = full_account(admin_api, "ann@acme.io", boss)
    assert all(rows_of(user_id).values()), rows_of(user_id)
    admin_api.gql(DELETE_ACCOUNT, {"password": PASSWORD}, token=access).ok()
    assert rows_of(user_id) == dict.fromkeys(rows_of(user_id), 0)


def test_admin_deletes_an_account_of_the_tenant(admin_api: Api) -> None:
    access = admin_api.user("ann@acme.io")
    boss = admin_api.token(BOSS)
    result = admin_api.gql(DELETE_USER, {"email": "ANN@acme.io"}, token=boss)
    assert result.ok() == {"deleteUser": True}
    assert admin_api.me(access).error_code == "UNAUTHENTICATED"
    assert "DELETED" in " ".join(audit_actions(admin_api, boss))


def test_delete_user_of_another_tenant_or_unknown_is_not_found(
    api: Api, admin_api: Api
) -> None:
    api.sign_up(ANN).ok()
    boss = admin_api.token(BOSS)
    for email in (ANN, "nobody@acme.io", "not an email"):
        result = admin_api.gql(DELETE_USER, {"email": email}, token=boss)
        assert result.error_code == "NOT_FOUND", email
    assert api.login(ANN).ok()


def test_delete_user_without_users_write_is_forbidden(admin_api: Api) -> None:
    admin_api.sign_up("bob@acme.io").ok()
    access = admin_api.user("ann@acme.io")
    result = admin_api.gql(DELETE_USER, {"email": "bob@acme.io"}, token=access)
    assert result.error_code == "FORBIDDEN"
    assert admin_api.login("bob@acme.io").ok()


def test_the_last_roles_manage_holder_cannot_be_deleted(admin_api: Api) -> None:
    boss = admin_api.token(BOSS)
    admin_api.gql(
        DEFINE_ROLE, {"name": "hr", "permissions": ["users:write"]}, token=boss
    )
    admin_api.sign_up("hr@acme.io").ok()
    admin_api.gql(GRANT, {"e": "hr@acme.io", "r": "hr"}, token=boss).ok()
    own = admin_api.gql(DELETE_ACCOUNT, {"password": PASSWORD}, token=boss)
    assert own.error_code == "FORBIDDEN"
    hr = admin_api.token("hr@acme.io")
    by_other = admin_api.gql(DELETE_USER, {"email": BOSS}, token=hr)
    assert by_other.error_code == "FORBIDDEN"
    assert admin_api.me(boss).ok()["me"]["email"] == BOSS


def test_a_second_admin_may_delete_the_first(admin_api: Api) -> None:
    boss = admin_api.token(BOSS)
    admin_api.sign_up("eve@acme.io").ok()
    admin_api.update_profile(boss, email="eve@acme.io", role="ADMIN").ok()
    admin_api.gql(DELETE_ACCOUNT, {"password": PASSWORD}, token=boss).ok()
    assert admin_api.login(BOSS).error_code == "UNAUTHENTICATED"


def test_audit_events_of_a_deleted_account_keep_only_its_id(admin_api: Api) -> None:
    boss = admin_api.token(BOSS)
    user_id = admin_api.sign_up("ann@acme.io").ok()["signUp"]["id"]
    admin_api.login("ann@acme.io", WRONG)
    access = admin_api.token("ann@acme.io")
    admin_api.gql(DELETE_ACCOUNT, {"password": PASSWORD}, token=access).ok()
    events = list(
        AuditEvent.select().where(
            (AuditEvent.actor_id == user_id) | (AuditEvent.target_id == user_id)
        )
    )
    assert {event.action for event in events} >= {
        "SIGNED_UP",
        "LOGIN_FAILED",
        "LOGIN_SUCCEEDED",
        "ACCOUNT_DELETED",
    }
    for event in events:
        assert event.ip is None, event.action
        assert event.user_agent is None, event.action
        assert "ann" not in (event.detail or ""), event.action
    nodes = [
        e["node"]
        for e in admin_api.gql(AUDIT_LOG, token=boss).ok()["auditLog"]["edges"]
    ]
    assert "ann@acme.io" not in json.dumps(nodes)


@pytest.mark.skipif(ON_POSTGRES, reason="the SQLite file")
def test_a_deleted_email_does_not_linger_in_the_sqlite_file(
    api: Api, tmp_path: Path
) -> None:
    email = "lingering.address@x.io"
    access = api.user(email, city="Quietville-Unique")
    api.gql(DELETE_ACCOUNT, {"password": PASSWORD}, token=access).ok()
    database.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    stored = b"".join(path.read_bytes() for path in tmp_path.glob("users.db*"))
    assert email.encode() not in stored
    assert b"Quietville-Unique" not in stored


# ---- myData ----------------------------------------------------------------------


def my_data(api: Api, token: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(api.gql(MY_DATA, token=token).ok()["myData"])
    return data


def test_my_data_holds_profile_sessions_factors_access_and_events(
    admin_api: Api,
) -> None:
    boss = admin_api.token(BOSS)
    user_id, access, _ = full_account(admin_api, "ann@acme.io", boss)
    data = my_data(admin_api, access)
    assert data["profile"]["id"] == user_id
    assert data["profile"]["email"] == "ann@acme.io"
    assert len(data["sessions"]) == 2
    assert {"createdAt", "lastUsedAt", "userAgent", "ip"} <= set(data["sessions"][0])
    enabled = [e["at"] for e in data["auditEvents"] if e["action"] == "MFA_ENABLED"]
    assert data["factors"]["totp"] == {"enabled": True, "enabledAt": enabled[0]}
    assert data["factors"]["recoveryCodesLeft"] == 10
    assert data["access"]["roles"] == ["USER", "support"]
    assert data["access"]["groups"] == ["desk"]
    assert "users:read" in data["access"]["permissions"]
    assert [link["purpose"] for link in data["pendingLinks"]] == ["VERIFY", "RESET"]
    actions = [event["action"] for event in data["auditEvents"]]
    assert actions[0] == "SIGNED_UP"
    assert "MFA_ENABLED" in actions


def test_my_data_holds_no_stored_secret(admin_api: Api) -> None:
    boss = admin_api.token(BOSS)
    user_id, access, refresh = full_account(admin_api, "ann@acme.io", boss)
    text = admin_api.gql(MY_DATA, token=access).ok()["myData"]
    user = User.get_by_id(user_id)
    secrets = [user.password_hash, user.totp_secret, access, refresh]
    sessions = Session.select(Session.id).where(Session.user == user_id)
    secrets += [t.digest for t in EmailToken.select().where(EmailToken.user == user_id)]
    secrets += [
        c.digest for c in RecoveryCode.select().where(RecoveryCode.user == user_id)
    ]
    secrets += [
        t.digest
        for t in RefreshToken.select().where(RefreshToken.session.in_(sessions))
    ]
    assert len(secrets) > 15
    for secret in secrets:
        assert secret not in text
    assert "password_hash" not in text
    assert "digest" not in text


def test_my_data_without_an_access_token_is_unauthenticated(api: Api) -> None:
    assert api.gql(MY_DATA).error_code == "UNAUTHENTICATED"
