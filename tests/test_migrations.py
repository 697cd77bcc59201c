"""The migration files build the schema from empty, on whichever database the suite
runs on (SQLite by default, PostgreSQL with USER_SERVICE_TEST_DATABASE=postgresql),
and what they build is what the models describe. `python server.py migrate` is safe
to run from several hosts at the same moment."""

import importlib
import inspect
import logging
import pkgutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import psycopg
import pytest
from peewee import SQL, Database, Model, PostgresqlDatabase, Table
from playhouse.migrations import Runner
from playhouse.schema_diff import diff_models
from starlette.testclient import TestClient

import models
from app import create_app
from auth.passwords import hash_password
from models.db import (
    MIGRATION_LOCK_ID,
    MIGRATIONS,
    BaseModel,
    as_db,
    close_database,
    database,
    migrate,
    open_database,
    utcnow,
)
from models.tenant import Tenant
from models.user import User
from settings import Settings
from tests.conftest import ON_POSTGRES, Api, make_environ
from tests.servers import APP_DIR, CLI_SECONDS, process_environ

HISTORY_TABLE = "schema_migration"
MIGRATORS = 4
# Each migrator imports the app first (the slow part), then all start migrating
# at this many seconds after launch.
START_DELAY = 4.0
LAUNCHER = """
import runpy, sys, time
import server  # noqa: F401  # the imports, done before the common start
time.sleep(max(0.0, float(sys.argv[1]) - time.time()))
sys.argv = ["server.py", "migrate"]
runpy.run_path("server.py", run_name="__main__")
"""

Schema = dict[str, dict[str, object]]


def all_models() -> list[type[Model]]:
    """Every table model defined anywhere under models/."""
    found: set[type[Model]] = set()
    for module_info in pkgutil.iter_modules(models.__path__):
        module = importlib.import_module(f"models.{module_info.name}")
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseModel) and value is not BaseModel:
                found.add(value)
    return sorted(found, key=lambda model: model._meta.table_name)


def migration_names() -> list[str]:
    return sorted(path.stem for path in MIGRATIONS.glob("[0-9]*.py"))


def describe(db: Database, tables: list[str]) -> Schema:
    """Columns (type, null, primary key), foreign keys and indexes of `tables`."""
    schema: Schema = {}
    for table in tables:
        columns = {
            column.name: (column.data_type.lower(), column.null, column.primary_key)
            for column in db.get_columns(table)
        }
        foreign_keys = sorted(
            (key.column, key.dest_table, key.dest_column, key.on_delete)
            for key in db.get_foreign_keys(table)
        )
        indexes = sorted(
            (tuple(index.columns), bool(index.unique))
            for index in db.get_indexes(table)
        )
        schema[table] = {
            "columns": columns,
            "foreign_keys": foreign_keys,
            "indexes": indexes,
        }
    return schema


def open_unhurried(url: str) -> Database:
    """The database at `url`, its statement timeout lifted on this thread's
    connection: Peewee reads foreign keys from information_schema, whose views
    slow down as the suite's schemas pile up on the server, and the service's
    timeout is not what these tests are about."""
    db = open_database(url)
    if isinstance(db, PostgresqlDatabase):
        db.execute_sql("SET statement_timeout = 0")  # type: ignore[no-untyped-call]
    return db


@pytest.fixture
def migrated_url(tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database; closed again after the test."""
    yield make_environ(tmp_path / "migrated")["USER_SERVICE_DATABASE_URL"]
    close_database()


def test_migrations_from_empty_leave_no_difference_to_the_models(
    migrated_url: str,
) -> None:
    db = open_unhurried(migrated_url)
    assert db.get_tables() == []
    migrate()
    difference = diff_models(db, all_models())
    assert not difference, f"migrated schema differs from the models:\n{difference}"


def test_migrated_columns_keys_and_indexes_equal_those_the_models_create(
    migrated_url: str, tmp_path: Path
) -> None:
    tables = [model._meta.table_name for model in all_models()]
    open_unhurried(make_environ(tmp_path / "models")["USER_SERVICE_DATABASE_URL"])
    database.create_tables(all_models())
    expected = describe(database.obj, tables)
    close_database()
    open_unhurried(migrated_url)
    migrate()
    assert describe(database.obj, tables) == expected


def test_migrate_applies_every_migration_once_and_nothing_the_second_time(
    migrated_url: str,
) -> None:
    db = open_unhurried(migrated_url)
    assert migrate() == migration_names()
    assert migrate() == []
    assert diff_models(db, all_models()).create_tables == []


def test_four_migrate_commands_at_once_all_succeed_and_apply_each_migration_once(
    tmp_path: Path,
) -> None:
    environ = make_environ(tmp_path)
    start_at = time.time() + START_DELAY
    migrators = [
        subprocess.Popen(
            [sys.executable, "-c", LAUNCHER, str(start_at)],
            cwd=APP_DIR,
            env=process_environ(environ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(MIGRATORS)
    ]
    outputs: list[tuple[int, str, str]] = []
    try:
        for migrator in migrators:
            stdout, stderr = migrator.communicate(timeout=CLI_SECONDS)
            outputs.append((migrator.returncode, stdout, stderr))
    finally:
        for migrator in migrators:
            if migrator.poll() is None:
                migrator.kill()
                migrator.wait()
    assert [code for code, _, _ in outputs] == [0] * MIGRATORS, outputs
    # "applied N migration(s): a, b" or "applied 0 migration(s): -"
    applied = Counter(
        name.strip()
        for _, stdout, _ in outputs
        for name in stdout.strip().splitlines()[-1].split(": ", 1)[1].split(",")
        if name.strip() != "-"
    )
    assert applied == Counter(migration_names()), outputs

    db = open_unhurried(environ["USER_SERVICE_DATABASE_URL"])
    try:
        history_table = Table(HISTORY_TABLE).bind(db)
        history = [row["name"] for row in history_table.select().order_by(SQL("name"))]
        assert history == migration_names()
        expected_tables = {model._meta.table_name for model in all_models()}
        assert set(db.get_tables()) == expected_tables | {HISTORY_TABLE}
        assert not diff_models(db, all_models())
    finally:
        close_database()


WAITING_FOR_THE_LOCK = (
    "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
)


@pytest.mark.skipif(not ON_POSTGRES, reason="PostgreSQL's statement timeout")
def test_migrate_outwaits_the_statement_timeout_behind_another_migration(
    tmp_path: Path,
) -> None:
    environ = make_environ(tmp_path, USER_SERVICE_DATABASE_TIMEOUT="1")
    url = environ["USER_SERVICE_DATABASE_URL"]
    with psycopg.connect(url, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_ID,))
        migrator = subprocess.Popen(
            [sys.executable, "server.py", "migrate"],
            cwd=APP_DIR,
            env=process_environ(environ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + CLI_SECONDS
            while not other.execute(WAITING_FOR_THE_LOCK).fetchone():
                assert migrator.poll() is None, migrator.communicate()
                assert time.monotonic() < deadline, "the migrator never waited"
                time.sleep(0.1)
            time.sleep(2.5)  # waiting, past its timeout of 1 s
            assert migrator.poll() is None, migrator.communicate()
        finally:
            other.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_ID,))
        stdout, stderr = migrator.communicate(timeout=CLI_SECONDS)
    assert migrator.returncode == 0, (stdout, stderr)
    last_line = stdout.strip().splitlines()[-1]
    assert last_line.startswith(f"applied {len(migration_names())} migration(s)")


# ---- 0007: email keys folded (NFKC + casefold) instead of lower-cased

# Two accounts each that lower() kept apart but folding makes one, and their
# other spellings. Ruff flags the letters as look-alikes (RUF001): the point here.
FINAL_SIGMA = "σας@x.io"
CAPITALS = "ΣΑΣ@x.io"
MEDIAL_SIGMA = "σασ@x.io"  # noqa: RUF001
MEDIAL_TITLE = "Σασ@x.io"
FULLWIDTH = "ａｄｍｉｎ@a.io"  # noqa: RUF001
FULLWIDTH_CAPITALS = "ＡＤＭＩＮ@a.io"  # noqa: RUF001
# 15 times U+FDFA, which NFKC unfolds into 18 characters each: too long a key.
UNFOLDABLE = "\ufdfa" * 15 + "@x.io"


def migrate_up_to(name: str) -> None:
    Runner(database.obj, directory=str(MIGRATIONS)).up(target=name)


def add_account(tenant: Tenant, email: str, password: str, *, age_days: int) -> None:
    """An account as the code before 0007 stored it: keyed by lower()."""
    born = utcnow() - timedelta(days=age_days)
    User.create(
        tenant=tenant,
        email=email,
        email_key=email.lower(),
        password_hash=hash_password(password, cost=4),
        created_at=born,
        updated_at=born,
    )


def logged_in_email(api: Api, email: str, password: str) -> str | None:
    result = api.login(email, password)
    return result.data["login"]["user"]["email"] if result.data else None


def collision_report(accounts: list[str]) -> str:
    return (
        f"tenant 'dev': accounts {', '.join(map(repr, accounts))} are one address"
        " now that emails are compared case-folded;"
        f" {accounts[0]!r} keeps it, and the others log in only with their own"
        " spellings. Change or remove the others."
    )


def test_accounts_one_under_folded_keys_are_reported_kept_and_still_log_in(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Accounts that lower() kept apart but folding makes one: the oldest takes
    the folded key, a later one keeps its own spellings, and the operator is
    told. Nothing is merged or dropped."""
    settings = Settings.from_env(make_environ(tmp_path))
    open_unhurried(settings.database_url)
    migrate_up_to("0006_email_tokens")
    dev = Tenant.create(name="dev")
    add_account(dev, FINAL_SIGMA, "Older-pw1!", age_days=2)
    add_account(dev, MEDIAL_SIGMA, "Later-pw1!", age_days=1)
    add_account(dev, "admin@a.io", "Older-pw1!", age_days=2)
    add_account(dev, FULLWIDTH, "Later-pw1!", age_days=1)
    add_account(dev, "ann@x.io", "Other-pw1!", age_days=1)
    add_account(dev, UNFOLDABLE, "Other-pw1!", age_days=1)
    caplog.set_level(logging.WARNING, logger="user_service.migrations")
    with TestClient(create_app(settings)) as client:  # migrates
        api = Api(client, settings.dev_api_key, settings)
        logins = {
            spelling: logged_in_email(api, spelling, password)
            for spelling, password in [
                (FINAL_SIGMA, "Older-pw1!"),
                (CAPITALS, "Older-pw1!"),
                (MEDIAL_SIGMA, "Later-pw1!"),
                (MEDIAL_TITLE, "Later-pw1!"),
                ("admin@a.io", "Older-pw1!"),
                ("ADMIN@a.io", "Older-pw1!"),
                (FULLWIDTH, "Later-pw1!"),
                (FULLWIDTH_CAPITALS, "Later-pw1!"),
                ("ann@x.io", "Other-pw1!"),
                (UNFOLDABLE, "Other-pw1!"),
            ]
        }
        taken = [api.sign_up(email).error_code for email in (CAPITALS, "Admin@a.io")]
    close_database()
    assert logins == {
        FINAL_SIGMA: FINAL_SIGMA,
        CAPITALS: FINAL_SIGMA,
        MEDIAL_SIGMA: MEDIAL_SIGMA,
        MEDIAL_TITLE: MEDIAL_SIGMA,
        "admin@a.io": "admin@a.io",
        "ADMIN@a.io": "admin@a.io",
        FULLWIDTH: FULLWIDTH,
        FULLWIDTH_CAPITALS: FULLWIDTH,
        "ann@x.io": "ann@x.io",
        UNFOLDABLE: UNFOLDABLE,
    }
    assert taken == ["EMAIL_TAKEN", "EMAIL_TAKEN"]
    reports = [
        (record.levelname, record.getMessage())
        for record in caplog.records
        if record.name == "user_service.migrations"
    ]
    assert sorted(reports) == sorted(
        [
            ("WARNING", collision_report([FINAL_SIGMA, MEDIAL_SIGMA])),
            ("WARNING", collision_report(["admin@a.io", FULLWIDTH])),
            (
                "WARNING",
                f"tenant 'dev': the folded email key of {UNFOLDABLE!r} is too long;"
                " they log in only with their own spellings. Change their addresses.",
            ),
        ]
    )


def test_folded_email_keys_go_back_to_lower_case_when_migrated_down(
    migrated_url: str,
) -> None:
    db = open_unhurried(migrated_url)
    migrate_up_to("0006_email_tokens")
    dev = Tenant.create(name="dev")
    add_account(dev, FINAL_SIGMA, "Older-pw1!", age_days=2)
    add_account(dev, MEDIAL_SIGMA, "Later-pw1!", age_days=1)
    add_account(dev, "Straße@x.io", "Other-pw1!", age_days=1)
    migrate()
    keys = sorted(user.email_key for user in User.select())
    assert keys == sorted(
        ["strasse@x.io", MEDIAL_SIGMA, MEDIAL_SIGMA.replace("@", " ")]
    )
    Runner(db, directory=str(MIGRATIONS)).down(target="0007_folded_email_keys")
    keys = sorted(user.email_key for user in User.select())
    assert keys == sorted(["straße@x.io", FINAL_SIGMA, MEDIAL_SIGMA])


# ---- 0008: audit events get a random public id


def test_existing_audit_events_get_distinct_random_ids_and_keep_their_order(
    tmp_path: Path,
) -> None:
    settings = Settings.from_env(make_environ(tmp_path))
    open_unhurried(settings.database_url)
    migrate_up_to("0007_folded_email_keys")
    dev = Tenant.create(name="dev")
    add_account(dev, "boss@x.io", "Boss-pw1!", age_days=1)
    User.update(role="ADMIN").execute()
    events = Table("audit_event", ("tenant_id", "at", "action", "detail"))
    for number in range(5):
        events.bind(database.obj).insert(
            tenant_id=as_db(Tenant.id, dev.id),
            at=utcnow(),
            action="LOGIN_FAILED",
            detail=str(number),
        ).execute()
    with TestClient(create_app(settings)) as client:  # migrates
        api = Api(client, settings.dev_api_key, settings)
        token = api.token("boss@x.io", "Boss-pw1!")
        walked = []
        after = None
        for _ in range(5):
            page = api.gql(
                "query($after: String) { auditLog(first: 1, after: $after, action:"
                ' "LOGIN_FAILED") { edges { node { id detail } }'
                " pageInfo { endCursor } } }",
                {"after": after},
                token=token,
            ).ok()["auditLog"]
            walked += [edge["node"] for edge in page["edges"]]
            after = page["pageInfo"]["endCursor"]
    close_database()
    assert [node["detail"] for node in walked] == ["4", "3", "2", "1", "0"]
    ids = {UUID(node["id"]) for node in walked}
    assert len(ids) == 5
