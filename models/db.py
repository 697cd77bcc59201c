"""The database binding: one `DatabaseProxy` that `open_database` fills from a URL.

Tables bind to `database` at import; nothing connects until `open_database`.
"""

import contextlib
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast

import psycopg
from peewee import (
    Database,
    DatabaseProxy,
    Field,
    InterfaceError,
    Model,
    OperationalError,
    PostgresqlDatabase,
    SqliteDatabase,
)
from playhouse import db_url
from playhouse.migrations import Migration, Runner
from playhouse.pool import PooledPostgresqlDatabase

from models.files import make_sqlite_files_private

database = DatabaseProxy()
MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
SQLITE_PRAGMAS: dict[str, object] = {
    "foreign_keys": 1,
    # With WAL, NORMAL survives a crashed process; only a power cut may lose
    # the last commits.
    "synchronous": "normal",
    # A deleted account's values are overwritten, not left in free space.
    "secure_delete": 1,
}
SQLITE_UNAVAILABLE = (
    "database is locked",
    "unable to open database",
    "disk i/o error",
    "interrupted",  # a statement stopped at the deadline
)
# Any number: it only has to be the same for every process that migrates.
MIGRATION_LOCK_ID = 7_301_001
# A deadline all the same: a frozen server never hangs `migrate` or a start.
MIGRATION_TIMEOUT = "30min"


class BaseModel(Model):
    class Meta:
        database = database
        legacy_table_names = False

    def stamp_once(self, column: str) -> bool:
        """Set an empty timestamp column to now; False if it was set already.

        One guarded UPDATE: of two racing requests, exactly one wins. This is
        how tokens are spent, retired and revoked at most once.
        """
        model = type(self)
        field = model._meta.fields[column]
        query = model.update({field: utcnow()}).where(
            (model._meta.primary_key == self.get_id())  # type: ignore[no-untyped-call]
            & field.is_null()
        )
        return bool(query.execute())


M = TypeVar("M", bound=Model)


def fetch_row(sql: str, *params: object) -> tuple[Any, ...] | None:
    """One row from hand-written SQL, where `{p}` marks a parameter.

    For the queries every request makes: Peewee compiles a query anew on each
    call (over a hundred nested calls), and builds models from rows through as
    many more; that was most of the time of `me`. Parameters must already be in
    database form (`as_db`); `model_from` turns the row's columns into a model.
    """
    cursor = database.execute_sql(sql.replace("{p}", database.param), params)
    try:
        return cast(tuple[Any, ...] | None, cursor.fetchone())
    finally:
        cursor.close()


def columns_of(model: type[Model]) -> str:
    """The model's columns, in `model_from`'s order, for a SELECT list."""
    table = model._meta.table_name
    return ", ".join(f'"{table}".{f.column_name}' for f in model._meta.sorted_fields)


def model_from(model: type[M], values: Sequence[object]) -> M:
    """A model from the values of `columns_of(model)`, as Peewee would make it."""
    instance = model(__no_default__=True)
    instance.__data__ = {
        field.name: None if value is None else field.python_value(value)
        for field, value in zip(model._meta.sorted_fields, values, strict=True)
    }
    return instance


def as_db(field: Field, value: object) -> object:
    """`value` as `field` stores it, for hand-written SQL's parameters."""
    return field.db_value(value)  # type: ignore[no-untyped-call]


def utcnow() -> datetime:
    """Now in UTC, naive: how every timestamp is stored, on SQLite and PostgreSQL."""
    return datetime.now(UTC).replace(tzinfo=None)


def open_database(url: str, *, timeout: int = 5, connections: int = 10) -> Database:
    """Bind the models to the database at `url` and connect.

    `timeout` bounds, in seconds, how long PostgreSQL may take to connect or to
    run one statement, and how long SQLite waits for another writer; and how
    long a thread waits for one of the pool's `connections` to come free.
    Opening the database already bound keeps it: connections of other threads
    stay valid.
    """
    if getattr(database.obj, "opened_with", None) == (url, timeout, connections):
        database.connect(reuse_if_open=True)
        return cast(Database, database.obj)
    pool = {"max_connections": connections, "timeout": timeout, "stale_timeout": 600}
    if url.startswith("sqlite"):
        make_sqlite_files_private(url)  # the file 0600, a folder it makes 0700
        # Several processes may share one file: wait for a writer, then give up.
        pragmas = {**SQLITE_PRAGMAS, "busy_timeout": timeout * 1000}
        # A pooled connection serves whichever thread checks it out next.
        db = db_url.connect(
            _pooled(url), pragmas=pragmas, check_same_thread=False, **pool
        )
        _use_wal(db, timeout)
    elif url.startswith("postgres"):
        given = db_url.parse(url)
        db = PooledPostgres(**{**given, **_postgres_timeouts(url, timeout), **pool})
    else:
        db = db_url.connect(url)
    db.opened_with = (url, timeout, connections)
    if hasattr(database.obj, "close_idle"):  # another database before: let it go
        database.obj.close_idle()
    database.initialize(db)
    db.connect(reuse_if_open=True)
    return cast(Database, db)


class PooledPostgres(PooledPostgresqlDatabase):  # type: ignore[misc]
    def _is_closed(self, conn: psycopg.Connection[object]) -> bool:
        # Peewee's own check sends "SELECT 1" at every check-out while it holds
        # the pool's lock: a round trip per check-out, one thread at a time, and
        # a frozen server would hold them all. A dead connection shows on use.
        return conn.closed or conn.pgconn.status != psycopg.pq.ConnStatus.OK


def _pooled(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return url if scheme.endswith("+pool") else f"{scheme}+pool://{rest}"


def _use_wal(db: Database, timeout: int) -> None:
    """Switch the file to WAL, which then stays on for every later connection.

    The switch needs the file to itself, and SQLite refuses it at once, without
    waiting out the busy timeout, while another process holds any lock (as when
    several processes open a new file together): try again until `timeout`.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            db.execute_sql("PRAGMA journal_mode = wal")  # type: ignore[no-untyped-call]
            return
        except OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                db.close()
                raise
            time.sleep(0.02)


def _postgres_timeouts(url: str, timeout: int) -> dict[str, object]:
    given = db_url.parse(url)
    statement_timeout = f"-c statement_timeout={timeout * 1000}"
    options = f"{given.get('options', '')} {statement_timeout}".strip()
    return {
        "connect_timeout": given.get("connect_timeout", timeout),
        "options": options,
        # A connection whose peer vanished without closing it fails too.
        "tcp_user_timeout": given.get("tcp_user_timeout", timeout * 1000),
    }


def close_database() -> None:
    """Close this thread's connection (not back into the pool: whoever calls
    this is done with the database, or its connection is suspect)."""
    if database.obj is not None and not database.is_closed():
        getattr(database.obj, "manual_close", database.close)()


def close_all_connections() -> None:
    """Close every connection of the pool: only once no thread uses one."""
    if hasattr(database.obj, "close_all"):
        database.obj.close_all()
    else:
        close_database()


def close_idle_connections() -> None:
    """Close this thread's connection and every one resting in the pool."""
    close_database()
    if hasattr(database.obj, "close_idle"):
        database.obj.close_idle()


def migrate() -> list[str]:
    """Apply pending migrations; safe when several processes start at once.

    On PostgreSQL their statements may take up to MIGRATION_TIMEOUT, not the
    requests' few seconds: a migration may rightly take longer (an index built
    over a large table, or the catalog reads of Peewee's migrator on a server
    with many schemas), and so may the wait for another process's migration."""
    with _migration_lock():
        applied: list[str] = Runner(database.obj, directory=str(MIGRATIONS)).up()
        return applied


def migration_status() -> list[Migration]:
    """Every migration this release has or the database applied, in order:
    `applied` is None while pending, `path` None for one this release lacks."""
    status: list[Migration] = Runner(database.obj, directory=str(MIGRATIONS)).status()
    return status


@contextlib.contextmanager
def _migration_lock() -> Iterator[None]:
    db = database.obj
    if isinstance(db, SqliteDatabase):
        # BEGIN IMMEDIATE takes SQLite's write lock: other migrators wait.
        with db.atomic("IMMEDIATE"):
            yield
    elif isinstance(db, PostgresqlDatabase):
        with db.atomic():
            db.execute_sql(  # type: ignore[no-untyped-call]
                f"SET LOCAL statement_timeout = '{MIGRATION_TIMEOUT}'"
            )
            db.execute_sql(  # type: ignore[no-untyped-call]
                "SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_ID,)
            )
            yield
    else:
        yield


def is_unavailable(error: BaseException) -> bool:
    """Whether a database error means "not reachable now" rather than a bug.

    PostgreSQL: the driver's OperationalError (connection refused, lost, timed
    out). SQLite: the file is locked past the busy timeout or cannot be opened.
    """
    if not isinstance(error, OperationalError | InterfaceError):
        return False
    # Peewee wraps twice when it reconnects inside a query: find the driver's.
    cause: BaseException | None = error
    while isinstance(cause, OperationalError | InterfaceError):
        cause = cause.__cause__ or cause.__context__
    if cause is not None and type(cause).__module__.startswith("psycopg"):
        return isinstance(cause, psycopg.OperationalError | psycopg.InterfaceError)
    message = str(error).lower()
    return any(sign in message for sign in SQLITE_UNAVAILABLE)


def ping() -> None:
    """A trivial query: what /readyz waits on."""
    database.execute_sql("SELECT 1")
