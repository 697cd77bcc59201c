"""A service killed with SIGKILL in the middle of concurrent sign-ups leaves no
account without its SIGNED_UP audit row or its verification link (issue 12, item
16): the three are one transaction. A real `python server.py --workers 2` is
killed while twelve clients sign up, three times over; the database is then
read as it was left.
SQLite, or PostgreSQL with USER_SERVICE_TEST_DATABASE=postgresql.
tests/api/test_sign_up_commit.py makes the database fail a sign-up instead.
"""

import contextlib
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2
import psycopg
import pytest

from tests.conftest import PASSWORD, make_environ
from tests.servers import LOOSE_LIMITS, Servers, create_tenant

pytestmark = pytest.mark.slow

THREADS = 12
SIGN_UPS_PER_THREAD = 40
KILL_AFTER = 60  # answered sign-ups before each kill
# Each kill catches a few sign-ups in flight; several make it likely that one
# lands between two statements of a sign-up, were they committed apart.
ROUNDS = 3
ADMIN = "boss@atomic.io"
# Every account but the ADMIN that `tenant create` made.
SIGNED_UP_ACCOUNTS = "SELECT id FROM \"user\" WHERE email LIKE 'user.%@atomic.io'"
SIGN_UP = "mutation($input: SignUpInput!) { signUp(input: $input) { email } }"


@pytest.fixture
def servers() -> Iterator[Servers]:
    started = Servers()
    yield started
    started.stop_all()


def rows(database_url: str, sql: str) -> list[tuple[object, ...]]:
    if database_url.startswith("sqlite"):
        path = database_url.split(":///", 1)[1]
        with contextlib.closing(sqlite3.connect(path)) as db:
            return list(db.execute(sql).fetchall())
    with psycopg.connect(database_url, connect_timeout=3) as db:
        return list(db.execute(sql).fetchall())


def ids(database_url: str, sql: str) -> set[uuid.UUID]:
    """The first column of each row, as UUIDs, however the backend stores them."""
    return {uuid.UUID(str(row[0])) for row in rows(database_url, sql)}


def sign_up_until_killed(
    base_url: str,
    api_key: str,
    prefix: str,
    answered: list[str],
    enough: threading.Event,
) -> None:
    with httpx2.Client(base_url=base_url, timeout=15) as http:
        for number in range(SIGN_UPS_PER_THREAD):
            email = f"user.{prefix}.{number}@atomic.io"
            body = {"input": {"email": email, "password": PASSWORD}}
            try:
                response = http.post(
                    "/graphql",
                    json={"query": SIGN_UP, "variables": body},
                    headers={"X-API-Key": api_key},
                )
            except httpx2.TransportError:
                return  # the server is gone
            assert response.json() == {"data": {"signUp": {"email": email}}}
            answered.append(email)
            if len(answered) >= KILL_AFTER:
                enough.set()


def kill_during_sign_ups(
    servers: Servers, environ: dict[str, str], api_key: str, turn: int
) -> list[str]:
    """Start the service, kill it amid concurrent sign-ups; return the answered."""
    server = servers.start(environ, workers=2)
    answered: list[str] = []
    enough = threading.Event()
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        base_url = str(server.http.base_url)
        futures = [
            pool.submit(
                sign_up_until_killed,
                base_url,
                api_key,
                f"{turn}.{thread}",
                answered,
                enough,
            )
            for thread in range(THREADS)
        ]
        assert enough.wait(timeout=60), f"only {len(answered)} sign-ups answered"
        servers.kill(server)
        for future in futures:
            future.result(timeout=30)
    servers.stop(server)
    assert len(answered) < THREADS * SIGN_UPS_PER_THREAD, "killed too late"
    return answered


def test_sigkill_during_concurrent_sign_ups_leaves_every_account_with_its_audit_row_and_link(  # noqa: E501
    servers: Servers, tmp_path: Path
) -> None:
    environ = make_environ(tmp_path, **LOOSE_LIMITS)
    database_url = environ["USER_SERVICE_DATABASE_URL"]
    api_key = create_tenant(environ, "atomic", ADMIN)
    answered = [
        email
        for turn in range(ROUNDS)
        for email in kill_during_sign_ups(servers, environ, api_key, turn)
    ]

    accounts = ids(database_url, SIGNED_UP_ACCOUNTS)
    signed_up = ids(
        database_url, "SELECT target_id FROM audit_event WHERE action = 'SIGNED_UP'"
    )
    linked = ids(
        database_url, "SELECT user_id FROM email_token WHERE purpose = 'VERIFY'"
    )
    emails = {str(row[0]) for row in rows(database_url, 'SELECT email FROM "user"')}
    assert set(answered) <= emails
    assert accounts - signed_up == set(), "accounts without their SIGNED_UP row"
    assert accounts - linked == set(), "accounts without their verification link"
    assert signed_up <= accounts, "SIGNED_UP rows without their account"
