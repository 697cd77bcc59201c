"""Real service processes for the race, fault, migration and scale-out tests.

`Servers` starts `python server.py` in its own process group (uvicorn's workers
share it), waits for /healthz with a bounded wait, and always stops what it
started: a polite SIGTERM first, then SIGKILL to the whole group. The process
handling is processes.py's, shared with the benchmark.
"""

import contextlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import httpx2
import pytest
from starlette.testclient import TestClient

from processes import (
    NotHealthy,
    kill_group,
    start_group,
    stop_group,
    wait_until_healthy,
)
from processes import free_port as free_port  # the tests' import of it
from settings import Settings
from tests.conftest import PASSWORD, Api

APP_DIR = Path(__file__).resolve().parent.parent
STARTUP_SECONDS = 20.0
STOP_SECONDS = 10.0
HTTP_SECONDS = 15.0
CLI_SECONDS = 60.0
# Tests that fire many requests would trip the contract's limits; these raise them.
LOOSE_LIMITS = {
    "USER_SERVICE_LOGIN_FAILURES_PER_ACCOUNT": "1000 per minute",
    "USER_SERVICE_LOGIN_FAILURES_PER_ADDRESS": "1000 per minute",
    "USER_SERVICE_SIGNUPS_PER_ADDRESS": "1000 per minute",
}


def process_environ(environ: dict[str, str]) -> dict[str, str]:
    """This process's environment without its service settings, plus `environ`."""
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("USER_SERVICE_") and name != "PROMETHEUS_MULTIPROC_DIR"
    }
    return inherited | environ


def run_cli(
    environ: dict[str, str], *args: str, timeout: float = CLI_SECONDS
) -> "subprocess.CompletedProcess[str]":
    """Run `python server.py ARGS` as an operator would; never raises on failure."""
    return subprocess.run(
        [sys.executable, "server.py", *args],
        cwd=APP_DIR,
        env=process_environ(environ),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def create_tenant(environ: dict[str, str], name: str, admin_email: str) -> str:
    """`tenant create NAME --admin-email E` (password PASSWORD); return the key."""
    done = run_cli(
        environ | {"USER_SERVICE_ADMIN_PASSWORD": PASSWORD},
        "tenant",
        "create",
        name,
        "--admin-email",
        admin_email,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


@dataclass
class Server:
    """One `python server.py` process group and an HTTP client pointed at it."""

    process: "subprocess.Popen[bytes]"
    http: httpx2.Client
    environ: dict[str, str]
    log_path: Path
    port: int

    def api(self, api_key: str) -> Api:
        # Api only calls .post(); an httpx client of a real server has the same.
        return Api(
            cast(TestClient, self.http), api_key, Settings.from_env(self.environ)
        )

    @property
    def dev(self) -> Api:
        return self.api(Settings.from_env(self.environ).dev_api_key)

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


class Servers:
    """Starts server processes and makes sure every one of them stops.

    `startup_seconds` bounds the wait for /healthz; `http_timeout` is each
    server's client timeout (raise both for servers under heavy load).
    """

    def __init__(
        self,
        *,
        startup_seconds: float = STARTUP_SECONDS,
        http_timeout: float = HTTP_SECONDS,
    ) -> None:
        self.running: list[Server] = []
        self.startup_seconds = startup_seconds
        self.http_timeout = http_timeout

    def start(
        self, environ: dict[str, str], *, workers: int = 1, port: int | None = None
    ) -> Server:
        port = port or free_port()
        log_path = Path(environ["USER_SERVICE_DATA_DIR"]) / f"server-{port}.log"
        command = [sys.executable, "server.py", "--port", str(port)]
        process = start_group(
            [*command, "--workers", str(workers)],
            cwd=APP_DIR,
            env=process_environ(environ),
            log_path=log_path,
        )
        http = httpx2.Client(
            base_url=f"http://127.0.0.1:{port}", timeout=self.http_timeout
        )
        server = Server(process, http, environ, log_path, port)
        self.running.append(server)
        wait_for(server, self.startup_seconds)
        return server

    def kill(self, server: Server) -> None:
        """SIGKILL the whole process group at once: a crash, no shutdown."""
        kill_group(server.process, STOP_SECONDS)

    def stop(self, server: Server) -> None:
        if server in self.running:
            self.running.remove(server)
        server.http.close()
        # SIGTERM to the supervisor, which stops its workers; then whatever is
        # left of the group (a worker the supervisor left behind).
        stop_group(server.process, STOP_SECONDS, terminate_group=False)

    def stop_all(self) -> None:
        for server in list(self.running):
            with contextlib.suppress(Exception):
                self.stop(server)


def wait_for(server: Server, seconds: float = STARTUP_SECONDS) -> None:
    """Until the server answers /healthz; fails the test with its log if not."""
    try:
        wait_until_healthy(server.process, server.port, seconds)
    except NotHealthy as error:
        pytest.fail(f"{error}:\n{server.log_tail()}")
