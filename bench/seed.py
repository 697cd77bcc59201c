"""Set-up: the seeded databases (SQLite files, a fresh PostgreSQL database) and
the in-process bcrypt timing that gives the bcrypt limit."""

import contextlib
import re
import secrets
import time
import urllib.parse
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from bench.plan import EMAIL, PASSWORD, BenchError, Database, say


def seed(database: Database, password_hash: str) -> None:
    """Migrate, add tenant 'bench' with a key, and bulk-insert the users.

    One bcrypt hash serves every account; inserts go in batches through Peewee's
    insert_many, inside transactions, with synchronous=OFF on this connection
    (SQLite).
    """
    from auth.api_keys import new_api_key, shown_prefix
    from auth.opaque import digest
    from models import ApiKey, Tenant, User
    from models.db import close_idle_connections, migrate, open_database
    from models.db import database as proxy

    started = time.perf_counter()
    open_database(database.url)
    sqlite = database.engine == "SQLite"
    try:
        migrate()
        db = proxy.obj
        if sqlite:
            db.execute_sql("PRAGMA synchronous=OFF")  # seeding only: this connection
            db.execute_sql("PRAGMA cache_size=-262144")
        tenant = Tenant.add("bench")
        database.api_key = new_api_key()
        ApiKey.create(
            tenant=tenant,
            digest=digest(database.api_key),
            prefix=shown_prefix(database.api_key),
        )
        fields = [
            User.id,
            User.tenant,
            User.email,
            User.email_key,
            User.password_hash,
            User.role,
            User.created_at,
            User.updated_at,
        ]
        now = datetime.now(UTC).replace(tzinfo=None)
        tenant_id = tenant.id.hex

        def rows(first: int, stop: int) -> list[tuple[Any, ...]]:
            return [
                (uuid4().hex, tenant_id, e, e, password_hash, "USER", now, now)
                for e in (EMAIL.format(i) for i in range(first, stop))
            ]

        # SQLite allows 32766 bound values per statement; defaults add columns.
        batch = max(1, 30000 // len(User._meta.sorted_fields))
        per_transaction = batch * 40
        for start in range(0, database.users, per_transaction):
            stop = min(start + per_transaction, database.users)
            with db.atomic():
                bulk_insert(User, fields, rows, start, stop, batch)
        if sqlite:
            db.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            db.execute_sql("PRAGMA synchronous=NORMAL")
        else:
            db.execute_sql("ANALYZE")  # plans from statistics, not from autovacuum
    finally:
        close_idle_connections()
    database.seconds = time.perf_counter() - started


def bulk_insert(
    model: Any,
    fields: list[Any],
    rows: Callable[[int, int], list[tuple[Any, ...]]],
    start: int,
    stop: int,
    batch: int,
) -> None:
    """Insert rows start..stop in batches with Peewee's insert_many.

    Peewee builds the statement of the first full batch (columns, defaults,
    placeholders); later full batches reuse its text with their own values,
    converted by the same fields' db_value. That is what insert_many does, minus
    rebuilding a SQL node per value (twice as fast for a million rows). When the
    values would differ from Peewee's own (a callable default), every batch
    goes through insert_many as is.
    """
    template: str | None = None
    flatten: Callable[[list[tuple[Any, ...]]], list[Any]] | None = None
    for first in range(start, stop, batch):
        chunk = rows(first, min(first + batch, stop))
        if template is not None and flatten is not None and len(chunk) == batch:
            model._meta.database.execute_sql(template, flatten(chunk))
            continue
        query = model.insert_many(chunk, fields=fields)
        if template is None and len(chunk) == batch:
            sql, params = query.sql()
            candidate = flattener(model, fields, sql)
            if candidate is not None and candidate(chunk) == list(params):
                template, flatten = sql, candidate
        query.execute()


def flattener(
    model: Any, fields: list[Any], sql: str
) -> Callable[[list[tuple[Any, ...]]], list[Any]] | None:
    """The parameters Peewee binds for rows, in the statement's column order."""
    match = re.match(r'INSERT INTO "?\w+"? \((.*?)\) VALUES', sql)
    if match is None:
        return None
    by_column = {f.column_name: f for f in model._meta.sorted_fields}
    given = {f.column_name: i for i, f in enumerate(fields)}
    plan: list[tuple[int | None, Callable[[Any], Any], Any]] = []
    for name in (c.strip().strip('"') for c in match.group(1).split(",")):
        field = by_column.get(name)
        if field is None:
            return None
        if name in given:
            plan.append((given[name], field.db_value, None))
        elif field in model._meta.defaults:
            default = model._meta.defaults[field]
            if callable(default):
                return None
            plan.append((None, field.db_value, default))
        elif field.null:
            plan.append((None, field.db_value, None))
        else:
            return None

    def flatten(chunk: list[tuple[Any, ...]]) -> list[Any]:
        values: list[Any] = []
        for row in chunk:
            values.extend(
                convert(row[i] if i is not None else default)
                for i, convert, default in plan
            )
        return values

    return flatten


def bcrypt_seconds(password_hash: str, samples: int) -> list[float]:
    """Time one bcrypt check at the configured cost, in this process."""
    from auth.passwords import password_matches

    times = []
    for _ in range(samples):
        started = time.perf_counter()
        if not password_matches(PASSWORD, password_hash):
            raise BenchError("the pre-computed hash does not match its password")
        times.append(time.perf_counter() - started)
    return times


def bcrypt_rate(password_hash: str, threads: int, checks: int) -> float:
    """Checks per second with `threads` checks at a time, in this process (bcrypt
    releases the GIL): the most logins the machine can verify at this moment.
    Taken right before the login runs, it shares their machine state (other
    load, clock speed after minutes of full load), unlike one timed at the start.
    """
    from auth.passwords import password_matches

    def check() -> None:
        for _ in range(checks):
            password_matches(PASSWORD, password_hash)

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(check) for _ in range(threads)]:
            future.result()
    return threads * checks / (time.perf_counter() - started)


@contextlib.contextmanager
def postgres_database(server_url: str) -> Iterator[str]:
    """The URL of a new database on the PostgreSQL server at `server_url`, which
    is dropped at the end (with its connections)."""
    import psycopg
    from psycopg import sql

    name = f"bench_{secrets.token_hex(6)}"

    def execute(statement: sql.SQL) -> None:
        with psycopg.connect(server_url, autocommit=True, connect_timeout=5) as admin:
            admin.execute(statement.format(sql.Identifier(name)))

    try:
        execute(sql.SQL("CREATE DATABASE {}"))
    except psycopg.Error as error:
        raise BenchError(f"cannot make a database at {server_url}: {error}") from None
    try:
        yield urllib.parse.urlsplit(server_url)._replace(path=f"/{name}").geturl()
    finally:
        try:
            execute(sql.SQL("DROP DATABASE {} WITH (FORCE)"))
        except psycopg.Error as error:
            say(f"could not drop the database {name}: {error}")
