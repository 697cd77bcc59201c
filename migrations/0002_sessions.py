"""Sessions (login families) and their refresh tokens."""

import uuid

from peewee import CharField, DateTimeField, ForeignKeyField, Model, UUIDField


def up(migrator, db):
    class Stub(Model):
        id = UUIDField(primary_key=True)

        class Meta:
            database = db

    class Tenant(Stub):
        class Meta:
            table_name = "tenant"

    class User(Stub):
        class Meta:
            table_name = "user"

    class Session(Model):
        id = UUIDField(primary_key=True, default=uuid.uuid4)
        tenant = ForeignKeyField(Tenant, on_delete="CASCADE")
        user = ForeignKeyField(User, on_delete="CASCADE")
        created_at = DateTimeField()
        last_used_at = DateTimeField()
        expires_at = DateTimeField(index=True)
        revoked_at = DateTimeField(null=True)
        user_agent = CharField(max_length=200, null=True)
        ip = CharField(max_length=64, null=True)

        class Meta:
            database = db
            table_name = "session"

    class RefreshToken(Model):
        digest = CharField(max_length=64, unique=True)
        session = ForeignKeyField(Session, on_delete="CASCADE")
        created_at = DateTimeField()
        expires_at = DateTimeField()
        retired_at = DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "refresh_token"

    db.create_tables([Session, RefreshToken])


def down(migrator, db):
    db.execute_sql("DROP TABLE refresh_token")
    db.execute_sql("DROP TABLE session")
