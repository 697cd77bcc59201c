"""Two-factor authentication: sealed TOTP secrets, recovery codes, MFA challenges."""

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
    migrator.migrate(
        migrator.add_column("user", "totp_secret", TextField(null=True)),
        migrator.add_column("user", "totp_pending", TextField(null=True)),
        migrator.add_column("user", "totp_last_step", IntegerField(null=True)),
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

    class RecoveryCode(Model):
        id = AutoField()
        user = ForeignKeyField(User, on_delete="CASCADE")
        digest = CharField(max_length=64)
        used_at = DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "recovery_code"
            indexes = ((("user", "digest"), True),)

    class MfaChallenge(Model):
        id = AutoField()
        digest = CharField(max_length=64, unique=True)
        tenant = ForeignKeyField(Tenant, on_delete="CASCADE")
        user = ForeignKeyField(User, on_delete="CASCADE")
        expires_at = DateTimeField()
        used_at = DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "mfa_challenge"

    db.create_tables([RecoveryCode, MfaChallenge])


def down(migrator, db):
    db.execute_sql("DROP TABLE mfa_challenge")
    db.execute_sql("DROP TABLE recovery_code")
    migrator.migrate(
        migrator.drop_column("user", "totp_last_step"),
        migrator.drop_column("user", "totp_pending"),
        migrator.drop_column("user", "totp_secret"),
    )
