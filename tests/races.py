"""Bursts of requests at the same instant, and apps whose limits live in memory
or in Redis, for the tests that attack limits under concurrency."""

import contextlib
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from starlette.testclient import TestClient

from app import create_app
from models import AuditEvent
from models.db import close_database
from settings import Settings
from tests.conftest import Api, Result, make_environ, service_missing

T = TypeVar("T")
BARRIER_SECONDS = 30.0
ANSWER_SECONDS = 120.0
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
# The race tests' own Redis database (tests/api/test_rate_limits.py uses 11,
# tests/test_scale_out.py 12); emptied by every test that uses it.
REDIS_DB = 13
STORAGES = ["memory", "redis"]


def at_once(calls: Sequence[Callable[[], T]]) -> list[T]:
    """Run every call in its own thread, released together; results in order."""
    barrier = threading.Barrier(len(calls))

    def released(call: Callable[[], T]) -> T:
        barrier.wait(timeout=BARRIER_SECONDS)
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(released, call) for call in calls]
        return [future.result(timeout=ANSWER_SECONDS) for future in futures]


class Refusals:
    """Watches the attempts of a burst; `limit_used` is set by the first refusal
    (or once every attempt has its answer).

    A refusal means every allowed attempt was reserved, so an attempt sent
    after it, while the judged ones are still in flight, must be refused too.
    """

    def __init__(self, attempts: int) -> None:
        self.limit_used = threading.Event()
        self._left = attempts
        self._lock = threading.Lock()

    def attempt(self, call: Callable[[], Result]) -> Callable[[], Result]:
        def watched() -> Result:
            result = call()
            with self._lock:
                self._left -= 1
                if result.error_code == "RATE_LIMITED" or self._left == 0:
                    self.limit_used.set()
            return result

        return watched

    def after_limit(self, call: Callable[[], Result]) -> Callable[[], Result]:
        def late() -> Result:
            assert self.limit_used.wait(timeout=ANSWER_SECONDS)
            return call()

        return late


def empty_redis() -> str:
    """The URL of the race tests' Redis database, emptied (or skip without Redis)."""
    select = f"*2\r\n$6\r\nSELECT\r\n${len(str(REDIS_DB))}\r\n{REDIS_DB}\r\n"
    try:
        with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=1) as sock:
            sock.sendall(f"{select}*1\r\n$7\r\nFLUSHDB\r\n".encode())
            answers = b""
            while answers.count(b"\r\n") < 2:
                answers += sock.recv(64)
    except OSError:
        service_missing(f"Redis at {REDIS_HOST}:{REDIS_PORT} is not reachable")
    assert answers == b"+OK\r\n+OK\r\n", answers
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"


@contextlib.contextmanager
def app_api(tmp_path: Path, storage: str, **overrides: str) -> Iterator[Api]:
    """A running app (dev tenant) whose limits live in `storage`."""
    if storage == "redis":
        overrides["USER_SERVICE_REDIS_URL"] = empty_redis()
    settings = Settings.from_env(make_environ(tmp_path, **overrides))
    with TestClient(create_app(settings)) as client:
        yield Api(client, settings.dev_api_key, settings)
    close_database()


def codes(results: Sequence[Result]) -> Counter[str | None]:
    """How many answers had each error code (None: no error)."""
    return Counter(result.error_code for result in results)


def audited(action: str) -> int:
    """How many audit events of this action the database holds."""
    return int(AuditEvent.select().where(AuditEvent.action == action).count())


def assert_rate_limited(result: Result) -> None:
    assert result.data is None
    assert result.error_code == "RATE_LIMITED", result.body
    assert result.extensions["retryAfter"] > 0
