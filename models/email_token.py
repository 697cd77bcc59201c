"""Single-use tokens sent by mail: password resets and email verification.

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


LIFETIMES = {Purpose.RESET: timedelta(hours=1), Purpose.VERIFY: timedelta(hours=24)}


class EmailToken(BaseModel):
    id = AutoField()
    digest = CharField(max_length=64, unique=True)
    tenant = ForeignKeyField(Tenant, on_delete="CASCADE")
    user = ForeignKeyField(User, on_delete="CASCADE")
    purpose = CharField(max_length=10)
    expires_at = DateTimeField()
    used_at = DateTimeField(null=True)
    user_id: UUID

    @classmethod
    def issue(cls, user: User, purpose: Purpose, digest: str) -> Self:
        return cls.create(
            digest=digest,
            tenant=user.tenant_id,
            user=user,
            purpose=purpose.value,
            expires_at=utcnow() + LIFETIMES[purpose],
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
    def spend_all(cls, user: User, purpose: Purpose) -> None:
        """Use up every live token of the account for this purpose."""
        cls.update(used_at=utcnow()).where(
            (cls.user == user) & (cls.purpose == purpose.value) & cls.used_at.is_null()
        ).execute()

    def spend(self) -> bool:
        """Use it; False when a racing request used it first."""
        return self.stamp_once("used_at")
