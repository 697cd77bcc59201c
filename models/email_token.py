"""Single-use tokens sent by mail: password resets, email verification and
email changes (whose token carries the new address).

Only a SHA-256 digest is stored; a guarded UPDATE spends a token at most once.
"""

from datetime import timedelta
from enum import StrEnum
from typing import Self, cast
from uuid import UUID

from peewee import AutoField, CharField, DateTimeField, ForeignKeyField

from models.db import BaseModel, utcnow
from models.tenant import Tenant
from models.user import User


class Purpose(StrEnum):
    RESET = "RESET"
    VERIFY = "VERIFY"
    EMAIL_CHANGE = "NEW_EMAIL"  # the column holds 10 characters


LIFETIMES = {
    Purpose.RESET: timedelta(hours=1),
    Purpose.VERIFY: timedelta(hours=24),
    Purpose.EMAIL_CHANGE: timedelta(hours=24),
}


class EmailToken(BaseModel):
    id = AutoField()
    digest = CharField(max_length=64, unique=True)
    tenant = ForeignKeyField(Tenant, on_delete="CASCADE")
    user = ForeignKeyField(User, on_delete="CASCADE")
    purpose = CharField(max_length=10)
    expires_at = DateTimeField()
    used_at = DateTimeField(null=True)
    new_email = CharField(max_length=254, null=True)  # of an email change
    user_id: UUID

    @classmethod
    def issue(
        cls, user: User, purpose: Purpose, digest: str, new_email: str | None = None
    ) -> Self:
        return cls.create(
            digest=digest,
            tenant=user.tenant_id,
            user=user,
            purpose=purpose.value,
            expires_at=utcnow() + LIFETIMES[purpose],
            new_email=new_email,
        )

    @classmethod
    def live(cls, tenant: Tenant, purpose: Purpose, digest: str) -> Self | None:
        """The unused, unexpired token of this tenant and purpose, if any."""
        query = cls.select().where(
            (cls.digest == digest)
            & (cls.tenant == tenant)
            & (cls.purpose == purpose.value)
            & cls.used_at.is_null()
            & (cls.expires_at > utcnow())
        )
        return cast(Self | None, query.first())

    @classmethod
    def pending_of(cls, user: User) -> list[Self]:
        """The account's unused, unexpired links, oldest first."""
        query = cls.select().where(
            (cls.user == user) & cls.used_at.is_null() & (cls.expires_at > utcnow())
        )
        return list(query.order_by(cls.id))

    @classmethod
    def spend_all(cls, user: User, purpose: Purpose) -> None:
        """Use up every live token of the account for this purpose."""
        cls.update(used_at=utcnow()).where(
            (cls.user == user) & (cls.purpose == purpose.value) & cls.used_at.is_null()
        ).execute()

    def spend(self) -> bool:
        """Use it; False when a racing request used it first."""
        return self.stamp_once("used_at")
