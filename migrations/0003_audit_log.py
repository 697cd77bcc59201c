"""The append-only audit log of security events."""

import uuid

from peewee import AutoField, CharField, DateTimeField, ForeignKeyField, Model, UUIDField


def up(migrator, db):
    class Tenant(Model):
        id = UUIDField(primary_key=True, default=uuid.uuid4)

        class Meta:
            database = db
            table_name = "tenant"

    class AuditEvent(Model):
        id = AutoField()
        tenant = ForeignKeyField(Tenant, on_delete="CASCADE")
        at = DateTimeField()
        action = CharField(max_length=40)
        actor_id = CharField(max_length=36, null=True)
        target_id = CharField(max_length=36, null=True)
        ip = CharField(max_length=64, null=True)
        user_agent = CharField(max_length=200, null=True)
        request_id = CharField(max_length=64, null=True)
        detail = CharField(max_length=200, null=True)

        class Meta:
            database = db
            table_name = "audit_event"
            indexes = ((("tenant", "id"), False), (("tenant", "action", "id"), False))

    db.create_tables([AuditEvent])


def down(migrator, db):
    db.execute_sql("DROP TABLE audit_event")
