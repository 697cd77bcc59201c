"""Two-factor state: recovery codes and pending MFA logins (challenges).

Both are stored as SHA-256 digests only; each is used at most once, decided by
a guarded UPDATE so that two racing requests cannot both use one.
"""

from datetime import timedelta
from typing import Self, cast
from uuid import UUID

from peewee import AutoField, CharField, DateTimeField, ForeignKeyField

from models.db import BaseModel, database, utcnow
from models.tenant import Tenant
from models.user import User

CHALLENGE_TTL = timedelta(minutes=5)


class RecoveryCode(BaseModel):
    id = AutoField()
    user = ForeignKeyField(User, on_delete="CASCADE")
    digest = CharField(max_length=64)
    used_at = DateTimeField(null=True)

    class Meta:
        indexes = ((("user", "digest"), True),)

    @classmethod
    def replace_all(cls, user: User, digests: list[str]) -> None:
        with database.atomic():
            cls.delete().where(cls.user == user).execute()
            cls.insert_many([{"user": user, "digest": d} for d in digests]).execute()

    @classmethod
    def use(cls, user: User, digest: str) -> bool:
        """Spend an unused code; False when there is none with this digest."""
        query = cls.update(used_at=utcnow()).where(
            (cls.user == user) & (cls.digest == digest) & cls.used_at.is_null()
        )
        return bool(query.execute())

    @classmethod
    def unused_count(cls, user: User) -> int:
        query = cls.select().where((cls.user == user) & cls.used_at.is_null())
        return query.count()

    @classmethod
    def remove_all(cls, user: User) -> None:
        cls.delete().where(cls.user == user).execute()


class MfaChallenge(BaseModel):
    id = AutoField()
    digest = CharField(max_length=64, unique=True)
    tenant = ForeignKeyField(Tenant, on_delete="CASCADE")
    user = ForeignKeyField(User, on_delete="CASCADE")
    expires_at = DateTimeField()
    used_at = DateTimeField(null=True)
    user_id: UUID
    tenant_id: UUID

    @classmethod
    def open(cls, user: User, digest: str) -> Self:
        return cls.create(
            digest=digest,
            tenant=user.tenant_id,
            user=user,
            expires_at=utcnow() + CHALLENGE_TTL,
        )

    @classmethod
    def pending(cls, digest: str, tenant: Tenant) -> Self | None:
        """The unexpired, unused challenge of this tenant with this digest."""
        query = cls.select().where(
            (cls.digest == digest)
            & (cls.tenant == tenant)
            & cls.used_at.is_null()
            & (cls.expires_at > utcnow())
        )
        return cast(Self | None, query.first())

    def use(self) -> bool:
        """Use it; False when a racing request used it first."""
        return self.stamp_once("used_at")
