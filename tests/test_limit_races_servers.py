"""Limits under concurrency on a real service: `python server.py --workers 2`, its
limits shared through Redis (issue 12, item 1; SECURITY.md C12).

Bursts of attempts sent at the same instant from one client address (named by
X-Forwarded-For, the test being the trusted proxy) reach both workers at once;
no more of them are judged than the limit allows. What was judged is counted
from the answers and, through the tenant ADMIN's auditLog, from the audit rows.
The database is the suite's (SQLite, or PostgreSQL with
USER_SERVICE_TEST_DATABASE=postgresql).
"""

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest

from auth.opaque import new_token
from auth.totp import code_at
from tests.conftest import PASSWORD, Api, Result, make_environ
from tests.races import Refusals, assert_rate_limited, at_once, codes, empty_redis
from tests.servers import Server, Servers, create_tenant

pytestmark = pytest.mark.slow

WORKERS = 2
BURST = 60
ACCOUNT_LIMIT = 5  # USER_SERVICE_LOGIN_FAILURES_PER_ACCOUNT's default
CODE_LIMIT = 5  # USER_SERVICE_CODE_FAILURES_PER_ACCOUNT's default
SMALL_LIMIT = 5
TIGHT_LIMITS = {
    "USER_SERVICE_SIGNUPS_PER_ADDRESS": f"{SMALL_LIMIT} per hour",
    "USER_SERVICE_MAIL_REQUESTS_PER_ADDRESS": f"{SMALL_LIMIT} per hour",
    "USER_SERVICE_TOKEN_GUESSES_PER_ADDRESS": f"{SMALL_LIMIT} per hour",
    "USER_SERVICE_TRUSTED_PROXIES": "127.0.0.1",
}
ADMIN = "boss@race.io"
WRONG = "wrong-Pw1!"
STARTUP_SECONDS = 30.0
HTTP_SECONDS = 30.0
# Every test attacks from addresses of its own, so that the per-address limits
# of one test never meet those of another.
ADDRESSES = (f"198.51.100.{number}" for number in itertools.count(1))

ENROLL = "mutation { enrollTotp { secret } }"
CONFIRM = "mutation($code: String!) { confirmTotp(code: $code) }"
VERIFY_MFA = """mutation($token: String!, $code: String!) {
  verifyMfa(mfaToken: $token, code: $code) { accessToken } }"""
REQUEST_RESET = "mutation($email: String!) { requestPasswordReset(email: $email) }"
RESET = """mutation($token: String!, $password: String!) {
  resetPassword(token: $token, newPassword: $password) }"""
AUDIT_LOG = """query($action: String!, $after: String) {
  auditLog(first: 100, action: $action, after: $after) {
    edges { node { target { email } } } pageInfo { hasNextPage endCursor } } }"""
USERS = """query($search: String!) { users(first: 100, search: $search) {
  totalCount } }"""


@dataclass
class ClientAt(Api):
    """The tenant as seen from one client address (X-Forwarded-For)."""

    address: str = ""

    def gql(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Result:
        forwarded = {"X-Forwarded-For": self.address, **(headers or {})}
        return super().gql(query, variables, token=token, headers=forwarded)


@dataclass
class Tenant:
    server: Server
    api_key: str

    def at(self, address: str | None = None) -> ClientAt:
        api = self.server.api(self.api_key)
        return ClientAt(api.client, api.api_key, api.settings, address=address or "")

    def fresh_address(self) -> ClientAt:
        return self.at(next(ADDRESSES))

    def audited(self, action: str, email: str) -> int:
        """How many `action` events name `email` as their target (auditLog)."""
        admin = self.fresh_address()
        token = admin.token(ADMIN)
        count, after = 0, None
        while True:
            page = admin.gql(
                AUDIT_LOG, {"action": action, "after": after}, token=token
            ).ok()["auditLog"]
            count += sum(
                1
                for edge in page["edges"]
                if (edge["node"]["target"] or {}).get("email") == email
            )
            if not page["pageInfo"]["hasNextPage"]:
                return count
            after = page["pageInfo"]["endCursor"]

    def accounts_matching(self, search: str) -> int:
        admin = self.fresh_address()
        token = admin.token(ADMIN)
        result = admin.gql(USERS, {"search": search}, token=token).ok()
        return int(result["users"]["totalCount"])


@pytest.fixture(scope="module")
def tenant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tenant]:
    """One tenant on a two-worker service whose limits live in Redis."""
    data_dir = tmp_path_factory.mktemp("limit_races")
    environ = make_environ(
        data_dir, **TIGHT_LIMITS, USER_SERVICE_REDIS_URL=empty_redis()
    )
    api_key = create_tenant(environ, "race", ADMIN)
    servers = Servers(startup_seconds=STARTUP_SECONDS, http_timeout=HTTP_SECONDS)
    try:
        yield Tenant(servers.start(environ, workers=WORKERS), api_key)
    finally:
        servers.stop_all()


def code_now(secret: str, *, steps: int = 0) -> str:
    return code_at(secret, datetime.now(UTC) + timedelta(seconds=30 * steps))


# ---- failed logins per account -------------------------------------------------


def test_concurrent_wrong_logins_on_two_workers_get_five_judgements_and_the_right_password_is_refused(  # noqa: E501
    tenant: Tenant,
) -> None:
    email = "login@race.io"
    tenant.fresh_address().sign_up(email).ok()
    attacker = tenant.fresh_address()
    burst = Refusals(BURST - 1)
    calls = [burst.attempt(partial(attacker.login, email, WRONG))] * (BURST - 1)
    calls.append(burst.after_limit(partial(attacker.login, email, PASSWORD)))

    results = at_once(calls)

    assert codes(results[:-1]) == {
        "UNAUTHENTICATED": ACCOUNT_LIMIT,
        "RATE_LIMITED": BURST - 1 - ACCOUNT_LIMIT,
    }
    assert_rate_limited(results[-1])
    assert tenant.audited("LOGIN_FAILED", email) == ACCOUNT_LIMIT
    assert tenant.audited("LOGIN_SUCCEEDED", email) == 0
    assert_rate_limited(tenant.fresh_address().login(email, PASSWORD))


# ---- MFA codes per account -----------------------------------------------------


def test_concurrent_wrong_mfa_codes_on_two_workers_get_five_judgements(
    tenant: Tenant,
) -> None:
    email = "mfa@race.io"
    owner = tenant.fresh_address()
    token = owner.user(email)
    secret = owner.gql(ENROLL, token=token).ok()["enrollTotp"]["secret"]
    owner.gql(CONFIRM, {"code": code_now(secret)}, token=token).ok()
    login = owner.login(email)
    assert login.error_code == "MFA_REQUIRED", login.body
    mfa_token = login.extensions["mfaToken"]
    near = {code_now(secret, steps=steps) for steps in range(-2, 4)}
    wrong = next(code for code in ("000000", "111111", "222222") if code not in near)
    attacker = tenant.fresh_address()
    guess = partial(attacker.gql, VERIFY_MFA, {"token": mfa_token, "code": wrong})

    results = at_once([guess] * BURST)

    assert codes(results) == {
        "UNAUTHENTICATED": CODE_LIMIT,
        "RATE_LIMITED": BURST - CODE_LIMIT,
    }
    assert tenant.audited("MFA_FAILED", email) == CODE_LIMIT
    right = {"token": mfa_token, "code": code_now(secret, steps=1)}
    assert_rate_limited(attacker.gql(VERIFY_MFA, right))


# ---- sign-ups, mail requests and link tokens per address ------------------------


def test_concurrent_sign_ups_from_one_address_on_two_workers_create_five_accounts(
    tenant: Tenant,
) -> None:
    attacker = tenant.fresh_address()
    emails = [f"signup{number}@burst.race.io" for number in range(BURST)]

    results = at_once([partial(attacker.sign_up, email) for email in emails])

    assert codes(results) == {None: SMALL_LIMIT, "RATE_LIMITED": BURST - SMALL_LIMIT}
    assert tenant.accounts_matching("@burst.race.io") == SMALL_LIMIT


def test_concurrent_reset_requests_from_one_address_on_two_workers_get_five_answers(
    tenant: Tenant,
) -> None:
    attacker = tenant.fresh_address()
    emails = [f"nobody{number}@race.io" for number in range(BURST)]
    requests = [partial(attacker.gql, REQUEST_RESET, {"email": e}) for e in emails]

    results = at_once(requests)

    assert codes(results) == {None: SMALL_LIMIT, "RATE_LIMITED": BURST - SMALL_LIMIT}


def test_concurrent_reset_token_guesses_from_one_address_on_two_workers_get_five_judgements(  # noqa: E501
    tenant: Tenant,
) -> None:
    attacker = tenant.fresh_address()
    guess = {"token": new_token(), "password": "n3w-Secret!"}

    results = at_once([partial(attacker.gql, RESET, guess)] * BURST)

    assert codes(results) == {
        "UNAUTHENTICATED": SMALL_LIMIT,
        "RATE_LIMITED": BURST - SMALL_LIMIT,
    }
