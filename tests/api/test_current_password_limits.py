"""The current password that changePassword and disableTotp ask for is a guess
like a login: with a stolen access token, guessing it is not free (issue 12,
item 2; CONTRACT.md "Amendments (second round)": checks of the current password
count as failed logins)."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest

from auth.totp import code_at
from tests.conftest import PASSWORD, Api, Result
from tests.races import (
    STORAGES,
    app_api,
    assert_rate_limited,
    at_once,
    audited,
    codes,
)

ANN = "ann@x.io"
WRONG = "wrong-Pw1!"
NEW_PASSWORD = "n3w-Secret!"
ACCOUNT_LIMIT = 5  # USER_SERVICE_LOGIN_FAILURES_PER_ACCOUNT's default
BURST = 30

CHANGE = """mutation($current: String!, $new: String!) {
  changePassword(currentPassword: $current, newPassword: $new) }"""
ENROLL = "mutation { enrollTotp { secret } }"
CONFIRM = "mutation($code: String!) { confirmTotp(code: $code) }"
DISABLE = """mutation($password: String!, $code: String!) {
  disableTotp(password: $password, code: $code) }"""
MFA_ENABLED = "{ me { mfaEnabled } }"


@pytest.fixture(params=STORAGES)
def limited_api(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Api]:
    with app_api(tmp_path, str(request.param)) as api:
        yield api


def change_password(api: Api, token: str, current: str) -> Result:
    return api.gql(CHANGE, {"current": current, "new": NEW_PASSWORD}, token=token)


def code_now(secret: str, *, steps: int = 0) -> str:
    return code_at(secret, datetime.now(UTC) + timedelta(seconds=30 * steps))


def with_totp(api: Api) -> tuple[str, str]:
    """Ann, logged in, with two-factor on: her access token and TOTP secret."""
    token = api.user(ANN)
    secret = api.gql(ENROLL, token=token).ok()["enrollTotp"]["secret"]
    api.gql(CONFIRM, {"code": code_now(secret)}, token=token).ok()
    return token, secret


def disable_totp(api: Api, token: str, password: str, code: str) -> Result:
    return api.gql(DISABLE, {"password": password, "code": code}, token=token)


# ---- changePassword ------------------------------------------------------------


def test_five_wrong_current_passwords_lock_change_password_and_login(
    limited_api: Api,
) -> None:
    api = limited_api
    token = api.user(ANN)
    for _ in range(ACCOUNT_LIMIT):
        result = change_password(api, token, WRONG)
        assert result.error_code == "UNAUTHENTICATED", result.body

    assert_rate_limited(change_password(api, token, PASSWORD))
    assert_rate_limited(api.login(ANN, PASSWORD))
    assert audited("LOGIN_FAILED") == ACCOUNT_LIMIT
    assert audited("PASSWORD_CHANGED") == 0


def test_failed_logins_count_against_change_password_too(limited_api: Api) -> None:
    api = limited_api
    token = api.user(ANN)
    for _ in range(ACCOUNT_LIMIT):
        assert api.login(ANN, WRONG).error_code == "UNAUTHENTICATED"

    assert_rate_limited(change_password(api, token, PASSWORD))


def test_concurrent_wrong_current_passwords_get_five_judgements(
    limited_api: Api,
) -> None:
    api = limited_api
    token = api.user(ANN)
    guess = partial(change_password, api, token, WRONG)

    results = at_once([guess] * BURST)

    assert codes(results) == {
        "UNAUTHENTICATED": ACCOUNT_LIMIT,
        "RATE_LIMITED": BURST - ACCOUNT_LIMIT,
    }
    assert audited("LOGIN_FAILED") == ACCOUNT_LIMIT
    assert_rate_limited(change_password(api, token, PASSWORD))
    assert_rate_limited(api.login(ANN, PASSWORD))


# ---- disableTotp ---------------------------------------------------------------


def test_five_wrong_passwords_lock_disable_totp_and_login(limited_api: Api) -> None:
    api = limited_api
    token, secret = with_totp(api)
    for _ in range(ACCOUNT_LIMIT):
        result = disable_totp(api, token, WRONG, code_now(secret, steps=1))
        assert result.error_code == "UNAUTHENTICATED", result.body

    assert_rate_limited(disable_totp(api, token, PASSWORD, code_now(secret, steps=1)))
    assert_rate_limited(api.login(ANN, PASSWORD))
    assert audited("LOGIN_FAILED") == ACCOUNT_LIMIT
    assert api.gql(MFA_ENABLED, token=token).ok() == {"me": {"mfaEnabled": True}}


def test_concurrent_wrong_passwords_of_disable_totp_get_five_judgements(
    limited_api: Api,
) -> None:
    api = limited_api
    token, secret = with_totp(api)
    guess = partial(disable_totp, api, token, WRONG, code_now(secret, steps=1))

    results = at_once([guess] * BURST)

    assert codes(results) == {
        "UNAUTHENTICATED": ACCOUNT_LIMIT,
        "RATE_LIMITED": BURST - ACCOUNT_LIMIT,
    }
    assert audited("LOGIN_FAILED") == ACCOUNT_LIMIT
    assert_rate_limited(api.login(ANN, PASSWORD))
    assert api.gql(MFA_ENABLED, token=token).ok() == {"me": {"mfaEnabled": True}}
