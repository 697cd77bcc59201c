"""Taking an account over, or keeping its owner out, through the real app with
mail delivered over SMTP to a loopback server (issue 12, items 5, 6 and 7;
CONTRACT.md "Amendments (second round)").

- Lock-out as a weapon: anyone can lock an account by guessing; a completed
  reset, or an ADMIN's unlockAccount, lets the owner back in.
- Account pre-hijacking: whoever signed up first with someone else's address
  keeps nothing (sessions, refresh tokens, TOTP, recovery codes) once the
  inbox's owner resets the password.
- The mail quota: one client address cannot use up the owner's own mails; one
  inbox still gets at most ten mails an hour, whoever asks.
"""

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from auth.totp import code_at
from models import RecoveryCode, User
from tests.api.test_passkeys import log_in as passkey_login
from tests.api.test_passkeys import register as register_passkey
from tests.api.test_passkeys import relying_party
from tests.conftest import PASSWORD, Api, Result, make_environ
from tests.mail_server import Inbox

RESET_URL = "https://app.example/reset?token={token}"
VERIFY_URL = "https://app.example/verify?token={token}"
CHANGE_URL = "https://app.example/confirm-email-change?token={token}"
WRONG = "wrong-Pw1!"
NEW_PASSWORD = "n3w-Secret!"
SQUATTER_PASSWORD = "squ4tter-Pw!"
ACCOUNT_LIMIT = 5  # USER_SERVICE_LOGIN_FAILURES_PER_ACCOUNT's default
MAIL_REQUESTS_PER_ADDRESS = 10  # USER_SERVICE_MAIL_REQUESTS_PER_ADDRESS's default
MAILS_PER_INBOX_AND_ADDRESS = 3  # an hour
MAILS_PER_INBOX = 10  # an hour
VICTIM_ADDRESS = "203.0.113.10"
ATTACKER_ADDRESS = "198.51.100.66"

REQUEST_RESET = "mutation($email: String!) { requestPasswordReset(email: $email) }"
RESET = """mutation($token: String!, $password: String!) {
  resetPassword(token: $token, newPassword: $password) }"""
VERIFY_EMAIL = "mutation($token: String!) { verifyEmail(token: $token) { email } }"
REQUEST_VERIFICATION = "mutation { requestEmailVerification }"
UNLOCK = """mutation($email: String!) {
  unlockAccount(email: $email) { email role } }"""
AUDIT_LOG = """query($action: String!) { auditLog(first: 50, action: $action) {
  edges { node { action actor { email } target { email } } } } }"""
ENROLL = "mutation { enrollTotp { secret } }"
CONFIRM = "mutation($code: String!) { confirmTotp(code: $code) }"
VERIFY_MFA = """mutation($token: String!, $code: String!) {
  verifyMfa(mfaToken: $token, code: $code) { accessToken refreshToken } }"""
REFRESH = """mutation($token: String!) {
  refreshSession(refreshToken: $token) { accessToken refreshToken } }"""
ME = "{ me { email emailVerified mfaEnabled } }"


@pytest.fixture
def environ(tmp_path: Path, inbox: Inbox) -> dict[str, str]:
    """Overrides conftest's: mail goes to `inbox`; X-Forwarded-For names clients."""
    return make_environ(
        tmp_path,
        USER_SERVICE_SMTP_URL=inbox.url,
        USER_SERVICE_RESET_URL=RESET_URL,
        USER_SERVICE_VERIFY_URL=VERIFY_URL,
        USER_SERVICE_EMAIL_CHANGE_URL=CHANGE_URL,
        USER_SERVICE_TRUSTED_PROXIES="*",
    )


# ---- requests, mails and what they hold ---------------------------------------


def from_address(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


def request_reset(api: Api, email: str, address: str = VICTIM_ADDRESS) -> Result:
    return api.gql(REQUEST_RESET, {"email": email}, headers=from_address(address))


def reset(api: Api, token: str, password: str = NEW_PASSWORD) -> Result:
    return api.gql(RESET, {"token": token, "password": password})


def link_tokens(inbox: Inbox, email: str, template: str) -> list[str]:
    """The tokens of every link built from `template` mailed to `email` so far."""
    prefix = re.escape(template.partition("{token}")[0])
    return [
        found
        for mail in inbox.mails(email)
        for found in re.findall(prefix + r"([A-Za-z0-9_-]+)", mail.text)
    ]


def mailed_reset_token(inbox: Inbox, email: str, count: int = 1) -> str:
    """The token of the `count`-th reset mail to `email` (waits for it)."""
    inbox.wait_for(email, count, containing=RESET_URL.partition("{token}")[0])
    return link_tokens(inbox, email, RESET_URL)[count - 1]


def lock(api: Api, email: str) -> None:
    for _ in range(ACCOUNT_LIMIT):
        assert api.login(email, WRONG).error_code == "UNAUTHENTICATED"
    assert api.login(email, PASSWORD).error_code == "RATE_LIMITED"


def code_now(secret: str, *, steps: int = 0) -> str:
    return code_at(secret, datetime.now(UTC) + timedelta(seconds=30 * steps))


def turn_on_totp(api: Api, token: str) -> tuple[str, list[str]]:
    secret = api.gql(ENROLL, token=token).ok()["enrollTotp"]["secret"]
    codes = api.gql(CONFIRM, {"code": code_now(secret)}, token=token).ok()
    return secret, list(codes["confirmTotp"])


def finish_with_code(api: Api, email: str, password: str, code: str) -> Any:
    """Log in to an account with two-factor on; return the pair."""
    login = api.login(email, password)
    assert login.error_code == "MFA_REQUIRED", login.body
    token = login.extensions["mfaToken"]
    return api.gql(VERIFY_MFA, {"token": token, "code": code}).ok()["verifyMfa"]


def unauthenticated(result: Result) -> bool:
    return result.data is None and result.error_code == "UNAUTHENTICATED"


# ---- item 5: lock-out is lifted by a reset or by an ADMIN ------------------------


def test_completed_reset_lifts_the_lock_out(api: Api, inbox: Inbox) -> None:
    api.sign_up("ann@x.io").ok()
    lock(api, "ann@x.io")
    request_reset(api, "ann@x.io").ok()

    assert reset(api, mailed_reset_token(inbox, "ann@x.io")).ok() == {
        "resetPassword": True
    }

    login = api.login("ann@x.io", NEW_PASSWORD).ok()["login"]
    assert login["user"]["email"] == "ann@x.io"


def test_admin_unlock_account_lets_the_owner_log_in_at_once_and_is_audited(
    admin_api: Api,
) -> None:
    admin_api.sign_up("ann@acme.io").ok()
    lock(admin_api, "ann@acme.io")
    boss = admin_api.token("boss@acme.io")

    unlocked = admin_api.gql(UNLOCK, {"email": "ann@acme.io"}, token=boss).ok()

    assert unlocked == {"unlockAccount": {"email": "ann@acme.io", "role": "USER"}}
    assert admin_api.login("ann@acme.io").ok()["login"]["user"]["email"] == (
        "ann@acme.io"
    )
    events = admin_api.gql(AUDIT_LOG, {"action": "ACCOUNT_UNLOCKED"}, token=boss)
    assert events.ok()["auditLog"]["edges"] == [
        {
            "node": {
                "action": "ACCOUNT_UNLOCKED",
                "actor": {"email": "boss@acme.io"},
                "target": {"email": "ann@acme.io"},
            }
        }
    ]


def test_user_cannot_unlock_an_account(admin_api: Api) -> None:
    admin_api.sign_up("ann@acme.io").ok()
    lock(admin_api, "ann@acme.io")
    bob = admin_api.user("bob@acme.io")

    result = admin_api.gql(UNLOCK, {"email": "ann@acme.io"}, token=bob)

    assert result.data is None
    assert result.error_code == "FORBIDDEN"
    assert admin_api.login("ann@acme.io").error_code == "RATE_LIMITED"


def test_admin_cannot_unlock_an_account_of_another_tenant(
    api: Api, admin_api: Api
) -> None:
    api.sign_up("ann@elsewhere.io").ok()  # in the dev tenant only
    lock(api, "ann@elsewhere.io")
    boss = admin_api.token("boss@acme.io")

    result = admin_api.gql(UNLOCK, {"email": "ann@elsewhere.io"}, token=boss)

    assert result.data is None
    assert result.error_code == "NOT_FOUND"
    assert api.login("ann@elsewhere.io").error_code == "RATE_LIMITED"


# ---- item 6: account pre-hijacking -----------------------------------------------


def test_owners_reset_of_an_unverified_account_ends_the_squatters_sessions_and_factors(
    api: Api, inbox: Inbox
) -> None:
    victim = "victim@x.io"
    # The squatter signs up with the victim's address (it stays unverified),
    # turns TOTP on and keeps two sessions: one from before, one through MFA.
    api.sign_up(victim, SQUATTER_PASSWORD).ok()
    first = api.login(victim, SQUATTER_PASSWORD).ok()["login"]
    _, recovery_codes = turn_on_totp(api, first["accessToken"])
    second = finish_with_code(api, victim, SQUATTER_PASSWORD, recovery_codes[0])

    request_reset(api, victim).ok()
    assert reset(api, mailed_reset_token(inbox, victim)).ok() == {"resetPassword": True}

    for pair in (first, second):
        assert unauthenticated(api.gql(ME, token=pair["accessToken"]))
        assert unauthenticated(api.gql(REFRESH, {"token": pair["refreshToken"]}))
    owner = api.login(victim, NEW_PASSWORD).ok()["login"]  # tokens, no MFA_REQUIRED
    assert api.gql(ME, token=owner["accessToken"]).ok() == {
        "me": {"email": victim, "emailVerified": True, "mfaEnabled": False}
    }
    assert unauthenticated(api.login(victim, SQUATTER_PASSWORD))
    account = User.get(User.email == victim)
    assert account.totp_secret is None
    assert account.totp_pending is None
    assert RecoveryCode.select().where(RecoveryCode.user == account).count() == 0


def test_owners_reset_leaves_the_squatter_no_passkey_and_no_pending_email_change(
    api: Api, inbox: Inbox
) -> None:
    """Two ways back in that a squatter could leave behind: a passkey, and a
    link moving the account to the squatter's own address."""
    victim, elsewhere = "victim@x.io", "squatter@evil.io"
    relying_party()
    api.sign_up(victim, SQUATTER_PASSWORD).ok()
    token = api.token(victim, SQUATTER_PASSWORD)
    passkey = register_passkey(api, token)
    assert api.gql(
        "mutation($email: String!, $password: String!) {"
        " requestEmailChange(newEmail: $email, password: $password) }",
        {"email": elsewhere, "password": SQUATTER_PASSWORD},
        token=token,
    ).ok()
    inbox.wait_for(elsewhere, 1, containing=CHANGE_URL.partition("{token}")[0])
    [change] = link_tokens(inbox, elsewhere, CHANGE_URL)

    request_reset(api, victim).ok()
    assert reset(api, mailed_reset_token(inbox, victim)).ok() == {"resetPassword": True}

    assert unauthenticated(passkey_login(api, passkey))
    confirm = "mutation($t: String!) { confirmEmailChange(token: $t) { email } }"
    assert unauthenticated(api.gql(confirm, {"t": change}))
    owner = api.token(victim, NEW_PASSWORD)
    assert api.gql(ME, token=owner).ok()["me"]["email"] == victim


def test_reset_of_a_verified_account_keeps_its_two_factor(
    api: Api, inbox: Inbox
) -> None:
    token = api.user("ann@x.io")
    inbox.wait_for("ann@x.io", 1)
    (verification,) = link_tokens(inbox, "ann@x.io", VERIFY_URL)
    api.gql(VERIFY_EMAIL, {"token": verification}).ok()
    secret, recovery_codes = turn_on_totp(api, token)

    request_reset(api, "ann@x.io").ok()
    reset(api, mailed_reset_token(inbox, "ann@x.io")).ok()

    pair = finish_with_code(api, "ann@x.io", NEW_PASSWORD, recovery_codes[0])
    assert api.gql(ME, token=pair["accessToken"]).ok()["me"]["mfaEnabled"] is True
    assert finish_with_code(api, "ann@x.io", NEW_PASSWORD, code_now(secret, steps=1))


# ---- item 7: the mail quota -------------------------------------------------------


def test_reset_mails_asked_from_one_address_stop_at_three_but_the_owner_still_gets_hers(
    api: Api, inbox: Inbox
) -> None:
    victim = "victim@x.io"
    signed_up = api.gql(
        "mutation($email: String!, $password: String!) {"
        " signUp(input: {email: $email, password: $password}) { email } }",
        {"email": victim, "password": PASSWORD},
        headers=from_address(VICTIM_ADDRESS),
    )
    signed_up.ok()
    inbox.wait_for(victim, 1)  # the verification link

    for _ in range(MAIL_REQUESTS_PER_ADDRESS):  # all the attacker's address may ask
        assert request_reset(api, victim, ATTACKER_ADDRESS).ok() == {
            "requestPasswordReset": True
        }
    inbox.wait_for(victim, 1 + MAILS_PER_INBOX_AND_ADDRESS)
    inbox.stays(victim, 1 + MAILS_PER_INBOX_AND_ADDRESS)

    owner = api.token(victim)
    asked = api.gql(
        REQUEST_VERIFICATION, token=owner, headers=from_address(VICTIM_ADDRESS)
    )
    assert asked.ok() == {"requestEmailVerification": True}
    inbox.wait_for(victim, 2, containing=VERIFY_URL.partition("{token}")[0])
    request_reset(api, victim, VICTIM_ADDRESS).ok()
    token = mailed_reset_token(inbox, victim, MAILS_PER_INBOX_AND_ADDRESS + 1)
    assert reset(api, token).ok() == {"resetPassword": True}
    assert api.login(victim, NEW_PASSWORD).ok()["login"]["user"]["email"] == victim


def test_one_inbox_gets_at_most_ten_mails_an_hour_however_many_addresses_ask(
    api: Api, inbox: Inbox
) -> None:
    api.sign_up("victim@x.io").ok()  # its verification mail is the first of ten

    for number in range(15):
        request_reset(api, "victim@x.io", f"198.51.100.{number + 1}").ok()

    inbox.wait_for("victim@x.io", MAILS_PER_INBOX)
    inbox.stays("victim@x.io", MAILS_PER_INBOX)
