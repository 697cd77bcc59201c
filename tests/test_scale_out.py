"""Two app processes on different ports (as on two hosts) sharing one PostgreSQL
schema and one Redis behave as one service: sessions, profiles, refresh-token
reuse and rate limits are the same wherever a request lands.

These always run on PostgreSQL and Redis, whichever database the rest of the
suite uses: SQLite cannot be shared between hosts.
"""

import hashlib
import socket
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

import httpx2
import pytest
from starlette.testclient import TestClient

from settings import Settings
from tests.conftest import (
    PASSWORD,
    POSTGRES_URL,
    RUN_ID,
    Api,
    Result,
    make_environ,
    postgres,
    service_missing,
)
from tests.servers import Server, Servers

pytestmark = pytest.mark.slow

REDIS_HOST, REDIS_PORT, REDIS_DB = "127.0.0.1", 6379, 12
ACCOUNT_LIMIT = 3
WRONG = "wrong-Pw1!"
REFRESH = (
    "mutation($token: String!) { refreshSession(refreshToken: $token) {"
    " accessToken refreshToken user { email } } }"
)


def require_redis() -> str:
    try:
        socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=1).close()
    except OSError:
        service_missing(f"Redis at {REDIS_HOST}:{REDIS_PORT} is not reachable")
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"


@pytest.fixture(scope="module")
def shared_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh PostgreSQL schema of this run, dropped afterwards."""
    folder = tmp_path_factory.mktemp("scale_out_database")
    digest = hashlib.sha256(str(folder).encode())
    schema = f"t_{RUN_ID}_scale_{digest.hexdigest()[:8]}"
    with postgres() as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    options = urllib.parse.quote(f"-csearch_path={schema}")
    yield f"{POSTGRES_URL}?options={options}"
    with postgres() as connection:
        connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@dataclass
class Pair:
    """App A (two workers) and app B (one worker), sharing PostgreSQL and Redis."""

    a: Server
    b: Server


@pytest.fixture(scope="module")
def pair(
    shared_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pair]:
    redis_url = require_redis()
    environ = make_environ(
        tmp_path_factory.mktemp("scale_out"),
        USER_SERVICE_DATABASE_URL=shared_database,
        USER_SERVICE_REDIS_URL=redis_url,
        USER_SERVICE_LOGIN_FAILURES_PER_ACCOUNT=f"{ACCOUNT_LIMIT} per minute",
        USER_SERVICE_LOGIN_FAILURES_PER_ADDRESS="1000 per minute",
        USER_SERVICE_SIGNUPS_PER_ADDRESS="1000 per minute",
        USER_SERVICE_REFRESH_REUSE_GRACE="0",
    )
    servers = Servers()
    try:
        yield Pair(a=servers.start(environ, workers=2), b=servers.start(environ))
    finally:
        servers.stop_all()


def refresh(api: Api, token: str) -> Result:
    return api.gql(REFRESH, {"token": token})


def assert_rate_limited(result: Result) -> None:
    assert result.data is None, result.body
    assert result.error_code == "RATE_LIMITED", result.body
    retry_after = result.extensions["retryAfter"]
    assert isinstance(retry_after, int)
    assert 0 < retry_after <= 60


def assert_wrong_credentials(result: Result) -> None:
    assert result.data is None, result.body
    assert result.error_code == "UNAUTHENTICATED", result.body


def test_login_on_a_refresh_and_update_on_b_are_seen_by_me_on_a(pair: Pair) -> None:
    a, b = pair.a.dev, pair.b.dev
    a.sign_up("ann@scale.io", city="Oslo").ok()
    login = a.login("ann@scale.io").ok()["login"]
    renewed = refresh(b, login["refreshToken"]).ok()["refreshSession"]
    assert renewed["user"]["email"] == "ann@scale.io"
    assert renewed["refreshToken"] != login["refreshToken"]
    updated = b.update_profile(
        renewed["accessToken"], email="ann@scale.io", city="Bergen"
    ).ok()["updateProfile"]
    assert updated["city"] == "Bergen"
    me = a.me(renewed["accessToken"]).ok()["me"]
    assert (me["email"], me["city"], me["role"]) == ("ann@scale.io", "Bergen", "USER")


def test_refresh_token_used_on_a_is_refused_on_b_and_ends_the_session(
    pair: Pair,
) -> None:
    a, b = pair.a.dev, pair.b.dev
    a.sign_up("bob@scale.io").ok()
    first = a.login("bob@scale.io").ok()["login"]["refreshToken"]
    renewed = refresh(a, first).ok()["refreshSession"]
    reused = refresh(b, first)
    assert reused.data is None
    assert reused.error_code == "UNAUTHENTICATED", reused.body
    # Reuse is theft: the whole session ended, on both apps.
    assert refresh(a, renewed["refreshToken"]).error_code == "UNAUTHENTICATED"
    assert b.me(renewed["accessToken"]).error_code == "UNAUTHENTICATED"
    assert a.me(renewed["accessToken"]).error_code == "UNAUTHENTICATED"


def test_login_failures_split_over_a_and_b_lock_the_account_on_both(
    pair: Pair,
) -> None:
    a, b = pair.a.dev, pair.b.dev
    a.sign_up("cat@scale.io").ok()
    assert_wrong_credentials(a.login("cat@scale.io", WRONG))
    assert_wrong_credentials(a.login("cat@scale.io", WRONG))
    assert_wrong_credentials(b.login("cat@scale.io", WRONG))
    assert_rate_limited(a.login("cat@scale.io", WRONG))
    assert_rate_limited(b.login("cat@scale.io", WRONG))
    assert_rate_limited(a.login("cat@scale.io", PASSWORD))
    assert_rate_limited(b.login("cat@scale.io", PASSWORD))


ACCOUNTS = 4
ATTEMPTS = 12


def test_two_workers_sharing_redis_hold_the_account_limit_over_many_connections(
    pair: Pair,
) -> None:
    """Every attempt opens a new connection, so both workers of A take turns."""
    server = pair.a
    settings = Settings.from_env(server.environ)
    fresh_connections = httpx2.Limits(max_keepalive_connections=0)
    with httpx2.Client(
        base_url=str(server.http.base_url), limits=fresh_connections, timeout=15
    ) as http:
        api = Api(cast(TestClient, http), settings.dev_api_key, settings)
        for account in range(ACCOUNTS):
            email = f"many.{account}@scale.io"
            api.sign_up(email).ok()
            codes = [api.login(email, WRONG).error_code for _ in range(ATTEMPTS)]
            assert codes == ["UNAUTHENTICATED"] * ACCOUNT_LIMIT + ["RATE_LIMITED"] * (
                ATTEMPTS - ACCOUNT_LIMIT
            ), email
            assert_rate_limited(api.login(email, PASSWORD))
