"""Webhooks: the tenants' endpoints, the outbox of events and their deliveries."""

import uuid

from peewee import (
    AutoField,
    CharField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
    UUIDField,
)


def up(migrator, db):
    class Tenant(Model):
        id = UUIDField(primary_key=True, default=uuid.uuid4)

        class Meta:
            database = db
            table_name = "tenant"

    class WebhookEndpoint(Model):
        id = AutoField()
        tenant = ForeignKeyField(Tenant, on_delete="CASCADE")
        url = CharField(max_length=2000)
        event_types = TextField()
        sealed_secret = TextField()
        created_at = DateTimeField()

        class Meta:
            database = db
            table_name = "webhook_endpoint"

    class WebhookEvent(Model):
        id = AutoField()
        public_id = UUIDField(unique=True)
        tenant = ForeignKeyField(Tenant, on_delete="CASCADE")
        type = CharField(max_length=40)
        user_id = CharField(max_length=36, index=True)
        body = TextField()
        created_at = DateTimeField()

        class Meta:
            database = db
            table_name = "webhook_event"

    class WebhookDelivery(Model):
        id = AutoField()
        event = ForeignKeyField(WebhookEvent, on_delete="CASCADE")
        endpoint = ForeignKeyField(WebhookEndpoint, on_delete="CASCADE")
        user_id = CharField(max_length=36)
        attempts = IntegerField(default=0)
        next_attempt_at = DateTimeField(null=True, index=True)
        lease_until = DateTimeField(null=True)
        claimed_by = CharField(max_length=36, null=True)
        delivered_at = DateTimeField(null=True)
        last_status = CharField(max_length=40, null=True)

        class Meta:
            database = db
            table_name = "webhook_delivery"
            indexes = ((("endpoint", "user_id", "event"), False),)

    db.create_tables([WebhookEndpoint, WebhookEvent, WebhookDelivery])


def down(migrator, db):
    for table in ("webhook_delivery", "webhook_event", "webhook_endpoint"):
        db.execute_sql(f"DROP TABLE {table}")
