"""Starting the service as an operator does: a wrong setting is one line that
names it, exit 2, and never a traceback; the banner reaches a pipe; a clean stop
leaves nothing behind; one data folder; what `migrate --status` tells before an
upgrade or after a rollback (issue 18, items 1-3, 6, 9, 10)."""

import json
import queue
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import POSTGRES_URL, make_environ
from tests.servers import (
    APP_DIR,
    STARTUP_SECONDS,
    Servers,
    free_port,
    process_environ,
    run_cli,
)

PASSWORD_IN_URL = "hunter2-in-the-url"


@pytest.fixture
def servers() -> Iterator[Servers]:
    started = Servers()
    yield started
    started.stop_all()


def assert_one_line_error(done: "subprocess.CompletedProcess[str]", *names: str) -> str:
    """Exit 2, nothing on stdout, one `error:` line on stderr naming `names`."""
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: "), line
    for name in names:
        assert name in line, line
    assert PASSWORD_IN_URL not in line
    return line


WRONG_SETTINGS = {
    "database URL without ://": (
        "USER_SERVICE_DATABASE_URL",
        f"postgres//user:{PASSWORD_IN_URL}@host/db",
    ),
    "database URL of no known scheme": ("USER_SERVICE_DATABASE_URL", "bogus://x"),
    "database URL whose driver is missing": (
        "USER_SERVICE_DATABASE_URL",
        f"mysql://user:{PASSWORD_IN_URL}@127.0.0.1/db",
    ),
    "SQLite file in a folder that cannot exist": (
        "USER_SERVICE_DATABASE_URL",
        "sqlite:////proc/no-such-folder/users.db",
    ),
    "Redis URL of another scheme": (
        "USER_SERVICE_REDIS_URL",
        f"bogus://user:{PASSWORD_IN_URL}@x",
    ),
    "Redis URL without a host": ("USER_SERVICE_REDIS_URL", "redis://"),
    "port above 65535": ("USER_SERVICE_PORT", "70000"),
    "port 0": ("USER_SERVICE_PORT", "0"),
    "no workers": ("USER_SERVICE_WORKERS", "0"),
    "data folder that cannot be made": ("USER_SERVICE_DATA_DIR", "/proc/no-such"),
}


@pytest.mark.parametrize(
    ("variable", "value"), list(WRONG_SETTINGS.values()), ids=list(WRONG_SETTINGS)
)
@pytest.mark.parametrize("command", ["serve", "migrate"])
def test_wrong_setting_is_one_error_line_naming_it_and_exit_2(
    tmp_path: Path, variable: str, value: str, command: str
) -> None:
    environ = make_environ(tmp_path, **{variable: value})
    if variable == "USER_SERVICE_DATA_DIR":
        del environ["USER_SERVICE_DATA_KEY"]  # development keeps it there
    arguments = ["--port", str(free_port())] if command == "serve" else []
    done = run_cli(environ, command, *arguments, timeout=30)
    assert_one_line_error(done, variable)


def test_database_that_does_not_answer_at_start_is_one_error_line(
    tmp_path: Path,
) -> None:
    closed = f"postgresql://postgres:{PASSWORD_IN_URL}@127.0.0.1:{free_port()}/x"
    environ = make_environ(tmp_path, USER_SERVICE_DATABASE_URL=closed)
    line = assert_one_line_error(run_cli(environ, "migrate"), "DATABASE_URL")
    assert "Connection refused" in line


def test_wrong_postgres_database_name_is_one_error_line(tmp_path: Path) -> None:
    url = POSTGRES_URL.rsplit("/", 1)[0] + "/no_such_database_here"
    environ = make_environ(tmp_path, USER_SERVICE_DATABASE_URL=url)
    done = run_cli(environ, "migrate")
    if "Connection refused" in done.stderr:
        pytest.skip(f"PostgreSQL at {POSTGRES_URL} is not reachable")
    assert "no_such_database_here" in assert_one_line_error(done, "DATABASE_URL")


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        (["--port", "70000"], "--port"),
        (["--port", "0"], "--port"),
        (["--port", "http"], "--port"),
        (["serve", "--port", "65536"], "--port"),
        (["--workers", "0"], "--workers"),
        (["serve", "--workers", "-2"], "--workers"),
    ],
    ids=["port 70000", "port 0", "port word", "serve port 65536", "0", "-2"],
)
def test_out_of_range_port_or_workers_on_the_command_line_is_refused(
    tmp_path: Path, arguments: list[str], named: str
) -> None:
    done = run_cli(make_environ(tmp_path), *arguments)
    assert_one_line_error(done, named)
    assert not (tmp_path / "users.db").exists()


def test_port_in_use_is_one_error_line_before_the_banner(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = str(taken.getsockname()[1])
        done = run_cli(make_environ(tmp_path), "--port", port)
    assert port in assert_one_line_error(done, "--port", "USER_SERVICE_PORT")


def test_unknown_command_is_one_error_line(tmp_path: Path) -> None:
    assert_one_line_error(run_cli(make_environ(tmp_path), "nosuch"), "nosuch")


# ---- the banner and the warnings of a start ---------------------------------


def first_line_of(stream: "subprocess.Popen[str]") -> str:
    """The first line the process writes to its stdout pipe, while it runs."""
    lines: queue.Queue[str] = queue.Queue()
    assert stream.stdout is not None
    reader = threading.Thread(
        target=lambda: lines.put(stream.stdout.readline()),  # type: ignore[union-attr]
        daemon=True,
    )
    reader.start()
    try:
        return lines.get(timeout=STARTUP_SECONDS)
    except queue.Empty:
        pytest.fail("the banner did not reach the pipe while the server ran")


@pytest.mark.slow
def test_banner_reaches_a_pipe_while_the_server_runs(tmp_path: Path) -> None:
    port = free_port()
    environ = process_environ(make_environ(tmp_path))
    environ.pop("PYTHONUNBUFFERED", None)  # a pipe buffers, as under systemd
    with subprocess.Popen(
        [sys.executable, "server.py", "--port", str(port)],
        cwd=APP_DIR,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as process:
        try:
            line = first_line_of(process)
            assert process.poll() is None
        finally:
            process.terminate()
            process.wait(timeout=STARTUP_SECONDS)
    assert line == f"User service (development) on http://127.0.0.1:{port}/graphql\n"


def production(tmp_path: Path, **overrides: str) -> dict[str, str]:
    return make_environ(
        tmp_path,
        USER_SERVICE_ENV="production",
        USER_SERVICE_BCRYPT_COST="10",
        **overrides,
    )


SMTP_WARNING = "USER_SERVICE_SMTP_URL is not set: password-reset and verification"


@pytest.mark.slow
def test_production_without_smtp_warns_at_start(
    tmp_path: Path, servers: Servers
) -> None:
    server = servers.start(production(tmp_path))
    assert SMTP_WARNING in server.log_tail()


@pytest.mark.slow
def test_every_log_line_of_a_server_is_one_json_object(
    tmp_path: Path, servers: Servers
) -> None:
    server = servers.start(production(tmp_path))
    assert server.http.get("/no-such-page").status_code == 404
    deadline = time.monotonic() + STARTUP_SECONDS
    while '"path": "/no-such-page"' not in server.log_tail():
        assert time.monotonic() < deadline, server.log_tail()
        time.sleep(0.1)
    lines = server.log_path.read_text().splitlines()
    [banner] = [line for line in lines if not line.startswith("{")]
    assert banner.startswith("User service (production) on http://")
    entries = [json.loads(line) for line in lines if line != banner]
    assert all({"time", "level", "logger", "message"} <= set(e) for e in entries)
    requests = [e for e in entries if e["logger"] == "user_service.requests"]
    [request] = [e for e in requests if e["path"] == "/no-such-page"]
    assert (request["status"], request["outcome"]) == (404, "NOT_FOUND")
    assert "uvicorn.error" in {entry["logger"] for entry in entries}


@pytest.mark.slow
@pytest.mark.parametrize(
    "environ",
    [
        lambda path: make_environ(path),
        lambda path: production(path, USER_SERVICE_SMTP_URL="smtp://127.0.0.1:2525"),
    ],
    ids=["development", "production with SMTP"],
)
def test_start_with_mail_going_somewhere_does_not_warn(
    tmp_path: Path, servers: Servers, environ: object
) -> None:
    server = servers.start(environ(tmp_path))  # type: ignore[operator]
    assert "SMTP_URL" not in server.log_tail()


@pytest.mark.slow
def test_clean_stop_of_several_workers_removes_their_metrics_folder(
    tmp_path: Path, servers: Servers
) -> None:
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    environ = make_environ(tmp_path, TMPDIR=str(temporary))
    server = servers.start(environ, workers=2)
    [folder] = temporary.glob("user-service-metrics-*")
    assert server.http.get("/metrics").status_code == 200
    servers.stop(server)
    assert server.process.returncode == 0
    assert not folder.exists()


# ---- one data folder ---------------------------------------------------------


def test_data_folder_holds_the_database_whatever_folder_commands_run_from(
    tmp_path: Path,
) -> None:
    data, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    elsewhere.mkdir()
    environ = make_environ(data)
    del environ["USER_SERVICE_DATABASE_URL"], environ["USER_SERVICE_DATA_KEY"]
    for folder in (APP_DIR, elsewhere):
        done = subprocess.run(
            [sys.executable, str(APP_DIR / "server.py"), "tenant", "create", "acme"],
            cwd=folder,
            env=process_environ(environ),
            capture_output=True,
            text=True,
            timeout=STARTUP_SECONDS,
            check=False,
        )
        if folder == APP_DIR:
            assert done.returncode == 0, done.stderr
        else:  # the same database: the tenant is there already
            assert "a tenant named 'acme' exists already" in done.stderr
    assert {"data-key", "users.db"} <= {path.name for path in data.iterdir()}
    assert list(elsewhere.iterdir()) == []


# ---- upgrades ------------------------------------------------------------------


def test_migrate_status_lists_pending_then_applied_and_changes_nothing(
    tmp_path: Path,
) -> None:
    database = tmp_path / "users.db"
    environ = make_environ(tmp_path, USER_SERVICE_DATABASE_URL=f"sqlite:///{database}")
    names = sorted(path.stem for path in (APP_DIR / "migrations").glob("[0-9]*.py"))
    before = run_cli(environ, "migrate", "--status")
    assert before.returncode == 0, before.stderr
    assert [line.split() for line in before.stdout.splitlines()] == [
        [name, "pending"] for name in names
    ]
    assert run_cli(environ, "migrate", "--status").stdout == before.stdout
    assert run_cli(environ, "migrate").returncode == 0
    # A rollback to an older release: the newer one applied a migration it lacks.
    with sqlite3.connect(database) as connection:
        connection.execute(
            "INSERT INTO schema_migration (name, applied) VALUES (?, ?)",
            ("0999_from_a_newer_release", "2030-01-01 00:00:00"),
        )
    after = run_cli(environ, "migrate", "--status").stdout.splitlines()
    assert [line.split()[:2] for line in after] == [
        *([name, "applied"] for name in names),
        ["0999_from_a_newer_release", "applied"],
    ]
    assert after[-1].endswith(", not in this release")
    assert not any("not in this release" in line for line in after[:-1])
