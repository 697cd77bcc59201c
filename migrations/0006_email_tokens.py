"""Email verification state and the single-use tokens sent by mail."""

import uuid

from peewee import (
    AutoField,
    BooleanField,
    CharField,
    DateTimeField,
    ForeignKeyField,
    Model,
    UUIDField,
)


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("user", "email_verified", BooleanField(default=False))
    )

    class Stub(Model):
        id = UUIDField(primary_key=True, default=uuid.uuid4)

        class Meta:
            database = db

    class Tenant(Stub):
        class Meta:
            table_name = "tenant"

    class User(Stub):
        class Meta:
            table_name = "user"

    class EmailToken(Model):
        id = AutoField()
        digest = CharField(max_length=64, unique=True)
        tenant = ForeignKeyField(Tenant, on_delete="CASCADE")
        user = ForeignKeyField(User, on_delete="CASCADE")
        purpose = CharField(max_length=10)
        expires_at = DateTimeField()
        used_at = DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "email_token"

    db.create_tables([EmailToken])


def down(migrator, db):
    db.execute_sql("DROP TABLE email_token")
    migrator.migrate(migrator.drop_column("user", "email_verified"))
