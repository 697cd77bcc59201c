"""Sign-in through a tenant's own OpenID Connect provider: the providers an
operator registered, the pending logins (state, PKCE verifier, nonce) and the
identities linked to accounts. An account made by an external sign-up has no
password: its `password_hash` is the empty string, which no password matches."""

import uuid

from peewee import (
    AutoField,
    BooleanField,
    CharField,
    DateTimeField,
    ForeignKeyField,
    Model,
    TextField,
    UUIDField,
)


def up(migrator, db):
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

    class IdentityProvider(Model):
        id = UUIDField(primary_key=True, default=uuid.uuid4)
        tenant = ForeignKeyField(Tenant, on_delete="CASCADE")
        name = CharField(max_length=64)
        issuer = CharField(max_length=500)
        client_id = CharField(max_length=500)
        sealed_client_secret = TextField(null=True)
        redirect_uris = TextField()
        allow_sign_up = BooleanField(default=False)
        created_at = DateTimeField()

        class Meta:
            database = db
            table_name = "identity_provider"
            indexes = ((("tenant", "name"), True),)

    class LoginState(Model):
        id = AutoField()
        digest = CharField(max_length=64, unique=True)
        tenant = ForeignKeyField(Tenant, on_delete="CASCADE")
        provider = ForeignKeyField(IdentityProvider, on_delete="CASCADE")
        redirect_uri = CharField(max_length=2000)
        code_verifier = CharField(max_length=128)
        nonce = CharField(max_length=128)
        link_user = ForeignKeyField(User, null=True, on_delete="CASCADE")
        expires_at = DateTimeField()

        class Meta:
            database = db
            table_name = "login_state"

    class ExternalIdentity(Model):
        id = AutoField()
        user = ForeignKeyField(User, on_delete="CASCADE")
        provider = ForeignKeyField(IdentityProvider, on_delete="CASCADE")
        subject = CharField(max_length=255)
        email = CharField(max_length=254, null=True)
        linked_at = DateTimeField()

        class Meta:
            database = db
            table_name = "external_identity"
            indexes = (
                (("provider", "subject"), True),
                (("user", "provider"), True),
            )

    db.create_tables([IdentityProvider, LoginState, ExternalIdentity])


def down(migrator, db):
    for table in ("external_identity", "login_state", "identity_provider"):
        db.execute_sql(f"DROP TABLE {table}")
