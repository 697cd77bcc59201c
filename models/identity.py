"""Sign-in through a tenant's OpenID Connect provider: the providers, the
logins under way (single use, 10 minutes) and the identities linked to accounts.

A login's state is stored as a SHA-256 digest only, and taken with one DELETE:
of two requests completing one login at once, exactly one gets it.
"""

import json
from datetime import timedelta
from typing import Self
from uuid import UUID, uuid4

from peewee import (
    AutoField,
    BooleanField,
    CharField,
    DateTimeField,
    ForeignKeyField,
    IntegrityError,
    TextField,
    UUIDField,
)

from models.db import BaseModel, database, utcnow
from models.passkey import Passkey
from models.tenant import Tenant
from models.user import User, lock_account

STATE_TTL = timedelta(minutes=10)


class ProviderExists(Exception):
    """The tenant has a provider of this name already."""


class AlreadyLinked(Exception):
    """The identity, or an identity of this provider, is linked already."""


class LastWayIn(Exception):
    """The account has no password, and this was its last external identity
    or passkey."""


class IdentityProvider(BaseModel):
    id = UUIDField(primary_key=True, default=uuid4)
    tenant = ForeignKeyField(Tenant, on_delete="CASCADE")
    name = CharField(max_length=64)
    issuer = CharField(max_length=500)
    client_id = CharField(max_length=500)
    # Sealed with the data key; null for a public client (PKCE only).
    sealed_client_secret = TextField(null=True)
    # A JSON list: redirectUri must be one of them, exactly.
    redirect_uris = TextField()
    allow_sign_up = BooleanField(default=False)
    created_at = DateTimeField(default=utcnow)
    tenant_id: UUID

    class Meta:
        indexes = ((("tenant", "name"), True),)

    @property
    def redirect_uri_list(self) -> list[str]:
        return list(json.loads(self.redirect_uris))

    @classmethod
    def add(
        cls,
        tenant: Tenant,
        *,
        name: str,
        issuer: str,
        client_id: str,
        sealed_client_secret: str | None,
        redirect_uris: list[str],
        allow_sign_up: bool,
    ) -> Self:
        try:
            with database.atomic():
                return cls.create(
                    tenant=tenant,
                    name=name,
                    issuer=issuer,
                    client_id=client_id,
                    sealed_client_secret=sealed_client_secret,
                    redirect_uris=json.dumps(redirect_uris),
                    allow_sign_up=allow_sign_up,
                )
        except IntegrityError:
            raise ProviderExists(name) from None

    @classmethod
    def of_tenant(cls, tenant: Tenant | UUID) -> list[Self]:
        return list(cls.select().where(cls.tenant == tenant).order_by(cls.name))

    @classmethod
    def in_tenant(cls, tenant: Tenant | UUID, provider_id: str) -> Self | None:
        """The tenant's provider with this id; None for another tenant's or junk."""
        try:
            wanted = UUID(provider_id)
        except ValueError:
            return None
        return cls.get_or_none((cls.tenant == tenant) & (cls.id == wanted))

    @classmethod
    def remove(
        cls, provider_id: str, *, tenant: Tenant | UUID | None = None
    ) -> Self | None:
        """Delete a provider (its logins and links go with it), of `tenant` only
        when given; None if unknown (or another tenant's)."""
        try:
            wanted = UUID(provider_id)
        except ValueError:
            return None
        query = cls.select().where(cls.id == wanted)
        if tenant is not None:
            query = query.where(cls.tenant == tenant)
        with database.atomic():
            provider = query.get_or_none()
            if provider is not None:
                provider.delete_instance()
        return provider


class LoginState(BaseModel):
    id = AutoField()
    digest = CharField(max_length=64, unique=True)
    tenant = ForeignKeyField(Tenant, on_delete="CASCADE")
    provider = ForeignKeyField(IdentityProvider, on_delete="CASCADE")
    redirect_uri = CharField(max_length=2000)
    code_verifier = CharField(max_length=128)
    nonce = CharField(max_length=128)
    # Set by startExternalLink: the account the identity is to be linked to.
    link_user = ForeignKeyField(User, null=True, on_delete="CASCADE")
    expires_at = DateTimeField()
    provider_id: UUID
    link_user_id: UUID | None

    @classmethod
    def open(
        cls,
        provider: IdentityProvider,
        *,
        digest: str,
        redirect_uri: str,
        code_verifier: str,
        nonce: str,
        link_user: User | None,
    ) -> Self:
        with database.atomic():
            cls.delete().where(cls.expires_at < utcnow()).execute()
            return cls.create(
                digest=digest,
                tenant=provider.tenant_id,
                provider=provider,
                redirect_uri=redirect_uri,
                code_verifier=code_verifier,
                nonce=nonce,
                link_user=link_user,
                expires_at=utcnow() + STATE_TTL,
            )

    @classmethod
    def take(cls, tenant: Tenant | UUID, digest: str) -> Self | None:
        """The tenant's live login with this state digest, used up by this call.

        The DELETE decides: of racing requests only one deletes the row. A
        state of another tenant is neither found nor used up.
        """
        state = cls.get_or_none(
            (cls.digest == digest)
            & (cls.tenant == tenant)
            & (cls.expires_at > utcnow())
        )
        if state is None:
            return None
        taken = cls.delete().where(cls.id == state.id).execute()
        return state if taken else None


class ExternalIdentity(BaseModel):
    id = AutoField()
    user = ForeignKeyField(User, on_delete="CASCADE")
    provider = ForeignKeyField(IdentityProvider, on_delete="CASCADE")
    subject = CharField(max_length=255)
    email = CharField(max_length=254, null=True)
    linked_at = DateTimeField(default=utcnow)
    user_id: UUID
    provider_id: UUID

    class Meta:
        indexes = ((("provider", "subject"), True), (("user", "provider"), True))

    @classmethod
    def find(cls, provider: IdentityProvider, subject: str) -> Self | None:
        """The tenant's identity (issuer, subject), through any of its providers
        of this issuer."""
        query = (
            cls.select()
            .join(IdentityProvider)
            .where(
                (IdentityProvider.tenant == provider.tenant_id)
                & (IdentityProvider.issuer == provider.issuer)
                & (cls.subject == subject)
            )
        )
        return query.first()  # type: ignore[no-any-return]

    @classmethod
    def of_user(cls, user: User | UUID) -> list[Self]:
        query = (
            cls.select(cls, IdentityProvider)
            .join(IdentityProvider)
            .where(cls.user == user)
            .order_by(cls.linked_at)
        )
        return list(query)

    @classmethod
    def link(
        cls,
        user: User,
        provider: IdentityProvider,
        *,
        subject: str,
        email: str | None,
    ) -> Self:
        """Link an identity; the unique indexes, not a look-up, refuse a second."""
        try:
            with database.atomic():
                return cls.create(
                    user=user, provider=provider, subject=subject, email=email
                )
        except IntegrityError:
            raise AlreadyLinked(subject) from None

    @classmethod
    def remove_all(cls, user: User) -> None:
        cls.delete().where(cls.user == user).execute()

    @classmethod
    def unlink(cls, user: User, provider: IdentityProvider) -> bool:
        """Remove the account's identity of this provider; False if it had none.

        Raises LastWayIn (and removes nothing) when it was the last way in.
        """
        with database.atomic():
            lock_account(user.id)
            removed = (
                cls.delete()
                .where((cls.user == user) & (cls.provider == provider))
                .execute()
            )
            if removed:
                keep_a_way_in(user)
        return bool(removed)


def keep_a_way_in(user: User) -> None:
    """After removing an identity or a passkey, in the same transaction: raise
    LastWayIn, undoing it, when the account has no password, no identity and no
    passkey left. It would be locked out for good."""
    if User.get_by_id(user.id).has_password:
        return
    identities = ExternalIdentity.select().where(ExternalIdentity.user == user)
    passkeys = Passkey.select().where(Passkey.user == user)
    if not identities.exists() and not passkeys.exists():
        raise LastWayIn
