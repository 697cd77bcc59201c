"""The command line as an operator runs it: `python server.py ...` in a real
process, against the same SQLite file an app then serves (CONTRACT.md "Running it")."""

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from app import create_app
from models.db import MIGRATIONS, close_database, migrate, open_database
from provisioning import new_tenant
from settings import Settings
from tests.conftest import PASSWORD, Api, make_environ

PROJECT = Path(__file__).resolve().parent.parent
TIMEOUT = 30


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    @property
    def last_line(self) -> str:
        return self.stdout.strip().splitlines()[-1]


def process_env(environ: dict[str, str]) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", ""), **environ}


def run_cli(environ: dict[str, str], *args: str, **env: str) -> Run:
    done = subprocess.run(
        [sys.executable, "server.py", *args],
        cwd=PROJECT,
        env=process_env({**environ, **env}),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def run_ok(environ: dict[str, str], *args: str, **env: str) -> Run:
    run = run_cli(environ, *args, **env)
    assert run.returncode == 0, run.stderr
    return run


@contextlib.contextmanager
def app_on(environ: dict[str, str], api_key: str) -> Iterator[Api]:
    """The app on the database the CLI wrote to, seen through `api_key`."""
    settings = Settings.from_env(environ)
    with TestClient(create_app(settings)) as client:
        yield Api(client, api_key, settings)
    close_database()


def seed_tenant(environ: dict[str, str], name: str) -> str:
    """Create a tenant in-process, as `tenant create` would; return its key."""
    settings = Settings.from_env(environ)
    open_database(settings.database_url)
    try:
        migrate()
        return new_tenant(settings, name)
    finally:
        close_database()


def key_rows(listing: str) -> dict[str, list[str]]:
    """`key list` rows by shown prefix: [id, prefix…, dates…, status]."""
    rows = [line.split() for line in listing.strip().splitlines()[1:]]
    return {row[1].rstrip("…"): row for row in rows}


def test_migrate_applies_every_migration(environ: dict[str, str]) -> None:
    names = sorted(path.stem for path in MIGRATIONS.glob("[0-9]*.py"))
    run = run_ok(environ, "migrate")
    assert run.stdout.strip() == (
        f"applied {len(names)} migration(s): {', '.join(names)}"
    )


def test_tenant_create_prints_a_key_that_works_on_the_same_database(
    environ: dict[str, str],
) -> None:
    key = run_ok(environ, "tenant", "create", "acme").last_line
    assert key.startswith("usk_")
    with app_on(environ, key) as api:
        assert api.gql("{ __typename }").ok() == {"__typename": "Query"}


def test_tenant_create_with_admin_email_makes_an_admin_who_can_log_in(
    environ: dict[str, str],
) -> None:
    run = run_ok(
        environ,
        *("tenant", "create", "acme", "--admin-email", "boss@acme.io"),
        USER_SERVICE_ADMIN_PASSWORD=PASSWORD,
    )
    with app_on(environ, run.last_line) as api:
        login = api.login("boss@acme.io").ok()["login"]
    assert login["user"]["role"] == "ADMIN"
    assert PASSWORD not in run.stdout + run.stderr


def test_tenant_create_with_a_taken_name_fails_and_says_why(
    environ: dict[str, str],
) -> None:
    seed_tenant(environ, "acme")
    run = run_cli(environ, "tenant", "create", "acme")
    assert run.returncode != 0
    assert run.stdout == ""
    assert "error: a tenant named 'acme' exists already" in run.stderr


def test_key_create_list_and_revoke_manage_a_tenants_keys(
    environ: dict[str, str],
) -> None:
    first = seed_tenant(environ, "acme")
    second = run_ok(environ, "key", "create", "acme").last_line
    assert second.startswith("usk_")
    assert second != first
    listing = run_ok(environ, "key", "list", "acme").stdout
    assert first not in listing
    assert second not in listing
    rows = key_rows(listing)
    assert set(rows) == {first[:12], second[:12]}
    first_id = rows[first[:12]][0]
    run_ok(environ, "key", "revoke", first_id)
    rows = key_rows(run_ok(environ, "key", "list", "acme").stdout)
    assert (rows[first[:12]][-1], rows[second[:12]][-1]) == ("revoked", "live")
    with app_on(environ, first) as api:
        response = api.gql("{ __typename }")
        assert (response.status, response.error_code) == (401, "INVALID_API_KEY")
    with app_on(environ, second) as api:
        assert api.gql("{ __typename }").ok() == {"__typename": "Query"}


def test_key_create_for_unknown_tenant_fails(environ: dict[str, str]) -> None:
    run = run_cli(environ, "key", "create", "nobody")
    assert run.returncode != 0
    assert run.stdout == ""
    assert "error: no tenant named 'nobody'" in run.stderr


@pytest.mark.parametrize(
    "command",
    [("tenant", "create", "dev"), ("key", "create", "dev")],
    ids=["tenant create", "key create"],
)
def test_production_refuses_to_create_the_dev_tenant_or_its_keys(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    run = run_cli(production(tmp_path), *command)
    assert (run.returncode, run.stdout) == (1, "")
    assert "error: the tenant 'dev' exists only in development" in run.stderr


# ---- settings that refuse to start ---------------------------------------------


def production(tmp_path: Path, **overrides: str) -> dict[str, str]:
    environ = make_environ(tmp_path, USER_SERVICE_ENV="production", **overrides)
    environ["USER_SERVICE_BCRYPT_COST"] = "12"
    return environ


def test_production_without_data_key_refuses_to_start(tmp_path: Path) -> None:
    environ = production(tmp_path)
    del environ["USER_SERVICE_DATA_KEY"]
    run = run_cli(environ, "migrate")
    assert run.returncode != 0
    assert "USER_SERVICE_DATA_KEY" in run.stderr
    assert not (tmp_path / "users.db").exists()


def test_serve_in_production_with_31_byte_data_key_exits_at_once(
    tmp_path: Path,
) -> None:
    environ = production(tmp_path, USER_SERVICE_DATA_KEY="s" * 31)
    run = run_cli(environ, "--port", str(free_port()))  # serve: the default command
    assert run.returncode != 0
    assert "USER_SERVICE_DATA_KEY" in run.stderr
    assert "s" * 31 not in run.stderr


WEAK_PRODUCTION = {
    "data key of one character": ("USER_SERVICE_DATA_KEY", "x" * 48),
    "CORS for every origin": ("USER_SERVICE_CORS_ORIGINS", "*"),
}


@pytest.mark.parametrize(
    ("variable", "value"), list(WEAK_PRODUCTION.values()), ids=list(WEAK_PRODUCTION)
)
def test_serve_in_production_with_a_weak_setting_exits_with_one_line_naming_it(
    tmp_path: Path, variable: str, value: str
) -> None:
    environ = production(tmp_path, **{variable: value})
    run = run_cli(environ, "serve", "--port", str(free_port()))
    assert run.returncode == 2
    assert run.stdout == ""
    [line] = run.stderr.strip().splitlines()
    assert line.startswith(f"error: {variable} "), line
    assert "x" * 48 not in line
    assert not (tmp_path / "users.db").exists()


def test_a_data_key_that_does_not_open_the_signing_key_is_one_line_naming_it(
    tmp_path: Path,
) -> None:
    run_ok(make_environ(tmp_path), "migrate")
    other_key = make_environ(
        tmp_path, USER_SERVICE_DATA_KEY="another-data-key-" + "z" * 40
    )
    run = run_cli(other_key, "migrate")
    assert run.returncode == 2
    [line] = run.stderr.strip().splitlines()
    assert line.startswith("error: USER_SERVICE_DATA_KEY does not open the signing key")
    assert "signing-key rotate" in line


def test_bad_integer_setting_refuses_to_start_naming_it(tmp_path: Path) -> None:
    run = run_cli(
        make_environ(tmp_path, USER_SERVICE_ACCESS_TOKEN_TTL="abc"), "migrate"
    )
    assert run.returncode != 0
    assert "USER_SERVICE_ACCESS_TOKEN_TTL" in run.stderr


# ---- serve ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_healthz(url: str, process: subprocess.Popen[bytes]) -> bytes:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server exited"
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310
                assert response.status == 200
                return bytes(response.read())
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"no answer from {url} within {TIMEOUT} s")


@pytest.mark.slow
def test_serve_answers_healthz_on_the_given_port(tmp_path: Path) -> None:
    port = free_port()
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "server.py", "--port", str(port)],
        cwd=PROJECT,
        env=process_env(make_environ(tmp_path)),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        body = wait_for_healthz(f"http://127.0.0.1:{port}/healthz", process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()
    assert body == b'{"status":"ok"}'
