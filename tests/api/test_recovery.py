"""Account recovery and email verification through the real app, with mail
delivered over SMTP to a real server on loopback (CONTRACT.md "Account recovery
and email verification"; issue 9)."""

import contextlib
import logging
import re
import statistics
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

import mail
import resolvers.recovery
from app import create_app
from auth.opaque import new_token
from models import EmailToken
from models.db import close_database, utcnow
from settings import Settings
from tests.conftest import PASSWORD, Api, Result, make_environ
from tests.mail_server import Inbox, Received, free_port, running_inbox

RESET_URL = "https://app.example/reset-password?lang=en&token={token}"
VERIFY_URL = "https://app.example/verify-email?token={token}"
RESET_LINK = RESET_URL.partition("{token}")[0]
VERIFY_LINK = VERIFY_URL.partition("{token}")[0]
MAIL_FROM = "Acme Accounts <accounts@app.example>"
ANN = "ann@x.io"
NEW_PASSWORD = "n3w-Secret!"
OTHER_PASSWORD = "0ther-Secret!"
WRONG = "wrong-Pw1!"
USED_LINK = "This link is invalid, used or expired."
MAIL_LOGGER = "user_service.mail"
TINY_PAUSES = (0.01, 0.01, 0.01)

REQUEST_RESET = "mutation($email: String!) { requestPasswordReset(email: $email) }"
RESET = """mutation($token: String!, $password: String!) {
  resetPassword(token: $token, newPassword: $password) }"""
REQUEST_VERIFICATION = "mutation { requestEmailVerification }"
VERIFY = """mutation($token: String!) {
  verifyEmail(token: $token) { email emailVerified } }"""
EMAIL_VERIFIED = "{ me { email emailVerified } }"
REFRESH = (
    "mutation($token: String!) { refreshSession(refreshToken: $token) { accessToken } }"
)
SET_ACTIVE = """mutation($email: String!, $active: Boolean!) {
  setUserActive(email: $email, active: $active) { active } }"""
AUDIT_LOG = """{ auditLog(first: 100) { pageInfo { hasNextPage }
  edges { node { action actor { email } target { email } detail } } } }"""


# ---- the app, pointed at the loopback SMTP server --------------------------------


def mail_environ(
    tmp_path: Path, smtp_url: str | None, **overrides: str
) -> dict[str, str]:
    mail_settings = {
        "USER_SERVICE_MAIL_FROM": MAIL_FROM,
        "USER_SERVICE_RESET_URL": RESET_URL,
        "USER_SERVICE_VERIFY_URL": VERIFY_URL,
    }
    if smtp_url is not None:
        mail_settings["USER_SERVICE_SMTP_URL"] = smtp_url
    return make_environ(tmp_path, **mail_settings, **overrides)


@contextlib.contextmanager
def app_api(environ: dict[str, str]) -> Iterator[Api]:
    """A running app for `environ` (lifespan and mail task included), dev tenant."""
    settings = Settings.from_env(environ)
    with TestClient(create_app(settings)) as client:
        yield Api(client, settings.dev_api_key, settings)
    close_database()


@pytest.fixture
def environ(tmp_path: Path, inbox: Inbox) -> dict[str, str]:
    """Overrides conftest's: `api` and `admin_api` mail to `inbox`."""
    return mail_environ(tmp_path, inbox.url)


@pytest.fixture
def strict_api(tmp_path: Path, inbox: Inbox) -> Iterator[Api]:
    environ = mail_environ(
        tmp_path, inbox.url, USER_SERVICE_REQUIRE_VERIFIED_EMAIL="true"
    )
    with app_api(environ) as api:
        yield api


@pytest.fixture
def issued(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every token the recovery resolvers issue, as the mail would carry it."""
    tokens: list[str] = []

    def spy(prefix: str = "") -> str:
        tokens.append(new_token(prefix))
        return tokens[-1]

    monkeypatch.setattr(resolvers.recovery, "new_token", spy)
    return tokens


# ---- requests and what the mails hold --------------------------------------------


def request_reset(api: Api, email: str) -> Result:
    return api.gql(REQUEST_RESET, {"email": email})


def reset(api: Api, token: str, password: str = NEW_PASSWORD) -> Result:
    return api.gql(RESET, {"token": token, "password": password})


def verify(api: Api, token: str) -> Result:
    return api.gql(VERIFY, {"token": token})


def email_verified(api: Api, token: str) -> bool:
    return bool(api.gql(EMAIL_VERIFIED, token=token).ok()["me"]["emailVerified"])


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.hrefs += [value or "" for name, value in attrs if name == "href"]


def hrefs(html: str) -> list[str]:
    parser = Links()
    parser.feed(html)
    parser.close()
    return parser.hrefs


def token_in(text: str, template: str) -> str:
    """The token of the one link built from `template` in `text`."""
    prefix, _, suffix = template.partition("{token}")
    pattern = re.escape(prefix) + r"([A-Za-z0-9_-]+)" + re.escape(suffix)
    found = re.findall(pattern, text)
    assert len(found) == 1, text
    return str(found[0])


def link_token(mail: Received, template: str) -> str:
    """The token of the mail's link: the same in its text and its HTML part."""
    token = token_in(mail.text, template)
    assert len(token) >= 43  # at least 256 random bits, base64url
    assert hrefs(mail.html) == [template.replace("{token}", token)]
    return token


def reset_token(inbox: Inbox, email: str, count: int = 1) -> str:
    """The token of the `count`-th reset mail for `email` (waits for it)."""
    mails = inbox.wait_for(email, count, containing=RESET_LINK)
    return link_token(mails[count - 1], RESET_URL)


def verify_token(inbox: Inbox, email: str, count: int = 1) -> str:
    """The token of the `count`-th verification mail for `email` (waits for it)."""
    mails = inbox.wait_for(email, count, containing=VERIFY_LINK)
    return link_token(mails[count - 1], VERIFY_URL)


def login_pair(api: Api, email: str, password: str = PASSWORD) -> tuple[str, str]:
    payload = api.login(email, password).ok()["login"]
    return payload["accessToken"], payload["refreshToken"]


def expire_tokens() -> None:
    EmailToken.update(expires_at=utcnow() - timedelta(seconds=1)).execute()


def assert_used_link(result: Result) -> None:
    assert result.data is None
    assert result.error_code == "UNAUTHENTICATED", result.errors
    assert result.errors[0]["message"] == USED_LINK
    assert "reason" not in result.extensions


def assert_rate_limited(result: Result, window: int) -> None:
    assert result.data is None
    assert result.error_code == "RATE_LIMITED", result.errors
    retry_after = result.extensions["retryAfter"]
    assert isinstance(retry_after, int)
    assert 0 < retry_after <= window


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


# ---- the reset mail --------------------------------------------------------------


def test_reset_request_for_a_known_email_mails_its_link_to_that_address(
    admin_api: Api, inbox: Inbox
) -> None:
    admin_api.sign_up("ann@acme.io").ok()

    result = request_reset(admin_api, "ann@acme.io")

    assert result.status == 200
    assert result.body == {"data": {"requestPasswordReset": True}}
    (received,) = inbox.wait_for("ann@acme.io", containing=RESET_LINK)
    assert received.rcpt_tos == ("ann@acme.io",)
    assert received.mail_from == "accounts@app.example"
    message = received.message
    assert message["From"] == MAIL_FROM
    assert message["To"] == "ann@acme.io"
    assert received.subject == "Reset your acme password"
    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == [
        "text/plain",
        "text/html",
    ]
    assert "your acme account (ann@acme.io)" in " ".join(received.text.split())
    assert "<b>acme</b>" in received.html
    link_token(received, RESET_URL)


def test_reset_with_the_mailed_token_replaces_the_password(
    api: Api, inbox: Inbox
) -> None:
    api.sign_up(ANN).ok()
    request_reset(api, ANN).ok()

    result = reset(api, reset_token(inbox, ANN))

    assert result.body == {"data": {"resetPassword": True}}
    assert api.login(ANN, PASSWORD).error_code == "UNAUTHENTICATED"
    assert api.login(ANN, NEW_PASSWORD).ok()["login"]["user"]["email"] == ANN


def test_reset_ends_every_session_and_access_token_of_the_account(
    api: Api, inbox: Inbox
) -> None:
    api.sign_up(ANN).ok()
    sessions = [login_pair(api, ANN), login_pair(api, ANN)]
    request_reset(api, ANN).ok()

    reset(api, reset_token(inbox, ANN)).ok()

    for access, refresh in sessions:
        assert api.me(access).error_code == "UNAUTHENTICATED"
        assert api.gql(REFRESH, {"token": refresh}).error_code == "UNAUTHENTICATED"
    fresh, _ = login_pair(api, ANN, NEW_PASSWORD)
    assert api.me(fresh).ok()["me"]["email"] == ANN


def test_reset_token_used_a_second_time_is_unauthenticated(
    api: Api, inbox: Inbox
) -> None:
    api.sign_up(ANN).ok()
    request_reset(api, ANN).ok()
    token = reset_token(inbox, ANN)
    reset(api, token).ok()

    assert_used_link(reset(api, token, OTHER_PASSWORD))
    assert api.login(ANN, NEW_PASSWORD).ok()
    assert api.login(ANN, OTHER_PASSWORD).error_code == "UNAUTHENTICATED"


def test_reset_token_past_its_expiry_is_unauthenticated(api: Api, inbox: Inbox) -> None:
    api.sign_up(ANN).ok()
    request_reset(api, ANN).ok()
    token = reset_token(inbox, ANN)
    expire_tokens()

    assert_used_link(reset(api, token))
    assert api.login(ANN, PASSWORD).ok()


def test_reset_token_lives_one_hour_and_is_stored_only_hashed(
    api: Api, inbox: Inbox
) -> None:
    api.sign_up(ANN).ok()
    EmailToken.delete().execute()  # the sign-up's verification token
    before = utcnow()
    request_reset(api, ANN).ok()
    after = utcnow()
    token = reset_token(inbox, ANN)

    (row,) = EmailToken.select()
    assert before + timedelta(hours=1) - timedelta(seconds=1) <= row.expires_at
    assert row.expires_at <= after + timedelta(hours=1) + timedelta(seconds=1)
    assert row.used_at is None
    stored = [str(value) for value in row.__data__.values()]
    assert not any(token in value for value in stored), stored


def test_each_reset_request_mails_a_new_random_token(api: Api, inbox: Inbox) -> None:
    api.sign_up(ANN).ok()
    request_reset(api, ANN).ok()
    request_reset(api, ANN).ok()

    first, second = reset_token(inbox, ANN, 1), reset_token(inbox, ANN, 2)

    assert first != second


def test_weak_new_password_is_bad_user_input_and_the_token_stays_good(
    api: Api, inbox: Inbox
) -> None:
    api.sign_up(ANN).ok()
    request_reset(api, ANN).ok()
    token = reset_token(inbox, ANN)

    weak = reset(api, token, "Password1!")

    assert weak.data is None
    assert weak.error_code == "BAD_USER_INPUT"
    assert weak.extensions["fields"] == {"newPassword": "Password is too common."}
    assert api.login(ANN, PASSWORD).ok()
    assert reset(api, token).ok() == {"resetPassword": True}
    assert api.login(ANN, NEW_PASSWORD).ok()


def test_reset_and_verification_tokens_are_refused_for_each_others_purpose(
    api: Api, inbox: Inbox
) -> None:
    api.sign_up(ANN).ok()
    request_reset(api, ANN).ok()
    for_reset, for_verify = reset_token(inbox, ANN), verify_token(inbox, ANN)

    assert_used_link(verify(api, for_reset))
    assert_used_link(reset(api, for_verify))

    assert api.login(ANN, PASSWORD).ok()
    assert verify(api, for_verify).ok()["verifyEmail"]["emailVerified"] is True
    assert reset(api, for_reset).ok() == {"resetPassword": True}


def test_reset_token_of_one_tenant_is_refused_with_another_tenants_key(
    api: Api, admin_api: Api, inbox: Inbox
) -> None:
    api.sign_up(ANN).ok()
    admin_api.sign_up(ANN).ok()  # the same address in tenant acme
    request_reset(api, ANN).ok()
    (received,) = inbox.wait_for(ANN, containing=RESET_LINK)
    assert received.subject == "Reset your dev password"
    token = link_token(received, RESET_URL)

    assert_used_link(reset(admin_api, token))

    assert admin_api.login(ANN, PASSWORD).ok()
    assert reset(api, token).ok() == {"resetPassword": True}
    assert admin_api.login(ANN, PASSWORD).ok()  # acme's ann is untouched


@pytest.mark.parametrize(
    "token", ["", "x" * 5000, "not-a-token"], ids=["empty", "huge", "unknown"]
)
def test_junk_reset_and_verification_tokens_are_unauthenticated(
    api: Api, token: str
) -> None:
    assert_used_link(reset(api, token))
    assert_used_link(verify(api, token))


def test_deactivated_account_gets_no_reset_mail_and_its_link_stops_working(
    admin_api: Api, inbox: Inbox
) -> None:
    boss = admin_api.token("boss@acme.io")
    admin_api.sign_up("ann@acme.io").ok()
    request_reset(admin_api, "ann@acme.io").ok()
    token = reset_token(inbox, "ann@acme.io")
    variables = {"email": "ann@acme.io", "active": False}
    admin_api.gql(SET_ACTIVE, variables, token=boss).ok()

    assert_used_link(reset(admin_api, token))
    assert request_reset(admin_api, "ann@acme.io").ok() == {
        "requestPasswordReset": True
    }
    inbox.stays("ann@acme.io", 2)  # the sign-up's and the first reset's


def test_reset_with_one_link_ends_the_other_reset_links_of_the_account(
    api: Api, inbox: Inbox
) -> None:
    api.sign_up(ANN).ok()
    request_reset(api, ANN).ok()
    request_reset(api, ANN).ok()
    older, newer = reset_token(inbox, ANN, 1), reset_token(inbox, ANN, 2)

    reset(api, newer).ok()

    # Whoever finds the older mail must not take the account over again.
    assert_used_link(reset(api, older, OTHER_PASSWORD))
    assert api.login(ANN, NEW_PASSWORD).ok()


# ---- unknown emails look like known ones ---------------------------------------


@pytest.mark.parametrize("unknown", ["nobody@x.io", "not an email"])
def test_reset_request_for_an_unknown_email_answers_like_a_known_one_mailing_nothing(
    api: Api, inbox: Inbox, unknown: str
) -> None:
    api.sign_up(ANN).ok()

    known_result, unknown_result = request_reset(api, ANN), request_reset(api, unknown)

    assert unknown_result.status == known_result.status == 200
    assert unknown_result.body == known_result.body
    assert unknown_result.body == {"data": {"requestPasswordReset": True}}
    reset_token(inbox, ANN)
    inbox.stays(unknown, 0)
    assert len(inbox.mails()) == 2  # ann's verification and reset, nothing else


def test_reset_request_takes_about_as_long_for_an_unknown_email(
    tmp_path: Path, inbox: Inbox
) -> None:
    environ = mail_environ(
        tmp_path, inbox.url, USER_SERVICE_MAIL_REQUESTS_PER_ADDRESS="1000 per hour"
    )
    rounds = 9
    with app_api(environ) as api:
        # One account per round: the per-account mail cap must not skip work.
        for number in range(rounds + 1):
            api.sign_up(f"known{number}@x.io").ok()
            verify_token(inbox, f"known{number}@x.io")

        def timed(email: str) -> float:
            start = time.perf_counter()
            assert request_reset(api, email).ok() == {"requestPasswordReset": True}
            elapsed = time.perf_counter() - start
            if email.startswith("known"):  # no delivery in the next measurement
                reset_token(inbox, email)
            return elapsed

        timed("known0@x.io")  # warm-up
        timed("unknown0@x.io")
        known: list[float] = []
        unknown: list[float] = []
        for number in range(1, rounds + 1):
            pair = [f"known{number}@x.io", f"unknown{number}@x.io"]
            for email in pair if number % 2 else reversed(pair):
                (known if email.startswith("known") else unknown).append(timed(email))

    ratio = statistics.median(unknown) / statistics.median(known)
    assert 0.33 <= ratio <= 3, (known, unknown)


# ---- email verification ----------------------------------------------------------


def test_sign_up_mails_a_verification_link_and_the_email_starts_unverified(
    api: Api, inbox: Inbox
) -> None:
    api.sign_up(ANN).ok()

    (received,) = inbox.wait_for(ANN)
    assert received.subject == "Confirm your email for dev"
    assert received.message["From"] == MAIL_FROM
    assert received.rcpt_tos == (ANN,)
    text = " ".join(received.text.split())
    assert "confirm that ann@x.io is your address for your dev account" in text
    link_token(received, VERIFY_URL)
    assert email_verified(api, api.token(ANN)) is False


def test_verify_email_with_the_mailed_token_marks_the_email_verified(
    api: Api, inbox: Inbox
) -> None:
    api.sign_up(ANN).ok()

    result = verify(api, verify_token(inbox, ANN))

    assert result.body == {
        "data": {"verifyEmail": {"email": ANN, "emailVerified": True}}
    }
    assert email_verified(api, api.token(ANN)) is True


def test_verification_token_used_a_second_time_is_unauthenticated(
    api: Api, inbox: Inbox
) -> None:
    api.sign_up(ANN).ok()
    token = verify_token(inbox, ANN)
    verify(api, token).ok()

    assert_used_link(verify(api, token))


def test_verification_token_past_its_expiry_is_unauthenticated(
    api: Api, inbox: Inbox
) -> None:
    api.sign_up(ANN).ok()
    token = verify_token(inbox, ANN)
    expire_tokens()

    assert_used_link(verify(api, token))
    assert email_verified(api, api.token(ANN)) is False


def test_verification_token_lives_24_hours_and_is_stored_only_hashed(
    api: Api, inbox: Inbox
) -> None:
    before = utcnow()
    api.sign_up(ANN).ok()
    after = utcnow()
    token = verify_token(inbox, ANN)

    (row,) = EmailToken.select()
    expires_at: datetime = row.expires_at
    assert before + timedelta(hours=24) - timedelta(seconds=1) <= expires_at
    assert expires_at <= after + timedelta(hours=24) + timedelta(seconds=1)
    stored = [str(value) for value in row.__data__.values()]
    assert not any(token in value for value in stored), stored


def test_request_email_verification_without_an_access_token_is_unauthenticated(
    api: Api,
) -> None:
    result = api.gql(REQUEST_VERIFICATION)
    assert result.data is None
    assert result.error_code == "UNAUTHENTICATED"


def test_request_email_verification_while_unverified_mails_a_new_working_link(
    api: Api, inbox: Inbox
) -> None:
    access = api.user(ANN)
    first = verify_token(inbox, ANN)

    result = api.gql(REQUEST_VERIFICATION, token=access)

    assert result.body == {"data": {"requestEmailVerification": True}}
    second = verify_token(inbox, ANN, 2)
    assert second != first
    assert verify(api, second).ok()["verifyEmail"]["emailVerified"] is True
    assert email_verified(api, access) is True


def test_request_email_verification_once_verified_answers_true_and_mails_nothing(
    api: Api, inbox: Inbox
) -> None:
    access = api.user(ANN)
    verify(api, verify_token(inbox, ANN)).ok()

    result = api.gql(REQUEST_VERIFICATION, token=access)

    assert result.body == {"data": {"requestEmailVerification": True}}
    inbox.stays(ANN, 1)


# ---- USER_SERVICE_REQUIRE_VERIFIED_EMAIL -----------------------------------------


def test_login_of_an_unverified_account_is_email_not_verified_when_required(
    strict_api: Api,
) -> None:
    strict_api.sign_up(ANN).ok()

    result = strict_api.login(ANN, PASSWORD)

    assert result.data is None
    assert result.error_code == "EMAIL_NOT_VERIFIED"


def test_login_of_an_unverified_account_with_a_wrong_password_is_unauthenticated(
    strict_api: Api,
) -> None:
    strict_api.sign_up(ANN).ok()

    result = strict_api.login(ANN, WRONG)

    assert result.data is None
    assert result.error_code == "UNAUTHENTICATED"


def test_login_after_verify_email_works_when_verification_is_required(
    strict_api: Api, inbox: Inbox
) -> None:
    strict_api.sign_up(ANN).ok()
    verify(strict_api, verify_token(inbox, ANN)).ok()

    payload = strict_api.login(ANN, PASSWORD).ok()["login"]

    assert payload["user"]["email"] == ANN


def test_password_reset_counts_as_verification_when_it_is_required(
    strict_api: Api, inbox: Inbox
) -> None:
    strict_api.sign_up(ANN).ok()
    request_reset(strict_api, ANN).ok()
    reset(strict_api, reset_token(inbox, ANN)).ok()

    access = strict_api.token(ANN, NEW_PASSWORD)

    assert email_verified(strict_api, access) is True


# ---- delivery: SMTP down, slow, or absent ----------------------------------------


def mail_failures(api: Api) -> float:
    text = api.client.get("/metrics").text
    (line,) = [
        line
        for line in text.splitlines()
        if line.startswith("user_service_mail_failures_total ")
    ]
    return float(line.split()[1])


def mail_records(
    caplog: pytest.LogCaptureFixture, level: int = logging.INFO
) -> list[logging.LogRecord]:
    return [
        record
        for record in list(caplog.records)
        if record.name == MAIL_LOGGER and record.levelno >= level
    ]


@pytest.fixture
def smtp_down_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    """SMTP at a loopback port nothing listens on; retries without long pauses."""
    monkeypatch.setattr(mail, "RETRY_PAUSES", TINY_PAUSES)
    environ = mail_environ(tmp_path, f"smtp://127.0.0.1:{free_port()}")
    with app_api(environ) as api:
        yield api


def test_reset_request_answers_true_quickly_when_smtp_is_down_and_logs_no_token(
    smtp_down_api: Api, caplog: pytest.LogCaptureFixture, issued: list[str]
) -> None:
    api = smtp_down_api
    caplog.set_level(logging.INFO)
    api.sign_up(ANN).ok()

    start = time.monotonic()
    result = request_reset(api, ANN)
    elapsed = time.monotonic() - start

    assert result.body == {"data": {"requestPasswordReset": True}}
    assert elapsed < 2.0
    wait_until(lambda: len(mail_records(caplog, logging.ERROR)) == 2)
    assert len(mail_records(caplog, logging.WARNING)) == 2 * (len(TINY_PAUSES) + 2)
    assert len(issued) == 2  # the sign-up's and the reset's
    for record in caplog.records:
        text = record.getMessage()
        assert not any(token in text for token in issued), text
        assert "token=" not in text, text
    assert api.login(ANN, PASSWORD).ok()  # nothing broke
    assert request_reset(api, ANN).ok() == {"requestPasswordReset": True}


def test_mail_given_up_after_every_retry_counts_in_the_failure_metric(
    smtp_down_api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    api = smtp_down_api
    caplog.set_level(logging.WARNING, logger=MAIL_LOGGER)
    before = mail_failures(api)
    api.sign_up(ANN).ok()
    wait_until(lambda: mail_failures(api) == before + 1)
    attempts = [
        record
        for record in mail_records(caplog, logging.WARNING)
        if record.levelno == logging.WARNING
    ]
    assert len(attempts) == len(TINY_PAUSES) + 1

    request_reset(api, ANN).ok()

    wait_until(lambda: mail_failures(api) == before + 2)


def test_reset_request_does_not_wait_for_a_slow_smtp_server(tmp_path: Path) -> None:
    with (
        running_inbox(delay=1.5) as slow,
        app_api(mail_environ(tmp_path, slow.url)) as api,
    ):
        api.sign_up(ANN).ok()  # its mail keeps the server busy for a while
        start = time.monotonic()
        assert request_reset(api, ANN).ok() == {"requestPasswordReset": True}
        assert time.monotonic() - start < 1.0
        assert not slow.mails(ANN, containing=RESET_LINK)
        token = reset_token(slow, ANN)  # it arrives later all the same
        assert reset(api, token).ok() == {"resetPassword": True}


def test_development_without_smtp_writes_each_mail_and_its_link_to_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=MAIL_LOGGER)
    with app_api(mail_environ(tmp_path, None)) as api:
        api.sign_up(ANN).ok()
        request_reset(api, ANN).ok()

        def logged(link: str) -> list[str]:
            return [
                record.getMessage()
                for record in mail_records(caplog)
                if link in record.getMessage()
            ]

        wait_until(lambda: bool(logged(RESET_LINK)) and bool(logged(VERIFY_LINK)))
        (reset_mail,) = logged(RESET_LINK)
        assert ANN in reset_mail
        assert "Reset your dev password" in reset_mail
        token = token_in(reset_mail, RESET_URL)
        assert reset(api, token).ok() == {"resetPassword": True}
        (verify_mail,) = logged(VERIFY_LINK)
        verify(api, token_in(verify_mail, VERIFY_URL)).ok()


def test_production_without_smtp_logs_that_a_mail_was_not_sent_but_not_its_link(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, issued: list[str]
) -> None:
    caplog.set_level(logging.INFO)
    environ = mail_environ(
        tmp_path, None, USER_SERVICE_ENV="production", USER_SERVICE_BCRYPT_COST="10"
    )
    settings = Settings.from_env(environ)
    with TestClient(create_app(settings)) as client:
        api = Api(client, "", settings).tenant("acme")
        api.sign_up("ann@acme.io").ok()
        request_reset(api, "ann@acme.io").ok()
        wait_until(lambda: len(mail_records(caplog, logging.WARNING)) == 2)
    close_database()

    assert len(issued) == 2
    for record in caplog.records:
        text = record.getMessage()
        assert not any(token in text for token in issued), text
        assert RESET_LINK not in text
        assert VERIFY_LINK not in text


# ---- rate limits -----------------------------------------------------------------


def test_fourth_reset_request_from_one_address_is_rate_limited_at_three_per_hour(
    tmp_path: Path, inbox: Inbox
) -> None:
    environ = mail_environ(
        tmp_path, inbox.url, USER_SERVICE_MAIL_REQUESTS_PER_ADDRESS="3 per hour"
    )
    with app_api(environ) as api:
        api.sign_up(ANN).ok()
        for email in (ANN, "nobody@x.io", "someone@x.io"):
            assert request_reset(api, email).ok() == {"requestPasswordReset": True}

        assert_rate_limited(request_reset(api, "else@x.io"), 3600)
        assert_rate_limited(request_reset(api, ANN), 3600)


def test_one_address_gets_at_most_three_mails_sent_to_one_account(
    api: Api, inbox: Inbox
) -> None:
    api.sign_up(ANN).ok()

    for _ in range(7):
        assert request_reset(api, ANN).ok() == {"requestPasswordReset": True}

    inbox.wait_for(ANN, 3)
    inbox.stays(ANN, 3)  # the sign-up's verification and 2 reset links
    assert len(inbox.mails(ANN, containing=RESET_LINK)) == 2


def test_document_with_two_reset_password_fields_is_refused_and_spends_nothing(
    api: Api, inbox: Inbox
) -> None:
    api.sign_up(ANN).ok()
    request_reset(api, ANN).ok()
    token = reset_token(inbox, ANN)
    document = """mutation($token: String!) {
      a: resetPassword(token: $token, newPassword: "n3w-Secret!")
      b: resetPassword(token: $token, newPassword: "0ther-Secret!") }"""

    result = api.gql(document, {"token": token})

    assert result.data is None
    assert {error["extensions"]["code"] for error in result.errors} == {
        "GRAPHQL_VALIDATION_FAILED"
    }
    assert api.login(ANN, PASSWORD).ok()
    assert reset(api, token).ok() == {"resetPassword": True}


@pytest.mark.parametrize("attempt", [reset, verify], ids=["reset", "verify"])
def test_junk_link_tokens_count_against_the_address_guess_limit(
    tmp_path: Path, inbox: Inbox, attempt: Callable[[Api, str], Result]
) -> None:
    environ = mail_environ(
        tmp_path, inbox.url, USER_SERVICE_TOKEN_GUESSES_PER_ADDRESS="3 per minute"
    )
    with app_api(environ) as api:
        api.sign_up(ANN).ok()
        request_reset(api, ANN).ok()
        good = reset_token(inbox, ANN) if attempt is reset else verify_token(inbox, ANN)
        for number in range(3):
            assert_used_link(attempt(api, f"junk-{number}"))

        assert_rate_limited(attempt(api, good), 60)  # even the right token, now
        assert api.login(ANN, PASSWORD).ok()  # passwords have a limit of their own
        assert EmailToken.select().where(EmailToken.used_at.is_null(False)).count() == 0


# ---- the audit log ---------------------------------------------------------------

RECOVERY_ACTIONS = {
    "PASSWORD_RESET_REQUESTED",
    "PASSWORD_RESET",
    "EMAIL_VERIFICATION_SENT",
    "EMAIL_VERIFIED",
}
Event = tuple[str, str | None, str | None, str | None]


def recovery_events(api: Api, boss: str) -> list[Event]:
    """acme's recovery events, newest first: (action, actor, target, detail)."""
    page = api.gql(AUDIT_LOG, token=boss).ok()["auditLog"]
    assert page["pageInfo"]["hasNextPage"] is False
    nodes: list[dict[str, Any]] = [edge["node"] for edge in page["edges"]]
    return [
        (
            node["action"],
            (node["actor"] or {}).get("email"),
            (node["target"] or {}).get("email"),
            node["detail"],
        )
        for node in nodes
        if node["action"] in RECOVERY_ACTIONS
    ]


def test_audit_log_records_a_reset_request_and_the_reset(
    admin_api: Api, inbox: Inbox
) -> None:
    boss = admin_api.token("boss@acme.io")
    admin_api.sign_up("ann@acme.io").ok()
    request_reset(admin_api, "ann@acme.io").ok()
    request_reset(admin_api, "nobody@acme.io").ok()
    reset(admin_api, reset_token(inbox, "ann@acme.io")).ok()

    assert recovery_events(admin_api, boss) == [
        # The link reached the inbox: the reset verified the email too.
        ("EMAIL_VERIFIED", "ann@acme.io", "ann@acme.io", None),
        ("PASSWORD_RESET", "ann@acme.io", "ann@acme.io", None),
        ("PASSWORD_RESET_REQUESTED", None, "ann@acme.io", None),
    ]


def test_audit_log_records_verification_sent_on_request_only_and_verified(
    admin_api: Api, inbox: Inbox
) -> None:
    boss = admin_api.token("boss@acme.io")
    access = admin_api.user("ann@acme.io")
    verify_token(inbox, "ann@acme.io")  # the sign-up's: not recorded as sent
    assert recovery_events(admin_api, boss) == []

    admin_api.gql(REQUEST_VERIFICATION, token=access).ok()
    verify(admin_api, verify_token(inbox, "ann@acme.io", 2)).ok()

    assert recovery_events(admin_api, boss) == [
        ("EMAIL_VERIFIED", "ann@acme.io", "ann@acme.io", None),
        ("EMAIL_VERIFICATION_SENT", "ann@acme.io", "ann@acme.io", None),
    ]
