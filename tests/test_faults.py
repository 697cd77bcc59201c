"""Faults a running service survives: the database going away (through a TCP proxy
the test controls, never by stopping the shared server), the database holding a
lock past the timeout, and a SIGKILL in the middle of sign-ups."""

import contextlib
import socket
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import httpx2
import psycopg
import pytest
from peewee import DatabaseError
from playhouse import db_url

from errors import ServiceUnavailable
from models.db import is_unavailable
from tests.conftest import ON_POSTGRES, PASSWORD, POSTGRES_URL, Result, make_environ
from tests.servers import LOOSE_LIMITS, Server, Servers, create_tenant, free_port

pytestmark = pytest.mark.slow

DATABASE_TIMEOUT = 2  # seconds: USER_SERVICE_DATABASE_TIMEOUT for these tests
ANSWER_WITHIN = 5.0  # the contract: SERVICE_UNAVAILABLE within 5 seconds
RECOVER_WITHIN = 10.0
UNAVAILABLE_BODY = {"status": "unavailable"}
T = TypeVar("T")


# ---- a TCP proxy between the service and PostgreSQL -----------------------------


class CuttableProxy:
    """Forwards a loopback port to PostgreSQL until cut.

    `cut()` closes every forwarded connection and stops listening, so new
    connections are refused; `stall()` closes them too but then accepts new
    connections and never answers (a black hole); `restore()` forwards again on
    the same port.
    """

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = 0
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._accepting: threading.Thread | None = None
        self._stop = threading.Event()
        self._forward = True

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.05)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._stop.clear()
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def cut(self) -> None:
        self._stop_listening()
        self._close_connections()

    def stall(self) -> None:
        self._forward = False
        self._close_connections()

    def restore(self) -> None:
        self._forward = True
        if self._listener is None:
            self.start()

    def close(self) -> None:
        self.cut()

    def _stop_listening(self) -> None:
        self._stop.set()
        if self._accepting is not None:
            self._accepting.join(timeout=5)
        if self._listener is not None:
            self._listener.close()
        self._listener, self._accepting = None, None

    def _close_connections(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self) -> None:
        assert self._listener is not None
        listener = self._listener
        while not self._stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            if not self._forward:  # a black hole: hold it, say nothing
                with self._lock:
                    self._sockets.add(client)
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=3)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._sockets.update((client, server))
            for source, target in ((client, server), (server, client)):
                threading.Thread(
                    target=self._pump, args=(source, target), daemon=True
                ).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def through_proxy(url: str, port: int) -> str:
    """The same database URL (search_path option included) via `port`."""
    parts = urllib.parse.urlsplit(url)
    user_info, at, _ = parts.netloc.rpartition("@")
    netloc = f"{user_info}{at}{parts.hostname}:{port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def postgres_address() -> tuple[str, int]:
    parts = urllib.parse.urlsplit(POSTGRES_URL)
    return parts.hostname or "127.0.0.1", parts.port or 5432


@pytest.fixture
def servers() -> Iterator[Servers]:
    started = Servers()
    yield started
    started.stop_all()


@pytest.fixture
def proxy() -> Iterator[CuttableProxy]:
    if not ON_POSTGRES:
        pytest.skip(
            "database-down faults need a network database: run with "
            "USER_SERVICE_TEST_DATABASE=postgresql (SQLite's equivalent, a lock "
            "held past the busy timeout, is tested below)"
        )
    proxy = CuttableProxy(postgres_address())
    proxy.start()
    yield proxy
    proxy.close()


@pytest.fixture
def proxied_server(servers: Servers, proxy: CuttableProxy, tmp_path: Path) -> Server:
    """A one-worker service whose only way to PostgreSQL is the proxy."""
    environ = make_environ(
        tmp_path,
        **LOOSE_LIMITS,
        USER_SERVICE_DATABASE_TIMEOUT=str(DATABASE_TIMEOUT),
    )
    url = environ["USER_SERVICE_DATABASE_URL"]
    environ["USER_SERVICE_DATABASE_URL"] = through_proxy(url, proxy.port)
    return servers.start(environ, workers=1)


# ---- helpers ---------------------------------------------------------------------


def timed(call: Callable[[], T]) -> tuple[T, float]:
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def assert_unavailable(result: Result, seconds: float) -> None:
    """SERVICE_UNAVAILABLE within the contract's 5 s, from the key check (HTTP
    503) or from GraphQL (HTTP 200), with the generic message and no data."""
    assert seconds < ANSWER_WITHIN, f"answered after {seconds:.1f}s"
    assert result.status in (200, 503), result.body
    assert result.data is None, result.body
    assert [error["extensions"]["code"] for error in result.errors] == [
        ServiceUnavailable.code
    ], result.body
    assert result.errors[0]["message"] == ServiceUnavailable.default_message


def readyz(server: Server) -> httpx2.Response:
    return server.http.get("/readyz", timeout=ANSWER_WITHIN + 5)


def wait_until_ready(server: Server, seconds: float = RECOVER_WITHIN) -> float:
    """Poll /readyz until 200; return how long it took."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        with contextlib.suppress(httpx2.TransportError):
            if readyz(server).status_code == 200:
                return time.monotonic() - started
        time.sleep(0.2)
    pytest.fail(
        f"not ready {seconds}s after the database returned:\n{server.log_tail()}"
    )


def assert_database_down_answers(server: Server, email: str, rounds: int) -> None:
    """What every kind of request answers while the database is away: the first
    request meets the broken pooled connection, the later ones reconnect."""
    api = server.dev
    for _ in range(rounds):
        result, seconds = timed(lambda: api.sign_up("new." + email))
        assert_unavailable(result, seconds)
        response, seconds = timed(lambda: readyz(server))
        assert seconds < ANSWER_WITHIN, f"/readyz answered after {seconds:.1f}s"
        assert response.status_code == 503
        assert response.json() == UNAVAILABLE_BODY
        result, seconds = timed(lambda: api.login(email))
        assert_unavailable(result, seconds)
        assert server.http.get("/healthz", timeout=2).status_code == 200


# ---- the database goes away and comes back ---------------------------------------


def test_cut_database_answers_service_unavailable_quickly_then_recovers_by_itself(
    proxied_server: Server, proxy: CuttableProxy
) -> None:
    api = proxied_server.dev
    api.sign_up("ann@x.io").ok()
    api.login("ann@x.io").ok()
    proxy.cut()

    assert_database_down_answers(proxied_server, "ann@x.io", rounds=2)
    response = readyz(proxied_server)
    assert "postgres" not in response.text
    assert str(proxy.port) not in response.text

    proxy.restore()
    assert wait_until_ready(proxied_server) < RECOVER_WITHIN
    assert api.login("ann@x.io").ok()["login"]["user"]["email"] == "ann@x.io"
    api.sign_up("bob@x.io").ok()
    assert api.login("bob@x.io").ok()["login"]["user"]["email"] == "bob@x.io"


def test_database_that_accepts_but_never_answers_is_unavailable_within_the_timeout(
    proxied_server: Server, proxy: CuttableProxy
) -> None:
    api = proxied_server.dev
    api.sign_up("ann@x.io").ok()
    proxy.stall()  # connects hang: only the connect timeout ends them

    assert_database_down_answers(proxied_server, "ann@x.io", rounds=1)

    proxy.restore()
    wait_until_ready(proxied_server)
    assert api.login("ann@x.io").ok()["login"]["user"]["email"] == "ann@x.io"


def test_query_whose_reconnect_is_refused_counts_as_database_unavailable() -> None:
    """After a broken connection is closed, Peewee reconnects inside the next
    query and wraps the driver's error twice; it is still "unavailable"."""
    url = through_proxy(POSTGRES_URL, free_port())  # nothing listens there
    db = db_url.connect(url, connect_timeout=DATABASE_TIMEOUT)
    with pytest.raises(DatabaseError) as raised:
        db.execute_sql("SELECT 1")
    assert is_unavailable(raised.value)


# ---- the database holds a lock past the timeout (both backends) ------------------


@contextlib.contextmanager
def users_table_locked(database_url: str) -> Iterator[None]:
    """Another client holds a write lock on the user table until the block ends."""
    if database_url.startswith("sqlite"):
        path = database_url.split(":///", 1)[1]
        connection = sqlite3.connect(path, isolation_level=None)
        try:
            connection.execute("BEGIN IMMEDIATE")  # SQLite's one writer
            yield
            connection.execute("ROLLBACK")
        finally:
            connection.close()
        return
    with psycopg.connect(database_url, connect_timeout=3) as holder:
        holder.execute('LOCK TABLE "user" IN ACCESS EXCLUSIVE MODE')
        yield
        holder.rollback()


def test_lock_held_past_the_timeout_answers_service_unavailable_then_recovers(
    servers: Servers, tmp_path: Path
) -> None:
    environ = make_environ(
        tmp_path, **LOOSE_LIMITS, USER_SERVICE_DATABASE_TIMEOUT=str(DATABASE_TIMEOUT)
    )
    server = servers.start(environ, workers=1)
    api = server.dev
    api.sign_up("ann@x.io").ok()
    with users_table_locked(environ["USER_SERVICE_DATABASE_URL"]):
        result, seconds = timed(lambda: api.sign_up("bob@x.io"))
        assert_unavailable(result, seconds)
        assert seconds >= DATABASE_TIMEOUT - 0.5  # it did wait for the lock
        assert server.http.get("/healthz", timeout=2).status_code == 200
    api.sign_up("bob@x.io").ok()
    assert api.login("bob@x.io").ok()["login"]["user"]["email"] == "bob@x.io"


# ---- SIGKILL in the middle of sign-ups loses nothing -----------------------------

THREADS = 8
SIGN_UPS_PER_THREAD = 25
KILL_AFTER = 40  # answered sign-ups before the kill
SIGN_UP = "mutation($input: SignUpInput!) { signUp(input: $input) { id email } }"
USERS_PAGE = (
    "query($after: String) { users(first: 100, after: $after) {"
    " edges { node { email } } pageInfo { hasNextPage endCursor } } }"
)
ADMIN = "boss@kill.io"


def all_emails(server: Server, api_key: str) -> set[str]:
    """Every account of the tenant, through the ADMIN `users` query."""
    api = server.api(api_key)
    token = api.token(ADMIN)
    emails: set[str] = set()
    after: str | None = None
    while True:
        page = api.gql(USERS_PAGE, {"after": after}, token=token).ok()["users"]
        emails.update(edge["node"]["email"] for edge in page["edges"])
        if not page["pageInfo"]["hasNextPage"]:
            return emails
        after = page["pageInfo"]["endCursor"]


def test_sigkill_during_concurrent_sign_ups_loses_no_answered_account_and_leaves_none_half_written(  # noqa: E501
    servers: Servers, tmp_path: Path
) -> None:
    environ = make_environ(tmp_path, **LOOSE_LIMITS)
    api_key = create_tenant(environ, "kill", ADMIN)
    server = servers.start(environ, workers=2)
    answered: list[str] = []
    cut_off: list[str] = []  # sent, but the answer never came
    lock = threading.Lock()
    enough = threading.Event()

    def sign_up_many(thread: int) -> None:
        with httpx2.Client(base_url=str(server.http.base_url), timeout=15) as http:
            for number in range(SIGN_UPS_PER_THREAD):
                email = f"user.{thread}.{number}@kill.io"
                body = {"input": {"email": email, "password": PASSWORD}}
                try:
                    response = http.post(
                        "/graphql",
                        json={"query": SIGN_UP, "variables": body},
                        headers={"X-API-Key": api_key},
                    )
                except httpx2.TransportError:
                    with lock:
                        cut_off.append(email)
                    return  # the server is gone
                result = response.json()
                assert response.status_code == 200, result
                assert "errors" not in result, result
                assert result["data"]["signUp"]["email"] == email
                with lock:
                    answered.append(email)
                    if len(answered) >= KILL_AFTER:
                        enough.set()

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        futures = [pool.submit(sign_up_many, thread) for thread in range(THREADS)]
        assert enough.wait(timeout=30), f"only {len(answered)} sign-ups answered"
        servers.kill(server)
        for future in futures:
            future.result(timeout=30)
    servers.stop(server)
    assert len(answered) < THREADS * SIGN_UPS_PER_THREAD, "killed too late"
    assert cut_off, "no sign-up was in flight when the server was killed"

    restarted = servers.start(environ, workers=1)
    existing = all_emails(restarted, api_key) - {ADMIN}
    missing = set(answered) - existing
    assert not missing, f"answered sign-ups lost: {sorted(missing)}"
    attempted = set(answered) | set(cut_off)
    assert existing <= attempted, sorted(existing - attempted)
    api = restarted.api(api_key)

    def logs_in(email: str) -> str | None:
        result = api.login(email)
        if result.status == 200 and not result.errors:
            return None
        return f"{email}: {result.status} {result.body}"

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        failures = [
            failure for failure in pool.map(logs_in, sorted(existing)) if failure
        ]
    assert failures == []
