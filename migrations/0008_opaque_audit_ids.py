"""Audit events get a random public id (a UUID): what clients see as the event's
id and what auditLog cursors name. The autoincrement id, shared by every tenant,
stays the log's order but no longer leaves the service: its gaps told a tenant
how busy the others were.

Existing events get a random public id each, made by the database in one
statement (PostgreSQL's gen_random_uuid(), SQLite's randomblob()). Cursors
handed out before this migration stop working: a client that pages with one
gets BAD_USER_INPUT and starts again from the first page.
"""

import uuid

from peewee import PostgresqlDatabase, SqliteDatabase, Table, UUIDField


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("audit_event", "public_id", UUIDField(null=True))
    )
    _fill_public_ids(db)
    migrator.migrate(
        migrator.add_not_null("audit_event", "public_id"),
        migrator.add_index("audit_event", ("public_id",), unique=True),
    )


def down(migrator, db):
    migrator.migrate(
        migrator.drop_index("audit_event", "audit_event_public_id"),
        migrator.drop_column("audit_event", "public_id"),
    )


def _fill_public_ids(db):
    if isinstance(db, PostgresqlDatabase):
        db.execute_sql("UPDATE audit_event SET public_id = gen_random_uuid()")
    elif isinstance(db, SqliteDatabase):
        # Peewee keeps a UUID on SQLite as 32 hex digits.
        db.execute_sql(
            "UPDATE audit_event SET public_id = lower(hex(randomblob(16)))"
        )
    else:
        events = Table("audit_event", ("id", "public_id")).bind(db)
        for (event_id,) in list(events.select(events.id).tuples()):
            public_id = uuid.uuid4().hex
            events.update(public_id=public_id).where(events.id == event_id).execute()
