"""Passkeys (WebAuthn credentials) and the challenges their ceremonies sign.

A credential id is unique in its tenant, and found only there. A challenge is
used at most once (a guarded UPDATE: of racing finishes, exactly one gets it),
and a sign counter only moves forward, decided the same way.
"""

from datetime import timedelta
from enum import StrEnum
from typing import Self, cast
from uuid import UUID, uuid4

from peewee import (
    BigIntegerField,
    CharField,
    DateTimeField,
    ForeignKeyField,
    IntegrityError,
    TextField,
    UUIDField,
)

from models.db import BaseModel, database, utcnow
from models.tenant import Tenant
from models.user import User

CHALLENGE_TTL = timedelta(minutes=5)


class DuplicateCredential(Exception):
    """The tenant has a passkey with this credential id already."""


class Ceremony(StrEnum):
    REGISTER = "REGISTER"
    LOGIN = "LOGIN"


class Passkey(BaseModel):
    id = UUIDField(primary_key=True, default=uuid4)
    tenant = ForeignKeyField(Tenant, on_delete="CASCADE")
    user = ForeignKeyField(User, on_delete="CASCADE")
    credential_id = CharField(max_length=1400)  # base64url, as browsers send it
    public_key = TextField()  # COSE, base64url
    sign_count = BigIntegerField(default=0)
    transports = CharField(max_length=200, null=True)
    name = CharField(max_length=100, null=True)
    created_at = DateTimeField(default=utcnow)
    last_used_at = DateTimeField(null=True)
    user_id: UUID

    class Meta:
        indexes = ((("tenant", "credential_id"), True),)

    @classmethod
    def add(cls, user: User, **columns: object) -> Self:
        """Store a verified credential; the unique index decides duplicates."""
        try:
            with database.atomic():
                return cls.create(tenant=user.tenant_id, user=user, **columns)
        except IntegrityError:
            raise DuplicateCredential() from None

    @classmethod
    def of_user(cls, user_id: UUID) -> list[Self]:
        return list(cls.select().where(cls.user == user_id).order_by(cls.created_at))

    @classmethod
    def by_credential(cls, tenant: Tenant | UUID, credential_id: str) -> Self | None:
        return cls.get_or_none(
            (cls.tenant == tenant) & (cls.credential_id == credential_id)
        )

    @classmethod
    def remove(cls, user: User, passkey_id: UUID) -> bool:
        """Delete one of the account's passkeys; False when it has none with this id."""
        query = cls.delete().where((cls.id == passkey_id) & (cls.user == user))
        return bool(query.execute())

    @classmethod
    def remove_all(cls, user: User) -> int:
        return cast(int, cls.delete().where(cls.user == user).execute())

    def advance(self, sign_count: int) -> bool:
        """Record a use with the authenticator's new counter; False when a racing
        login got there first with this counter or a later one.

        Authenticators that keep no counter send 0 every time: nothing to order.
        """
        model = type(self)
        moved = (
            model.sign_count == 0 if sign_count == 0 else model.sign_count < sign_count
        )
        query = model.update(sign_count=sign_count, last_used_at=utcnow()).where(
            (model.id == self.id) & moved
        )
        return bool(query.execute())


class PasskeyChallenge(BaseModel):
    id = UUIDField(primary_key=True, default=uuid4)
    tenant = ForeignKeyField(Tenant, on_delete="CASCADE")
    # Registration: the account adding a passkey. Login with an email: the
    # account it names (null when it names none, so that no passkey fits).
    user = ForeignKeyField(User, on_delete="CASCADE", null=True)
    # Login with an email: what failed attempts count against.
    account = TextField(null=True)
    purpose = CharField(max_length=10)
    challenge = CharField(max_length=100)  # base64url
    expires_at = DateTimeField(index=True)
    used_at = DateTimeField(null=True)
    user_id: UUID | None

    @classmethod
    def open(
        cls,
        tenant: Tenant,
        purpose: Ceremony,
        challenge: str,
        *,
        user: User | None = None,
        account: str | None = None,
    ) -> Self:
        # Whoever starts ceremonies and never finishes them leaves nothing behind.
        cls.delete().where(cls.expires_at < utcnow()).execute()
        return cls.create(
            tenant=tenant,
            user=user,
            account=account,
            purpose=purpose.value,
            challenge=challenge,
            expires_at=utcnow() + CHALLENGE_TTL,
        )

    @classmethod
    def pending(
        cls, tenant: Tenant, purpose: Ceremony, challenge_id: str
    ) -> Self | None:
        """The tenant's unused, unexpired challenge of this purpose and id."""
        try:
            wanted = UUID(challenge_id)
        except ValueError:
            return None
        query = cls.select().where(
            (cls.id == wanted)
            & (cls.tenant == tenant)
            & (cls.purpose == purpose.value)
            & cls.used_at.is_null()
            & (cls.expires_at > utcnow())
        )
        return cast(Self | None, query.first())

    def use(self) -> bool:
        """Use it; False when a racing request used it first."""
        return self.stamp_once("used_at")
