"""The audit log: an append-only record of security events, per tenant."""

import contextlib
from enum import StrEnum
from typing import Self
from uuid import UUID, uuid4

from peewee import AutoField, CharField, DateTimeField, ForeignKeyField, UUIDField

from models.db import BaseModel, database, utcnow
from models.tenant import Tenant
from models.user import User
from models.webhook import emit


class Action(StrEnum):
    SIGNED_UP = "SIGNED_UP"
    LOGIN_SUCCEEDED = "LOGIN_SUCCEEDED"
    LOGIN_FAILED = "LOGIN_FAILED"
    ACCOUNT_LOCKED = "ACCOUNT_LOCKED"
    ACCOUNT_UNLOCKED = "ACCOUNT_UNLOCKED"
    ROLE_CHANGED = "ROLE_CHANGED"
    PROFILE_CHANGED = "PROFILE_CHANGED"
    PASSWORD_CHANGED = "PASSWORD_CHANGED"
    SESSION_ENDED = "SESSION_ENDED"
    SESSIONS_REVOKED = "SESSIONS_REVOKED"
    REFRESH_TOKEN_REUSED = "REFRESH_TOKEN_REUSED"
    PASSWORD_RESET_REQUESTED = "PASSWORD_RESET_REQUESTED"
    PASSWORD_RESET = "PASSWORD_RESET"
    EMAIL_VERIFICATION_SENT = "EMAIL_VERIFICATION_SENT"
    EMAIL_VERIFIED = "EMAIL_VERIFIED"
    MFA_ENABLED = "MFA_ENABLED"
    MFA_DISABLED = "MFA_DISABLED"
    MFA_RESET = "MFA_RESET"
    MFA_FAILED = "MFA_FAILED"
    USER_DEACTIVATED = "USER_DEACTIVATED"
    USER_ACTIVATED = "USER_ACTIVATED"
    ACCESS_DENIED = "ACCESS_DENIED"
    RATE_LIMITED = "RATE_LIMITED"
    API_KEY_CREATED = "API_KEY_CREATED"
    API_KEY_REVOKED = "API_KEY_REVOKED"
    ROLE_DEFINED = "ROLE_DEFINED"
    ROLE_DELETED = "ROLE_DELETED"
    ROLE_GRANTED = "ROLE_GRANTED"
    ROLE_REVOKED = "ROLE_REVOKED"
    GROUP_DEFINED = "GROUP_DEFINED"
    GROUP_DELETED = "GROUP_DELETED"
    GROUP_MEMBER_ADDED = "GROUP_MEMBER_ADDED"
    GROUP_MEMBER_REMOVED = "GROUP_MEMBER_REMOVED"
    EMAIL_CHANGE_REQUESTED = "EMAIL_CHANGE_REQUESTED"
    EMAIL_CHANGED = "EMAIL_CHANGED"
    ACCOUNT_DELETED = "ACCOUNT_DELETED"
    PASSKEY_REGISTERED = "PASSKEY_REGISTERED"
    PASSKEY_REMOVED = "PASSKEY_REMOVED"
    PASSKEY_SETTINGS_CHANGED = "PASSKEY_SETTINGS_CHANGED"
    EXTERNAL_IDENTITY_LINKED = "EXTERNAL_IDENTITY_LINKED"
    EXTERNAL_IDENTITY_UNLINKED = "EXTERNAL_IDENTITY_UNLINKED"
    IDENTITY_PROVIDER_ADDED = "IDENTITY_PROVIDER_ADDED"
    IDENTITY_PROVIDER_REMOVED = "IDENTITY_PROVIDER_REMOVED"


# What the tenant's webhooks hear of, in one place so that no change forgets it.
WEBHOOK_EVENTS = {
    Action.SIGNED_UP: "user.created",
    Action.PROFILE_CHANGED: "user.updated",
    Action.EMAIL_CHANGED: "user.updated",
    Action.EMAIL_VERIFIED: "user.updated",
    Action.ACCOUNT_DELETED: "user.deleted",
    Action.USER_DEACTIVATED: "user.deactivated",
    Action.USER_ACTIVATED: "user.reactivated",
    Action.ROLE_CHANGED: "user.roles_changed",
    Action.ROLE_GRANTED: "user.roles_changed",
    Action.ROLE_REVOKED: "user.roles_changed",
    Action.GROUP_MEMBER_ADDED: "user.roles_changed",
    Action.GROUP_MEMBER_REMOVED: "user.roles_changed",
    Action.ACCOUNT_LOCKED: "user.locked",
    Action.SESSIONS_REVOKED: "user.sessions_revoked",
}


class UnknownEvent(Exception):
    """No event of the tenant has this id."""


class AuditEvent(BaseModel):
    # The log's order, shared by every tenant: it never leaves the service, as
    # its gaps would tell a tenant how busy the others are.
    id = AutoField()
    # The event's id for clients, and what cursors name: random, so it tells
    # nothing about any other event.
    public_id = UUIDField(default=uuid4, unique=True)
    tenant = ForeignKeyField(Tenant, on_delete="CASCADE")
    at = DateTimeField(default=utcnow)
    action = CharField(max_length=40)
    # Not foreign keys: an event outlives the accounts it names.
    actor_id = CharField(max_length=36, null=True)
    target_id = CharField(max_length=36, null=True)
    ip = CharField(max_length=64, null=True)
    user_agent = CharField(max_length=200, null=True)
    request_id = CharField(max_length=64, null=True)
    detail = CharField(max_length=200, null=True)

    class Meta:
        indexes = ((("tenant", "id"), False), (("tenant", "action", "id"), False))

    @classmethod
    def record(
        cls,
        tenant: Tenant | UUID,
        action: Action,
        *,
        actor: User | None = None,
        target: User | None = None,
        ip: str | None = None,
        user_agent: str | None = None,
        request_id: str | None = None,
        detail: str | None = None,
    ) -> Self:
        """Record an event and, in the same transaction, its webhook event."""
        event_type = WEBHOOK_EVENTS.get(action) if target is not None else None
        with database.atomic() if event_type else contextlib.nullcontext():
            event = cls.create(
                tenant=tenant,
                action=action.value,
                actor_id=str(actor.id) if actor else None,
                target_id=str(target.id) if target else None,
                ip=ip,
                user_agent=(user_agent or "")[:200] or None,
                request_id=request_id,
                detail=detail[:200] if detail else None,
            )
            if event_type and target is not None:
                emit(tenant, event_type, target)
        return event

    @classmethod
    def of_account(cls, tenant: Tenant | UUID, user_id: UUID) -> list[Self]:
        """The events the account did or underwent, oldest first."""
        named = (cls.actor_id == str(user_id)) | (cls.target_id == str(user_id))
        query = cls.select().where((cls.tenant == tenant) & named).order_by(cls.id)
        return list(query)

    @classmethod
    def forget_account(cls, tenant: Tenant | UUID, user_id: UUID) -> None:
        """Keep only the id of a deleted account: drop the address and browser of
        the requests it made, and of the failed logins that named it."""
        own = (cls.actor_id == str(user_id)) | (
            cls.actor_id.is_null() & (cls.target_id == str(user_id))
        )
        cls.update(ip=None, user_agent=None).where(
            (cls.tenant == tenant) & own
        ).execute()

    @classmethod
    def page(
        cls,
        tenant: Tenant | UUID,
        *,
        first: int,
        after: UUID | None = None,
        action: str | None = None,
    ) -> list[Self]:
        """Newest first; `after` is the public id of the last event of the
        previous page, one of this tenant's (else UnknownEvent)."""
        condition = cls.tenant == tenant
        if after is not None:
            last = cls.get_or_none((cls.tenant == tenant) & (cls.public_id == after))
            if last is None:
                raise UnknownEvent(after)
            condition &= cls.id < last.id
        if action:
            condition &= cls.action == action
        return list(cls.select().where(condition).order_by(cls.id.desc()).limit(first))
