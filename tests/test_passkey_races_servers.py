"""Passkey challenges and counts under concurrency on a real service: `python
server.py --workers 2`, its limits shared through Redis (SECURITY.md, second
round: a WebAuthn challenge attacked by many requests at the same instant).

The database is the suite's (SQLite, or PostgreSQL with
USER_SERVICE_TEST_DATABASE=postgresql).
"""

from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from tests.api.test_passkeys import (
    ANN,
    finish_login,
    register,
    start_login,
)
from tests.authenticator import ORIGIN, RP_ID
from tests.conftest import make_environ
from tests.races import at_once, codes, empty_redis
from tests.servers import Server, Servers, run_cli

pytestmark = pytest.mark.slow

BURST = 20
ACCOUNT_LIMIT = 5  # USER_SERVICE_LOGIN_FAILURES_PER_ACCOUNT's default


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    environ = make_environ(tmp_path, USER_SERVICE_REDIS_URL=empty_redis())
    servers = Servers(startup_seconds=30.0, http_timeout=30.0)
    try:
        started = servers.start(environ, workers=2)
        done = run_cli(
            environ,
            *("tenant", "set", "dev", "--webauthn-rp-id", RP_ID),
            *("--webauthn-origin", ORIGIN),
        )
        assert done.returncode == 0, done.stderr
        yield started
    finally:
        servers.stop_all()


def test_one_challenge_sent_by_many_at_once_to_two_workers_logs_in_once(
    server: Server,
) -> None:
    api = server.dev
    authenticator = register(api, api.user(ANN))
    started = start_login(api, ANN)
    # No counter (as synced passkeys send): only the challenge's single use,
    # and the account's limit on failures, stand in the way.
    answers = [
        authenticator.get(started["options"], sign_count=0)
        for _ in range(ACCOUNT_LIMIT)
    ]
    results = at_once(
        [partial(finish_login, api, started["challengeId"], a) for a in answers]
    )
    assert codes(results) == {None: 1, "UNAUTHENTICATED": ACCOUNT_LIMIT - 1}


def test_wrong_assertions_at_once_are_judged_no_more_than_the_limit(
    server: Server,
) -> None:
    api = server.dev
    authenticator = register(api, api.user(ANN))
    attempts = []
    for _ in range(BURST):
        started = start_login(api, ANN)
        wrong = authenticator.get(started["options"], verified=False)
        attempts.append(partial(finish_login, api, started["challengeId"], wrong))
    results = at_once(attempts)
    assert codes(results) == {
        "UNAUTHENTICATED": ACCOUNT_LIMIT,
        "RATE_LIMITED": BURST - ACCOUNT_LIMIT,
    }
