"""Passkeys (WebAuthn): each tenant's relying party, the accounts' credentials,
and the single-use challenges of registrations and logins."""

import uuid

from peewee import (
    BigIntegerField,
    CharField,
    DateTimeField,
    ForeignKeyField,
    Model,
    TextField,
    UUIDField,
)


def up(migrator, db):
    migrator.migrate(
        migrator.add_column(
            "tenant", "webauthn_rp_id", CharField(max_length=253, null=True)
        ),
        migrator.add_column("tenant", "webauthn_origins", TextField(null=True)),
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

    class Passkey(Model):
        id = UUIDField(primary_key=True, default=uuid.uuid4)
        tenant = ForeignKeyField(Tenant, on_delete="CASCADE")
        user = ForeignKeyField(User, on_delete="CASCADE")
        credential_id = CharField(max_length=1400)
        public_key = TextField()
        sign_count = BigIntegerField(default=0)
        transports = CharField(max_length=200, null=True)
        name = CharField(max_length=100, null=True)
        created_at = DateTimeField()
        last_used_at = DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "passkey"
            indexes = ((("tenant", "credential_id"), True),)

    class PasskeyChallenge(Model):
        id = UUIDField(primary_key=True, default=uuid.uuid4)
        tenant = ForeignKeyField(Tenant, on_delete="CASCADE")
        user = ForeignKeyField(User, on_delete="CASCADE", null=True)
        account = TextField(null=True)
        purpose = CharField(max_length=10)
        challenge = CharField(max_length=100)
        expires_at = DateTimeField(index=True)
        used_at = DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "passkey_challenge"

    db.create_tables([Passkey, PasskeyChallenge])


def down(migrator, db):
    db.execute_sql("DROP TABLE passkey_challenge")
    db.execute_sql("DROP TABLE passkey")
    migrator.migrate(
        migrator.drop_column("tenant", "webauthn_origins"),
        migrator.drop_column("tenant", "webauthn_rp_id"),
    )
