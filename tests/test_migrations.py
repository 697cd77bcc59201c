"""The migration files build the schema from empty, on whichever database the suite
runs on (SQLite by default, PostgreSQL with USER_SERVICE_TEST_DATABASE=postgresql),
and what they build is what the models describe. `python server.py migrate` is safe
to run from several hosts at the same moment."""

import importlib
import inspect
import pkgutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from peewee import SQL, Database, Model, Table
from playhouse.schema_diff import diff_models

import models
from models.db import (
    MIGRATIONS,
    BaseModel,
    close_database,
    database,
    migrate,
    open_database,
)
from tests.conftest import make_environ
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


@pytest.fixture
def migrated_url(tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database; closed again after the test."""
    yield make_environ(tmp_path / "migrated")["USER_SERVICE_DATABASE_URL"]
    close_database()


def test_migrations_from_empty_leave_no_difference_to_the_models(
    migrated_url: str,
) -> None:
    db = open_database(migrated_url)
    assert db.get_tables() == []
    migrate()
    difference = diff_models(db, all_models())
    assert not difference, f"migrated schema differs from the models:\n{difference}"


def test_migrated_columns_keys_and_indexes_equal_those_the_models_create(
    migrated_url: str, tmp_path: Path
) -> None:
    tables = [model._meta.table_name for model in all_models()]
    open_database(make_environ(tmp_path / "models")["USER_SERVICE_DATABASE_URL"])
    database.create_tables(all_models())
    expected = describe(database.obj, tables)
    close_database()
    open_database(migrated_url)
    migrate()
    assert describe(database.obj, tables) == expected


def test_migrate_applies_every_migration_once_and_nothing_the_second_time(
    migrated_url: str,
) -> None:
    db = open_database(migrated_url)
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

    db = open_database(environ["USER_SERVICE_DATABASE_URL"])
    try:
        history_table = Table(HISTORY_TABLE).bind(db)
        history = [row["name"] for row in history_table.select().order_by(SQL("name"))]
        assert history == migration_names()
        expected_tables = {model._meta.table_name for model in all_models()}
        assert set(db.get_tables()) == expected_tables | {HISTORY_TABLE}
        assert not diff_models(db, all_models())
    finally:
        close_database()
