"""Tenants, their API keys, and users (unique per tenant and lower-cased email)."""

import datetime
import uuid

from peewee import CharField, DateTimeField, ForeignKeyField, Model, UUIDField


def up(migrator, db):
    class Tenant(Model):
        id = UUIDField(primary_key=True, default=uuid.uuid4)
        name = CharField(max_length=100, unique=True)
        created_at = DateTimeField(default=datetime.datetime.now)

        class Meta:
            database = db
            table_name = "tenant"

    class ApiKey(Model):
        tenant = ForeignKeyField(Tenant, on_delete="CASCADE")
        digest = CharField(max_length=64, unique=True)
        prefix = CharField(max_length=16)
        created_at = DateTimeField()
        revoked_at = DateTimeField(null=True)
        last_used_at = DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "api_key"

    class User(Model):
        id = UUIDField(primary_key=True)
        tenant = ForeignKeyField(Tenant, on_delete="CASCADE")
        email = CharField(max_length=254)
        email_key = CharField(max_length=254)
        password_hash = CharField(max_length=100)
        role = CharField(max_length=10, default="USER")
        city = CharField(max_length=100, null=True)
        organization = CharField(max_length=100, null=True)
        designation = CharField(max_length=100, null=True)
        mobile = CharField(max_length=16, null=True)
        created_at = DateTimeField()
        updated_at = DateTimeField()

        class Meta:
            database = db
            table_name = "user"
            indexes = ((("tenant", "email_key"), True),)

    db.create_tables([Tenant, ApiKey, User])


def down(migrator, db):
    db.execute_sql('DROP TABLE "user"')
    db.execute_sql("DROP TABLE api_key")
    db.execute_sql("DROP TABLE tenant")
