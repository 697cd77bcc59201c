"""The operator's tenant and audit commands, run as real processes: listing
tenants, names the database can hold, an ADMIN for a tenant that has none, and
audit filters that are checked (issue 18, item 5)."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PASSWORD, make_environ
from tests.test_cli import PROJECT, TIMEOUT, Run, app_on, process_env, run_cli, run_ok

ADMIN_PASSWORD = {"USER_SERVICE_ADMIN_PASSWORD": PASSWORD}


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    return make_environ(tmp_path)


def tenant_names(environ: dict[str, str]) -> list[str]:
    rows = run_ok(environ, "tenant", "list").stdout.strip().splitlines()[1:]
    return [row.split()[0] for row in rows]


def assert_refused(run: Run, *words: str, returncode: int = 1) -> None:
    assert run.returncode == returncode, run.stderr
    assert run.stdout == ""
    assert "Traceback" not in run.stderr
    # The first command on a new database logs the migrations it applies.
    [line] = [line for line in run.stderr.splitlines() if "migrations" not in line]
    assert line.startswith("error: "), line
    for word in words:
        assert word in line, line


def test_tenant_list_shows_each_tenant_with_live_keys_users_and_admins(
    environ: dict[str, str],
) -> None:
    key = run_ok(
        environ,
        *("tenant", "create", "acme", "--admin-email", "boss@acme.io"),
        **ADMIN_PASSWORD,
    ).last_line
    run_ok(environ, "tenant", "create", "beta")
    run_ok(environ, "key", "create", "beta")
    with app_on(environ, key) as api:
        api.sign_up("ann@acme.io").ok()
    listing = run_ok(environ, "tenant", "list").stdout.strip().splitlines()
    assert listing[0].split() == [
        *("name", "created", "(UTC)", "live", "keys", "users", "admins")
    ]
    rows = {row.split()[0]: row.split()[3:] for row in listing[1:]}
    # The app in development ensured the dev tenant too.
    assert rows == {
        "acme": ["1", "2", "1"],
        "beta": ["2", "0", "0"],
        "dev": ["1", "0", "0"],
    }


def test_tenant_list_of_a_new_database_is_its_header(environ: dict[str, str]) -> None:
    assert tenant_names(environ) == []


@pytest.mark.parametrize(
    "name",
    ["", " ", " acme", "acme ", "a" * 101, "ac\tme", "ac\x00me"],
    ids=["empty", "blank", "leading space", "trailing space", "101", "tab", "NUL"],
)
def test_tenant_create_refuses_a_name_the_service_cannot_keep(
    environ: dict[str, str], name: str
) -> None:
    if "\x00" in name:  # no process argument can hold NUL: the closest is a name
        name = "ac\x7fme"  # with another control character
    run = run_cli(environ, "tenant", "create", name)
    assert_refused(run, "tenant name", "1 to 100 characters")
    assert tenant_names(environ) == []


def test_tenant_name_of_100_characters_is_kept(environ: dict[str, str]) -> None:
    run_ok(environ, "tenant", "create", "a" * 100)
    assert tenant_names(environ) == ["a" * 100]


def run_detached(environ: dict[str, str], *args: str) -> Run:
    """`server.py ARGS` with no terminal at all and nothing on stdin (cron, CI)."""
    done = subprocess.run(
        [sys.executable, "server.py", *args],
        cwd=PROJECT,
        env=process_env(environ),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        start_new_session=True,  # no controlling terminal: /dev/tty cannot open
    )
    return Run(done.returncode, done.stdout, done.stderr)


def test_admin_email_without_a_password_or_terminal_is_a_clear_error(
    environ: dict[str, str],
) -> None:
    run = run_detached(
        environ, "tenant", "create", "acme", "--admin-email", "boss@acme.io"
    )
    assert_refused(run, "USER_SERVICE_ADMIN_PASSWORD", "terminal")
    assert tenant_names(environ) == []


def test_admin_with_a_weak_password_is_refused_and_creates_no_tenant(
    environ: dict[str, str],
) -> None:
    run = run_cli(
        environ,
        *("tenant", "create", "acme", "--admin-email", "boss@acme.io"),
        USER_SERVICE_ADMIN_PASSWORD="short",
    )
    assert_refused(run, "admin password:")
    assert tenant_names(environ) == []


def test_add_admin_gives_a_tenant_without_one_an_admin_who_can_log_in(
    environ: dict[str, str],
) -> None:
    key = run_ok(environ, "tenant", "create", "acme").last_line
    run = run_ok(
        environ, "tenant", "add-admin", "acme", "boss@acme.io", **ADMIN_PASSWORD
    )
    assert run.stdout == "added ADMIN boss@acme.io to tenant 'acme'\n"
    assert PASSWORD not in run.stdout + run.stderr
    with app_on(environ, key) as api:
        assert api.login("boss@acme.io").ok()["login"]["user"]["role"] == "ADMIN"
    audit = run_ok(environ, "audit", "acme", "--action", "SIGNED_UP").stdout
    assert "target=boss@acme.io" in audit
    assert "ADMIN added by an operator" in audit


def test_add_admin_without_a_password_or_terminal_is_a_clear_error(
    environ: dict[str, str],
) -> None:
    run_ok(environ, "tenant", "create", "acme")
    run = run_detached(environ, "tenant", "add-admin", "acme", "boss@acme.io")
    assert_refused(run, "USER_SERVICE_ADMIN_PASSWORD")


def test_add_admin_to_an_unknown_tenant_is_refused(environ: dict[str, str]) -> None:
    run = run_cli(
        environ, "tenant", "add-admin", "nobody", "boss@x.io", **ADMIN_PASSWORD
    )
    assert_refused(run, "no tenant named 'nobody'")


def test_add_admin_with_an_email_the_tenant_has_is_refused(
    environ: dict[str, str],
) -> None:
    key = run_ok(environ, "tenant", "create", "acme").last_line
    with app_on(environ, key) as api:
        api.sign_up("ann@acme.io").ok()
    run = run_cli(
        environ, "tenant", "add-admin", "acme", "ANN@acme.io", **ADMIN_PASSWORD
    )
    assert_refused(run, "admin email: Email is taken.")
    with app_on(environ, key) as api:
        assert api.login("ann@acme.io").ok()["login"]["user"]["role"] == "USER"


# ---- audit ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        (["--action", "NO_SUCH"], "--action"),
        (["--limit", "0"], "--limit"),
        (["--limit", "-3"], "--limit"),
    ],
    ids=["unknown action", "limit 0", "negative limit"],
)
def test_audit_refuses_an_unknown_action_or_a_limit_below_1(
    environ: dict[str, str], arguments: list[str], named: str
) -> None:
    run_ok(environ, "tenant", "create", "acme")
    assert_refused(run_cli(environ, "audit", "acme", *arguments), named, returncode=2)


def test_audit_of_an_unknown_tenant_is_refused(environ: dict[str, str]) -> None:
    assert_refused(run_cli(environ, "audit", "nobody"), "no tenant named 'nobody'")


def test_audit_shows_actors_and_targets_by_email_and_takes_any_case(
    environ: dict[str, str],
) -> None:
    key = run_ok(
        environ,
        *("tenant", "create", "acme", "--admin-email", "boss@acme.io"),
        **ADMIN_PASSWORD,
    ).last_line
    with app_on(environ, key) as api:
        token = api.token("boss@acme.io")
        api.sign_up("ann@acme.io").ok()
        api.update_profile(token, email="ann@acme.io", role="ADMIN").ok()
    [line] = run_ok(
        environ, "audit", "acme", "--action", "role_changed"
    ).stdout.splitlines()
    assert "ROLE_CHANGED" in line
    assert "actor=boss@acme.io target=ann@acme.io" in line
