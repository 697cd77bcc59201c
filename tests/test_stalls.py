"""A stalled dependency never stalls the service.

PostgreSQL and Redis are frozen with SIGSTOP (private instances the test owns):
they accept connections and never answer. Every request that needs them answers
SERVICE_UNAVAILABLE with HTTP 503 within the deadline, `/healthz` answers at
once all the while, the outage is logged once when it starts and once when it
ends, and the service recovers by itself.
"""

import contextlib
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import pytest

from errors import ServiceUnavailable
from tests.conftest import Result, make_environ
from tests.dependencies import PrivatePostgres, PrivateRedis
from tests.servers import LOOSE_LIMITS, Server, Servers, create_tenant

pytestmark = pytest.mark.slow

TIMEOUT = 2  # USER_SERVICE_DATABASE_TIMEOUT: the deadline of every request
# Generous for a slow machine, and still far below "as long as the freeze".
ANSWER_WITHIN = TIMEOUT + 2.5
HEALTHZ_WITHIN = 1.0
FREEZE_SECONDS = 2 * ANSWER_WITHIN
POLICY = "{ passwordPolicy { minLength } }"
T = TypeVar("T")


@pytest.fixture
def servers() -> Iterator[Servers]:
    started = Servers()
    yield started
    started.stop_all()


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[PrivatePostgres]:
    instance = PrivatePostgres(tmp_path / "postgres")
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    instance = PrivateRedis(tmp_path / "redis")
    instance.start()
    yield instance
    instance.stop()


def timed(call: Callable[[], T]) -> tuple[T, float]:
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def assert_unavailable(result: Result, seconds: float) -> None:
    assert seconds < ANSWER_WITHIN, f"answered after {seconds:.1f}s"
    assert result.status == 503, result.body
    assert [error["extensions"]["code"] for error in result.errors] == [
        ServiceUnavailable.code
    ], result.body


def healthz_seconds(server: Server) -> float:
    response, seconds = timed(lambda: server.http.get("/healthz", timeout=10))
    assert response.status_code == 200
    return seconds


def wait_until_ready(server: Server, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if server.http.get("/readyz", timeout=5).status_code == 200:
                return
        time.sleep(0.2)
    pytest.fail(f"not ready again:\n{server.log_tail()}")


# A deadline cut the call, or its connection failed: either way, which call.
STUCK_CALL = (
    r"not answering \((no answer within the deadline|\w+Error): [\w.]+ "
    r"(after \d+\.\d s|before it started)"
)


def log_lines(server: Server, words: str) -> list[str]:
    text = server.log_path.read_text(errors="replace")
    return [line for line in text.splitlines() if words in line]


# ---- PostgreSQL frozen ---------------------------------------------------------


def test_frozen_postgres_answers_503_in_time_while_healthz_stays_live(
    servers: Servers, postgres: PrivatePostgres, tmp_path: Path
) -> None:
    environ = make_environ(
        tmp_path,
        **LOOSE_LIMITS,
        USER_SERVICE_DATABASE_URL=postgres.url,
        USER_SERVICE_DATABASE_TIMEOUT=str(TIMEOUT),
    )
    server = servers.start(environ)
    api = server.dev
    api.sign_up("ann@x.io").ok()
    token = api.login("ann@x.io").ok()["login"]["accessToken"]

    with postgres.frozen(), ThreadPoolExecutor(8) as pool:
        started = time.monotonic()
        # Many requests at once: every database thread gets stuck, none for long.
        mes = [pool.submit(timed, lambda: api.me(token)) for _ in range(12)]
        logins = [pool.submit(timed, lambda: api.login("ann@x.io")) for _ in range(4)]
        healthz = [healthz_seconds(server) for _ in range(5)]
        answers = [future.result() for future in mes + logins]
        readyz, seconds = timed(lambda: server.http.get("/readyz", timeout=10))
        frozen_for = time.monotonic() - started
        while time.monotonic() - started < FREEZE_SECONDS:  # a long freeze
            assert healthz_seconds(server) < HEALTHZ_WITHIN
            time.sleep(0.2)

    assert max(healthz) < HEALTHZ_WITHIN, healthz
    for result, seconds in answers:
        assert_unavailable(result, seconds)
    assert readyz.status_code == 503
    assert seconds < ANSWER_WITHIN
    assert frozen_for < 3 * ANSWER_WITHIN

    wait_until_ready(server)
    assert api.me(token).data["me"]["email"] == "ann@x.io"
    # Logged once when it started, once when it ended, not per request.
    [outage] = log_lines(server, "the database is not answering")
    # The line names the call that found the outage: where to look next time.
    assert re.search(STUCK_CALL, outage), outage
    assert len(log_lines(server, "the database is answering again")) == 1


# ---- Redis frozen, then down ---------------------------------------------------


def test_frozen_or_stopped_redis_answers_503_in_time_and_readyz_says_so(
    servers: Servers, redis: PrivateRedis, tmp_path: Path
) -> None:
    environ = make_environ(
        tmp_path,
        **LOOSE_LIMITS,
        USER_SERVICE_REDIS_URL=redis.url,
        USER_SERVICE_DATABASE_TIMEOUT=str(TIMEOUT),
    )
    server = servers.start(environ)
    api = server.dev
    api.sign_up("ann@x.io").ok()
    refresh = api.login("ann@x.io").ok()["login"]["refreshToken"]

    with redis.frozen(), ThreadPoolExecutor(4) as pool:
        calls = [
            lambda: api.login("ann@x.io"),
            lambda: api.sign_up("bob@x.io"),
            lambda: api.gql(
                "mutation($t: String!) { refreshSession(refreshToken: $t) "
                "{ accessToken } }",
                {"t": refresh},
            ),
        ]
        answers = [pool.submit(timed, call) for call in calls]
        assert healthz_seconds(server) < HEALTHZ_WITHIN
        readyz, seconds = timed(lambda: server.http.get("/readyz", timeout=10))
        for future in answers:
            assert_unavailable(*future.result())
    assert readyz.status_code == 503
    assert seconds < ANSWER_WITHIN

    wait_until_ready(server)
    assert api.login("ann@x.io").ok()

    redis.stop()  # down: refused at once rather than frozen
    result, seconds = timed(lambda: api.login("ann@x.io"))
    assert_unavailable(result, seconds)
    assert server.http.get("/readyz", timeout=10).status_code == 503
    # Two outages (the freeze, the stop), each logged once however many requests
    # met it; one recovery between them.
    assert len(log_lines(server, "Redis is not answering")) == 2
    assert len(log_lines(server, "Redis is answering again")) == 1


# ---- SQLite: one writer's lock stalls only the writes that wait on it ---------


def test_a_held_sqlite_write_lock_does_not_stall_reads_or_healthz(
    servers: Servers, tmp_path: Path
) -> None:
    environ = make_environ(
        tmp_path, **LOOSE_LIMITS, USER_SERVICE_DATABASE_TIMEOUT=str(TIMEOUT)
    )
    if not environ["USER_SERVICE_DATABASE_URL"].startswith("sqlite"):
        pytest.skip("a SQLite file's lock")
    server = servers.start(environ)
    api = server.dev
    api.sign_up("ann@x.io").ok()
    token = api.login("ann@x.io").ok()["login"]["accessToken"]
    # A key never used yet: its first request has its last use to write.
    fresh = server.api(create_tenant(environ, "acme", "boss@acme.io"))
    path = environ["USER_SERVICE_DATABASE_URL"].split(":///", 1)[1]

    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")  # another process's writer holds the lock
    try:
        with ThreadPoolExecutor(4) as pool:
            writes = [pool.submit(timed, lambda: api.sign_up("bob@x.io"))]
            time.sleep(0.2)  # the sign-up now waits on the lock
            reads = [timed(lambda: api.me(token)) for _ in range(5)]
            policy, policy_seconds = timed(lambda: fresh.gql(POLICY))
            assert healthz_seconds(server) < HEALTHZ_WITHIN
            write, write_seconds = writes[0].result()
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    for read, seconds in reads:
        assert read.data["me"]["email"] == "ann@x.io"
        assert seconds < HEALTHZ_WITHIN, seconds
    assert policy.ok()
    assert policy_seconds < HEALTHZ_WITHIN, policy_seconds
    assert_unavailable(write, write_seconds)
    assert api.sign_up("bob@x.io").ok()
