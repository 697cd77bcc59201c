"""Tenants and their API keys: only a SHA-256 digest of each key is stored."""

from dataclasses import dataclass
from typing import Self
from uuid import UUID, uuid4

from peewee import (
    AutoField,
    CharField,
    DateTimeField,
    ForeignKeyField,
    IntegrityError,
    TextField,
    UUIDField,
)

from models.db import BaseModel, database, utcnow


class TenantExists(Exception):
    """A tenant with this name exists already."""


@dataclass(frozen=True)
class RelyingParty:
    """Whom a tenant's passkeys are bound to: its domain and the page origins."""

    rp_id: str
    origins: list[str]


class Tenant(BaseModel):
    id = UUIDField(primary_key=True, default=uuid4)
    name = CharField(max_length=100, unique=True)
    created_at = DateTimeField(default=utcnow)
    webauthn_rp_id = CharField(max_length=253, null=True)
    webauthn_origins = TextField(null=True)  # separated by spaces

    @classmethod
    def cached(cls, tenant_id: UUID) -> "Tenant":
        """The tenant, read once per process: tenants never go away and their
        names never change (passkey settings do: see relying_party)."""
        tenant = _tenants.get(tenant_id)
        if tenant is None:
            tenant = _tenants[tenant_id] = cls.get(cls.id == tenant_id)
        return tenant

    @classmethod
    def by_name(cls, name: str) -> Self | None:
        return cls.get_or_none(cls.name == name)

    @classmethod
    def in_name_order(cls) -> list[Self]:
        return list(cls.select().order_by(cls.name))

    @classmethod
    def by_id(cls, tenant_id: UUID) -> Self | None:
        return cls.get_or_none(cls.id == tenant_id)

    @classmethod
    def relying_party(cls, tenant_id: UUID) -> RelyingParty | None:
        """The tenant's passkey settings, read afresh: `tenant set` may have
        changed them while the service runs. None until they are set."""
        tenant = cls.get_or_none(cls.id == tenant_id)
        if tenant is None or not tenant.webauthn_rp_id:
            return None
        origins = (tenant.webauthn_origins or "").split()
        return RelyingParty(rp_id=tenant.webauthn_rp_id, origins=origins)

    def set_relying_party(self, party: RelyingParty) -> None:
        model = type(self)
        model.update(
            webauthn_rp_id=party.rp_id, webauthn_origins=" ".join(party.origins)
        ).where(model.id == self.id).execute()

    @classmethod
    def add(cls, name: str) -> Self:
        try:
            with database.atomic():
                return cls.create(name=name)
        except IntegrityError:
            raise TenantExists(name) from None


_tenants: dict[UUID, Tenant] = {}


class ApiKey(BaseModel):
    id = AutoField()
    tenant = ForeignKeyField(Tenant, backref="api_keys", on_delete="CASCADE")
    digest = CharField(max_length=64, unique=True)
    prefix = CharField(max_length=16)
    created_at = DateTimeField(default=utcnow)
    revoked_at = DateTimeField(null=True)
    last_used_at = DateTimeField(null=True)
    tenant_id: UUID

    @classmethod
    def of_tenant(cls, tenant: Tenant) -> list[Self]:
        return list(cls.select().where(cls.tenant == tenant).order_by(cls.id))

    @classmethod
    def revoke(cls, key_id: int) -> Self | None:
        """Revoke a live key; None when no live key has this id."""
        query = cls.update(revoked_at=utcnow()).where(
            (cls.id == key_id) & cls.revoked_at.is_null()
        )
        return cls.get_or_none(cls.id == key_id) if query.execute() else None

    def mark_used(self) -> None:
        type(self).update(last_used_at=utcnow()).where(
            type(self).id == self.id
        ).execute()
