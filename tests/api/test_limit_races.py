"""Limits under concurrency, through the real app in one process: of N attempts
sent at the same instant, no more are judged than the limit allows (issue 12,
item 1; CONTRACT.md "Amendments (second round)": every attempt a limit counts is
counted before it is judged).

Each limit is attacked with memory storage and with Redis storage. One event
loop serves every request here: with memory storage only the slow work between
a check and a count (bcrypt, a database read) lets guesses through; with Redis
every call to the storage is a wait in which other requests run, as on several
workers. tests/test_limit_races_servers.py repeats the attacks on two worker
processes sharing Redis.
"""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest

import resolvers.recovery
from auth.opaque import new_token
from auth.totp import code_at
from models import User
from tests.conftest import PASSWORD, Api
from tests.races import (
    STORAGES,
    Refusals,
    app_api,
    assert_rate_limited,
    at_once,
    audited,
    codes,
)

ANN = "ann@x.io"
WRONG = "wrong-Pw1!"
NEW_PASSWORD = "n3w-Secret!"
ACCOUNT_LIMIT = 5  # USER_SERVICE_LOGIN_FAILURES_PER_ACCOUNT's default, 5 per 15 min
CODE_LIMIT = 5  # USER_SERVICE_CODE_FAILURES_PER_ACCOUNT's default
SMALL_LIMIT = 5
BURST = 60

ENROLL = "mutation { enrollTotp { secret } }"
CONFIRM = "mutation($code: String!) { confirmTotp(code: $code) }"
VERIFY_MFA = """mutation($token: String!, $code: String!) {
  verifyMfa(mfaToken: $token, code: $code) { accessToken } }"""
REQUEST_RESET = "mutation($email: String!) { requestPasswordReset(email: $email) }"
RESET = """mutation($token: String!, $password: String!) {
  resetPassword(token: $token, newPassword: $password) }"""


# ---- the app, with memory or Redis storage ------------------------------------


@pytest.fixture(params=STORAGES)
def storage(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def limited_api(tmp_path: Path, storage: str) -> Iterator[Api]:
    with app_api(tmp_path, storage) as api:
        yield api


# ---- failed logins per account -------------------------------------------------


def test_concurrent_wrong_logins_get_five_judgements_and_the_right_password_amid_them_is_refused(  # noqa: E501
    limited_api: Api,
) -> None:
    api = limited_api
    api.sign_up(ANN).ok()
    burst = Refusals(BURST - 1)
    calls = [burst.attempt(partial(api.login, ANN, WRONG)) for _ in range(BURST - 1)]
    calls.append(burst.after_limit(partial(api.login, ANN, PASSWORD)))

    results = at_once(calls)

    assert codes(results[:-1]) == {
        "UNAUTHENTICATED": ACCOUNT_LIMIT,
        "RATE_LIMITED": BURST - 1 - ACCOUNT_LIMIT,
    }
    assert audited("LOGIN_FAILED") == ACCOUNT_LIMIT
    assert audited("LOGIN_SUCCEEDED") == 0
    assert_rate_limited(results[-1])
    assert_rate_limited(api.login(ANN, PASSWORD))


# ---- MFA codes per account -----------------------------------------------------


def current_code(secret: str, *, steps: int = 0) -> str:
    return code_at(secret, datetime.now(UTC) + timedelta(seconds=30 * steps))


def wrong_code(secret: str) -> str:
    """A code that no step the service accepts now (or soon) has."""
    near = {current_code(secret, steps=steps) for steps in range(-2, 4)}
    return next(code for code in ("000000", "111111", "222222") if code not in near)


def test_concurrent_wrong_mfa_codes_get_five_judgements_and_the_right_code_is_refused(
    limited_api: Api,
) -> None:
    api = limited_api
    token = api.user(ANN)
    secret = api.gql(ENROLL, token=token).ok()["enrollTotp"]["secret"]
    api.gql(CONFIRM, {"code": current_code(secret)}, token=token).ok()
    login = api.login(ANN)
    assert login.error_code == "MFA_REQUIRED", login.body
    mfa_token = login.extensions["mfaToken"]
    guess = {"token": mfa_token, "code": wrong_code(secret)}

    results = at_once([partial(api.gql, VERIFY_MFA, guess) for _ in range(BURST)])

    assert codes(results) == {
        "UNAUTHENTICATED": CODE_LIMIT,
        "RATE_LIMITED": BURST - CODE_LIMIT,
    }
    assert audited("MFA_FAILED") == CODE_LIMIT
    right = {"token": mfa_token, "code": current_code(secret, steps=1)}
    assert_rate_limited(api.gql(VERIFY_MFA, right))


# ---- sign-ups per address ------------------------------------------------------


def test_concurrent_sign_ups_from_one_address_create_as_many_accounts_as_the_limit(
    tmp_path: Path, storage: str
) -> None:
    limit = {"USER_SERVICE_SIGNUPS_PER_ADDRESS": f"{SMALL_LIMIT} per hour"}
    with app_api(tmp_path, storage, **limit) as api:
        emails = [f"user{number}@burst.io" for number in range(BURST)]

        results = at_once([partial(api.sign_up, email) for email in emails])

        assert codes(results) == {
            None: SMALL_LIMIT,
            "RATE_LIMITED": BURST - SMALL_LIMIT,
        }
        assert User.select().count() == SMALL_LIMIT
        assert audited("SIGNED_UP") == SMALL_LIMIT


# ---- mail requests per address -------------------------------------------------


def test_concurrent_reset_requests_from_one_address_get_as_many_answers_as_the_limit(
    tmp_path: Path, storage: str
) -> None:
    limit = {"USER_SERVICE_MAIL_REQUESTS_PER_ADDRESS": f"{SMALL_LIMIT} per hour"}
    with app_api(tmp_path, storage, **limit) as api:
        api.sign_up(ANN).ok()
        emails = [ANN] + [f"nobody{number}@x.io" for number in range(BURST - 1)]
        requests = [partial(api.gql, REQUEST_RESET, {"email": e}) for e in emails]

        results = at_once(requests)

        assert codes(results) == {
            None: SMALL_LIMIT,
            "RATE_LIMITED": BURST - SMALL_LIMIT,
        }
        answered = [result.data for result in results if not result.errors]
        assert answered == [{"requestPasswordReset": True}] * SMALL_LIMIT


# ---- link tokens per address ---------------------------------------------------


@pytest.fixture
def issued(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every link token the service issues, as its mail would carry it."""
    tokens: list[str] = []

    def spy(prefix: str = "") -> str:
        tokens.append(new_token(prefix))
        return tokens[-1]

    monkeypatch.setattr(resolvers.recovery, "new_token", spy)
    return tokens


def test_concurrent_reset_token_guesses_from_one_address_get_as_many_judgements_as_the_limit(  # noqa: E501
    tmp_path: Path, storage: str, issued: list[str]
) -> None:
    limit = {"USER_SERVICE_TOKEN_GUESSES_PER_ADDRESS": f"{SMALL_LIMIT} per hour"}
    with app_api(tmp_path, storage, **limit) as api:
        api.sign_up(ANN).ok()
        api.gql(REQUEST_RESET, {"email": ANN}).ok()
        genuine = issued[-1]
        guesses = [{"token": new_token(), "password": NEW_PASSWORD}] * BURST

        results = at_once([partial(api.gql, RESET, guess) for guess in guesses])

        assert codes(results) == {
            "UNAUTHENTICATED": SMALL_LIMIT,
            "RATE_LIMITED": BURST - SMALL_LIMIT,
        }
        assert_rate_limited(
            api.gql(RESET, {"token": genuine, "password": NEW_PASSWORD})
        )
        assert api.login(ANN, PASSWORD).ok()["login"]["user"]["email"] == ANN
