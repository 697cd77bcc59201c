"""Rate limits on guessing through the real app: failed logins per account and
per address, sign-ups, refresh-token guesses, documents that try to multiply
guesses, spoofed client addresses, and limits shared through Redis
(SECURITY.md C7-C10, C12; CONTRACT.md "Limits and protection")."""

import contextlib
import gc
import socket
import uuid
import warnings
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from limits import parse
from starlette.testclient import TestClient

from app import create_app
from auth.rate_limits import growing
from models.db import close_database
from settings import Settings
from tests.conftest import PASSWORD, Api, Result, make_environ, service_missing

WRONG = "wrong-Pw1!"
ACCOUNT_LIMIT = 5  # the default "5 per 15 minutes"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
REDIS_DB = 11
TIGHT_ADDRESS_LIMIT = {"USER_SERVICE_LOGIN_FAILURES_PER_ADDRESS": "3 per minute"}
REFRESH = (
    "mutation($token: String!) { refreshSession(refreshToken: $token) { accessToken } }"
)


@contextlib.contextmanager
def app_api(environ: dict[str, str], **client_options: Any) -> Iterator[Api]:
    """A running app for `environ`, seen through its dev tenant."""
    settings = Settings.from_env(environ)
    with TestClient(create_app(settings), **client_options) as client:
        yield Api(client, settings.dev_api_key, settings)
    close_database()


@pytest.fixture
def tight_address_api(tmp_path: Path) -> Iterator[Api]:
    with app_api(make_environ(tmp_path, **TIGHT_ADDRESS_LIMIT)) as api:
        yield api


@pytest.fixture
def proxied_api(tmp_path: Path) -> Iterator[Api]:
    """Every peer is a trusted proxy: X-Forwarded-For names the client."""
    environ = make_environ(
        tmp_path, **TIGHT_ADDRESS_LIMIT, USER_SERVICE_TRUSTED_PROXIES="*"
    )
    with app_api(environ) as api:
        yield api


def assert_rate_limited(result: Result) -> None:
    assert result.data is None
    assert result.error_code == "RATE_LIMITED", result.errors
    retry_after = result.extensions["retryAfter"]
    assert isinstance(retry_after, int)
    assert retry_after > 0


def fail_logins(api: Api, email: str, times: int) -> None:
    for _ in range(times):
        assert api.login(email, WRONG).error_code == "UNAUTHENTICATED"


def login_from(api: Api, address: str, email: str, password: str = WRONG) -> Result:
    return api.gql(
        "mutation($email: String!, $password: String!) {"
        " login(email: $email, password: $password) { accessToken } }",
        {"email": email, "password": password},
        headers={"X-Forwarded-For": address},
    )


def random_address() -> str:
    number = uuid.uuid4().int
    return f"198.51.{number % 256}.{number // 256 % 254 + 1}"


# ---- C8: failed logins per account, with a growing lock-out -------------------


def test_login_after_five_wrong_passwords_is_rate_limited_with_retry_after(
    api: Api,
) -> None:
    api.sign_up("ann@x.io").ok()
    fail_logins(api, "ann@x.io", ACCOUNT_LIMIT)
    result = api.login("ann@x.io", WRONG)
    assert_rate_limited(result)
    assert result.extensions["retryAfter"] <= 15 * 60


def test_correct_password_of_a_locked_account_is_rate_limited(api: Api) -> None:
    api.sign_up("ann@x.io").ok()
    fail_logins(api, "ann@x.io", ACCOUNT_LIMIT)
    assert_rate_limited(api.login("ann@x.io", PASSWORD))


def test_lock_out_of_an_unknown_email_looks_like_that_of_an_account(
    api: Api,
) -> None:
    fail_logins(api, "nobody@x.io", ACCOUNT_LIMIT)
    assert_rate_limited(api.login("nobody@x.io", WRONG))


def test_lock_out_counts_the_email_regardless_of_case_and_spaces(api: Api) -> None:
    api.sign_up("ann@x.io").ok()
    for variant in ("Ann@x.io", " ann@x.io", "ANN@X.IO", "ann@x.io ", "ann@X.io"):
        assert api.login(variant, WRONG).error_code == "UNAUTHENTICATED"
    assert_rate_limited(api.login("ann@x.io", PASSWORD))


def test_lock_out_leaves_another_email_of_the_tenant_unaffected(api: Api) -> None:
    api.sign_up("ann@x.io").ok()
    api.sign_up("bob@x.io").ok()
    fail_logins(api, "ann@x.io", ACCOUNT_LIMIT)
    assert api.login("bob@x.io").ok()["login"]["user"]["email"] == "bob@x.io"


def test_lock_out_leaves_the_same_email_in_another_tenant_unaffected(
    api: Api,
) -> None:
    other = api.tenant("acme")
    api.sign_up("ann@x.io").ok()
    other.sign_up("ann@x.io").ok()
    fail_logins(api, "ann@x.io", ACCOUNT_LIMIT)
    assert other.login("ann@x.io").ok()["login"]["user"]["email"] == "ann@x.io"
    assert_rate_limited(api.login("ann@x.io", PASSWORD))


def test_lock_out_tiers_allow_twice_the_failures_over_four_times_the_window() -> None:
    tiers = growing(parse("5 per 15 minutes"))
    assert [(tier.amount, timedelta(seconds=tier.get_expiry())) for tier in tiers] == [
        (5, timedelta(minutes=15)),
        (10, timedelta(minutes=60)),
        (20, timedelta(minutes=240)),
    ]


def test_successful_login_resets_the_failure_count_of_the_account(api: Api) -> None:
    api.sign_up("ann@x.io").ok()
    fail_logins(api, "ann@x.io", ACCOUNT_LIMIT - 1)
    api.login("ann@x.io").ok()
    fail_logins(api, "ann@x.io", ACCOUNT_LIMIT - 1)
    assert api.login("ann@x.io").ok()["login"]["user"]["email"] == "ann@x.io"


# ---- C8: failed logins per client address -------------------------------------


def test_failures_over_many_emails_from_one_address_are_rate_limited(
    tight_address_api: Api,
) -> None:
    api = tight_address_api
    api.sign_up("ann@x.io").ok()
    for number in range(3):
        assert api.login(f"guess{number}@x.io", WRONG).error_code == "UNAUTHENTICATED"
    assert_rate_limited(api.login("guess3@x.io", WRONG))
    # The address is locked, not only the emails it tried.
    assert_rate_limited(api.login("ann@x.io", PASSWORD))


# ---- C7: sign-ups per client address -------------------------------------------


@pytest.fixture
def tight_sign_up_api(tmp_path: Path) -> Iterator[Api]:
    environ = make_environ(tmp_path, USER_SERVICE_SIGNUPS_PER_ADDRESS="3 per hour")
    with app_api(environ) as api:
        yield api


def test_fourth_sign_up_from_one_address_is_rate_limited_and_creates_nothing(
    tight_sign_up_api: Api,
) -> None:
    api = tight_sign_up_api
    for number in range(3):
        api.sign_up(f"user{number}@x.io").ok()
    result = api.sign_up("user3@x.io")
    assert_rate_limited(result)
    assert result.extensions["retryAfter"] <= 3600
    assert api.login("user3@x.io").error_code == "UNAUTHENTICATED"


def test_email_taken_probes_count_against_the_sign_up_limit(
    tight_sign_up_api: Api,
) -> None:
    api = tight_sign_up_api
    api.sign_up("ann@x.io").ok()
    assert api.sign_up("ann@x.io").error_code == "EMAIL_TAKEN"
    assert api.sign_up("ANN@x.io").error_code == "EMAIL_TAKEN"
    assert_rate_limited(api.sign_up("Ann@X.io"))


# ---- C9: one guess per document --------------------------------------------------


def aliased_logins(count: int) -> str:
    fields = " ".join(
        f'a{n}: login(email: "ann@x.io", password: "{WRONG}") {{ accessToken }}'
        for n in range(count)
    )
    return f"mutation {{ {fields} }}"


LOGIN_FIELD = f'login(email: "ann@x.io", password: "{WRONG}") {{ accessToken }}'
# Each document, with the operation to run when it holds several.
MULTIPLIED_GUESSES: dict[str, tuple[str, str | None]] = {
    "2 aliased logins": (aliased_logins(2), None),
    "20 aliased logins": (aliased_logins(20), None),
    "login and signUp": (
        f"mutation {{ {LOGIN_FIELD} "
        f'signUp(input: {{email: "new@x.io", password: "{PASSWORD}"}}) {{ id }} }}',
        None,
    ),
    "two mutations": (
        f"mutation A {{ {LOGIN_FIELD} }} mutation B {{ {LOGIN_FIELD} }}",
        "A",
    ),
    "two fragments": (
        "mutation { ...F ...G } "
        f"fragment F on Mutation {{ f: {LOGIN_FIELD} }} "
        f"fragment G on Mutation {{ g: {LOGIN_FIELD} }}",
        None,
    ),
}


@pytest.mark.parametrize(
    ("document", "operation"),
    list(MULTIPLIED_GUESSES.values()),
    ids=list(MULTIPLIED_GUESSES),
)
def test_document_with_several_guesses_is_refused_and_counts_none(
    api: Api, document: str, operation: str | None
) -> None:
    api.sign_up("ann@x.io").ok()
    for _ in range(3):  # 6 or more guesses, were any of them run
        response = api.client.post(
            "/graphql",
            json={"query": document, "operationName": operation},
            headers={"X-API-Key": api.api_key},
        )
        result = Result(response.status_code, response.json())
        assert result.data is None
        # 20 aliases also pass the alias limit: two errors, one code.
        assert {error["extensions"]["code"] for error in result.errors} == {
            "GRAPHQL_VALIDATION_FAILED"
        }
    assert api.login("ann@x.io").ok()["login"]["user"]["email"] == "ann@x.io"
    assert api.login("new@x.io").error_code == "UNAUTHENTICATED"


# ---- C10: the client address cannot be spoofed -----------------------------------


def test_random_forwarded_for_does_not_reset_the_address_limit(
    tight_address_api: Api,
) -> None:
    api = tight_address_api
    for number in range(3):
        result = login_from(api, random_address(), f"guess{number}@x.io")
        assert result.error_code == "UNAUTHENTICATED"
    assert_rate_limited(login_from(api, random_address(), "guess3@x.io"))


def test_forwarded_for_from_a_trusted_proxy_counts_each_client_apart(
    proxied_api: Api,
) -> None:
    api = proxied_api
    for number in range(3):
        result = login_from(api, "203.0.113.7", f"guess{number}@x.io")
        assert result.error_code == "UNAUTHENTICATED"
    assert_rate_limited(login_from(api, "203.0.113.7", "guess3@x.io"))
    assert login_from(api, "203.0.113.8", "guess4@x.io").error_code == (
        "UNAUTHENTICATED"
    )


def test_forwarded_for_from_an_untrusted_peer_is_ignored(tmp_path: Path) -> None:
    environ = make_environ(
        tmp_path, **TIGHT_ADDRESS_LIMIT, USER_SERVICE_TRUSTED_PROXIES="10.0.0.1"
    )
    with app_api(environ, client=("10.0.0.2", 50000)) as api:
        for number in range(3):
            result = login_from(api, f"203.0.113.{number}", f"guess{number}@x.io")
            assert result.error_code == "UNAUTHENTICATED"
        assert_rate_limited(login_from(api, "203.0.113.9", "guess3@x.io"))


def test_forwarded_for_from_a_listed_proxy_names_the_client(tmp_path: Path) -> None:
    environ = make_environ(
        tmp_path, **TIGHT_ADDRESS_LIMIT, USER_SERVICE_TRUSTED_PROXIES="10.0.0.1"
    )
    with app_api(environ, client=("10.0.0.1", 50000)) as api:
        for number in range(6):
            result = login_from(api, f"203.0.113.{number}", f"guess{number}@x.io")
            assert result.error_code == "UNAUTHENTICATED"


# ---- presented tokens are limited per address ---------------------------------


def test_junk_refresh_tokens_from_one_address_are_rate_limited(
    tmp_path: Path,
) -> None:
    environ = make_environ(
        tmp_path, USER_SERVICE_TOKEN_GUESSES_PER_ADDRESS="3 per minute"
    )
    with app_api(environ) as api:
        api.sign_up("ann@x.io").ok()
        refresh_token = api.login("ann@x.io").ok()["login"]["refreshToken"]
        for number in range(3):
            result = api.gql(REFRESH, {"token": f"junk-{number}"})
            assert result.error_code == "UNAUTHENTICATED"
        assert_rate_limited(api.gql(REFRESH, {"token": "junk-3"}))
        assert_rate_limited(api.gql(REFRESH, {"token": refresh_token}))
        # Passwords have a limit of their own.
        assert api.login("ann@x.io").ok()


# ---- C12: limits shared by every worker through Redis --------------------------


def require_redis() -> None:
    try:
        socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=1).close()
    except OSError:
        service_missing(f"Redis at {REDIS_HOST}:{REDIS_PORT} is not reachable")


@pytest.fixture
def redis_environ(tmp_path: Path) -> dict[str, str]:
    require_redis()
    # A fresh database gives the dev tenant a fresh id, and every count is per
    # tenant: nothing left in Redis by an earlier run is seen here.
    url = f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"
    return make_environ(tmp_path, USER_SERVICE_REDIS_URL=url)


@contextlib.contextmanager
def resource_warnings() -> Iterator[list[str]]:
    """Record the ResourceWarnings (unclosed sockets) raised until the end."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        messages: list[str] = []
        yield messages
        gc.collect()
    messages += [str(w.message) for w in caught if w.category is ResourceWarning]


def test_failures_split_over_two_apps_sharing_redis_lock_the_account_on_both(
    redis_environ: dict[str, str],
) -> None:
    with app_api(redis_environ) as first:
        first.sign_up("ann@x.io").ok()
        with app_api(redis_environ) as second:
            fail_logins(first, "ann@x.io", 3)
            fail_logins(second, "ann@x.io", ACCOUNT_LIMIT - 3)
            assert_rate_limited(first.login("ann@x.io", PASSWORD))
            assert_rate_limited(second.login("ann@x.io", PASSWORD))


def test_app_shutdown_closes_its_redis_connections(
    redis_environ: dict[str, str],
) -> None:
    with resource_warnings() as leaks, app_api(redis_environ) as api:
        assert api.login("ann@x.io", WRONG).error_code == "UNAUTHENTICATED"
    assert leaks == []


def test_unreachable_redis_refuses_logins_as_service_unavailable(
    tmp_path: Path,
) -> None:
    environ = make_environ(tmp_path, USER_SERVICE_REDIS_URL="redis://127.0.0.1:1/0")
    with app_api(environ) as api:
        result = api.login("ann@x.io", WRONG)
        assert result.data is None
        assert result.error_code == "SERVICE_UNAVAILABLE"
