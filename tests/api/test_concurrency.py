"""Races and restarts against a real server: `python server.py` in a subprocess.

Two uvicorn workers share one SQLite file, so concurrent requests really run in
parallel (within one worker the event loop would serialize most of them).
"""

import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar, cast

import httpx2
import pytest
from starlette.testclient import TestClient

from settings import Settings
from tests.conftest import PASSWORD, Api, make_environ

pytestmark = pytest.mark.slow

APP_DIR = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 30.0
STOP_SECONDS = 15.0
CLI_SECONDS = 60.0
# Concurrent requests would trip the contract's rate limits; these raise them.
LOOSE_LIMITS = {
    "USER_SERVICE_LOGIN_FAILURES_PER_ACCOUNT": "1000 per minute",
    "USER_SERVICE_LOGIN_FAILURES_PER_ADDRESS": "1000 per minute",
    "USER_SERVICE_SIGNUPS_PER_ADDRESS": "1000 per minute",
}
T = TypeVar("T")


@dataclass
class Server:
    """One `python server.py` process and an HTTP client pointed at it."""

    process: subprocess.Popen[bytes]
    http: httpx2.Client
    environ: dict[str, str]
    log_path: Path

    def api(self, api_key: str) -> Api:
        # Api only calls .post(); an httpx client of a real server has the same.
        client = cast(TestClient, self.http)
        return Api(client, api_key, Settings.from_env(self.environ))

    @property
    def dev(self) -> Api:
        return self.api(Settings.from_env(self.environ).dev_api_key)

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


def process_environ(environ: dict[str, str]) -> dict[str, str]:
    """This process's environment, minus its USER_SERVICE_*, plus `environ`."""
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("USER_SERVICE_")
    }
    return inherited | environ


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_cli(environ: dict[str, str], *args: str) -> str:
    """Run a `server.py` command; return its stdout."""
    completed = subprocess.run(
        [sys.executable, "server.py", *args],
        cwd=APP_DIR,
        env=process_environ(environ),
        capture_output=True,
        text=True,
        timeout=CLI_SECONDS,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def create_tenant(server: Server, name: str, admin_email: str) -> Api:
    """`tenant create NAME --admin-email E`, as an operator runs it."""
    environ = server.environ | {"USER_SERVICE_ADMIN_PASSWORD": PASSWORD}
    output = run_cli(environ, "tenant", "create", name, "--admin-email", admin_email)
    return server.api(output.strip().splitlines()[-1])


class Servers:
    """Starts server processes and makes sure every one of them stops."""

    def __init__(self) -> None:
        self.running: list[Server] = []

    def start(self, environ: dict[str, str], *, workers: int = 2) -> Server:
        port = free_port()
        log_path = Path(environ["USER_SERVICE_DATA_DIR"]) / f"server-{port}.log"
        command = [sys.executable, "server.py", "--port", str(port)]
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [*command, "--workers", str(workers)],
                cwd=APP_DIR,
                env=process_environ(environ),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its workers share its process group
            )
        http = httpx2.Client(base_url=f"http://127.0.0.1:{port}", timeout=30.0)
        server = Server(process, http, environ, log_path)
        self.running.append(server)
        wait_until_healthy(server)
        return server

    def stop(self, server: Server) -> None:
        self.running.remove(server)
        server.http.close()
        if server.process.poll() is None:
            server.process.terminate()
        try:
            server.process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait(timeout=STOP_SECONDS)

    def stop_all(self) -> None:
        for server in list(self.running):
            self.stop(server)


def wait_until_healthy(server: Server) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"server exited at start-up:\n{server.log_tail()}")
        try:
            if server.http.get("/healthz", timeout=1.0).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"server not healthy after {STARTUP_SECONDS}s:\n{server.log_tail()}")


def server_environ(data_dir: Path) -> dict[str, str]:
    return make_environ(data_dir, **LOOSE_LIMITS)


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    started = Servers()
    yield started
    started.stop_all()


@pytest.fixture(scope="module")
def server(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Server:
    """One server for the race tests; each test uses emails of its own."""
    return servers.start(server_environ(tmp_path_factory.mktemp("races")))


def run_at_once(calls: list[Callable[[], T]]) -> list[T]:
    """Run every call in its own thread, released together by a barrier."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], T]) -> T:
        barrier.wait(timeout=30)
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(run, call) for call in calls]
        return [future.result(timeout=120) for future in futures]


# ---- C11: uniqueness under concurrency ---------------------------------------


def test_concurrent_sign_ups_of_one_email_in_variants_make_exactly_one_account(
    server: Server,
) -> None:
    api = server.dev
    variants = [
        "race.ann@x.io",
        "Race.Ann@X.io",
        "  race.ann@x.io ",
        "RACE.ANN@X.IO",
        "\trAcE.aNn@x.Io",
    ]
    emails = [variants[attempt % len(variants)] for attempt in range(20)]
    results = run_at_once([partial(api.sign_up, email) for email in emails])
    assert {result.status for result in results} == {200}
    assert Counter(result.error_code for result in results) == {
        None: 1,
        "EMAIL_TAKEN": 19,
    }
    api.login("race.ann@x.io").ok()


# ---- concurrent profile edits lose nothing -----------------------------------


def field_value(field: str, attempt: int) -> str:
    return f"+4790000{attempt:03d}" if field == "mobile" else f"{field}-{attempt}"


def test_concurrent_profile_edits_of_different_fields_lose_nothing(
    server: Server,
) -> None:
    api = server.dev
    token = api.user("race.profile@x.io", designation="Engineer")
    fields = ("city", "organization", "mobile")
    combinations = [
        combination
        for size in (1, 2, 3)
        for combination in itertools.combinations(fields, size)
    ]
    edits: list[dict[str, Any]] = [
        {field: field_value(field, attempt) for field in combinations[attempt % 7]}
        for attempt in range(30)
    ]
    results = run_at_once(
        [
            partial(api.update_profile, token, email="race.profile@x.io", **edit)
            for edit in edits
        ]
    )
    for result in results:
        result.ok()
    profile = api.me(token).ok()["me"]
    for field in fields:
        sent = {edit[field] for edit in edits if field in edit}
        assert profile[field] in sent, (field, profile[field])
    assert profile["designation"] == "Engineer"  # never sent: untouched


# ---- E5: racing demotions keep an ADMIN --------------------------------------


def test_two_admins_demoting_each_other_at_once_keep_an_admin(server: Server) -> None:
    acme = create_tenant(server, "race-acme", "boss@race.io")
    tokens = {"boss@race.io": acme.token("boss@race.io")}
    acme.sign_up("second@race.io", role="ADMIN", token=tokens["boss@race.io"]).ok()
    tokens["second@race.io"] = acme.token("second@race.io")
    for _round in range(5):
        results = run_at_once(
            [
                partial(acme.update_profile, tokens[actor], email=target, role="USER")
                for actor, target in itertools.permutations(tokens, 2)
            ]
        )
        codes = [result.error_code for result in results]
        assert "FORBIDDEN" in codes, codes
        assert set(codes) <= {None, "FORBIDDEN"}, codes
        roles = {
            email: acme.me(token).ok()["me"]["role"] for email, token in tokens.items()
        }
        admins = [email for email, role in roles.items() if role == "ADMIN"]
        assert admins, roles
        # Promote the other one again for the next round.
        for email in tokens:
            acme.update_profile(tokens[admins[0]], email=email, role="ADMIN").ok()


# ---- durability ----------------------------------------------------------------


def test_accounts_survive_a_server_restart(servers: Servers, tmp_path: Path) -> None:
    environ = server_environ(tmp_path)
    first = servers.start(environ, workers=1)
    first.dev.sign_up("keep@x.io", city="Oslo").ok()
    servers.stop(first)
    second = servers.start(environ, workers=1)
    token = second.dev.token("keep@x.io")
    me = second.dev.me(token).ok()["me"]
    assert (me["email"], me["city"], me["role"]) == ("keep@x.io", "Oslo", "USER")
