"""Webhooks: the tenants' endpoints, the outbox of events and their deliveries.

An event is stored in the transaction of the change that caused it, with one
delivery per endpoint that wants it; the sender (webhooks/) claims due
deliveries with a lease, so no two senders post one at the same time, and a
dead sender's claim expires. Sending is not done here.
"""

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Self
from uuid import UUID, uuid4

from peewee import (
    AutoField,
    CharField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    SqliteDatabase,
    TextField,
    UUIDField,
    fn,
)

from auth.permissions import grants_of
from models.db import BaseModel, as_db, database, utcnow
from models.grants import access_of
from models.tenant import Tenant
from models.user import User, lock_account

EVENT_TYPES = (
    "user.created",
    "user.updated",
    "user.deleted",
    "user.deactivated",
    "user.reactivated",
    "user.roles_changed",
    "user.locked",
    "user.sessions_revoked",
)
DELETED = "user.deleted"
# Finished events are kept this long, for an operator to look into, then dropped.
KEEP_FINISHED = timedelta(days=1)
_listeners: list[Callable[[], object]] = []


class WebhookEndpoint(BaseModel):
    id = AutoField()
    tenant = ForeignKeyField(Tenant, on_delete="CASCADE")
    url = CharField(max_length=2000)
    # Space-separated event types.
    event_types = TextField()
    # Fernet under the data key, as TOTP secrets: the sender must read it back.
    sealed_secret = TextField()
    created_at = DateTimeField(default=utcnow)

    @property
    def event_type_list(self) -> list[str]:
        return self.event_types.split()

    @classmethod
    def add(
        cls, tenant: Tenant, url: str, event_types: Sequence[str], sealed_secret: str
    ) -> Self:
        return cls.create(
            tenant=tenant,
            url=url,
            event_types=" ".join(event_types),
            sealed_secret=sealed_secret,
        )

    @classmethod
    def of_tenant(cls, tenant: Tenant | UUID) -> list[Self]:
        return list(cls.select().where(cls.tenant == tenant).order_by(cls.id))

    @classmethod
    def remove(cls, endpoint_id: int) -> bool:
        """Drop the endpoint and its pending deliveries (the foreign key cascades)."""
        return bool(cls.delete().where(cls.id == endpoint_id).execute())


class WebhookEvent(BaseModel):
    # The order of events, which deliveries keep per user and endpoint.
    id = AutoField()
    # The `webhook-id` header, the same on every retry.
    public_id = UUIDField(default=uuid4, unique=True)
    tenant = ForeignKeyField(Tenant, on_delete="CASCADE")
    type = CharField(max_length=40)
    user_id = CharField(max_length=36, index=True)
    # The JSON that is signed and sent, written once, at the change.
    body = TextField()
    created_at = DateTimeField(default=utcnow)

    @classmethod
    def forget_user(cls, tenant: Tenant | UUID, user_id: UUID) -> None:
        """Keep only the id of a deleted account in its events, sent or not."""
        for event in cls.select().where(
            (cls.tenant == tenant) & (cls.user_id == str(user_id))
        ):
            body = json.loads(event.body)
            body["data"]["user"] = {"id": str(user_id)}
            event.body = json.dumps(body)
            event.save()

    @classmethod
    def purge_finished(cls) -> int:
        """Drop events whose every delivery is done (or given up) a while ago."""
        pending = WebhookDelivery.select().where(
            (WebhookDelivery.event == cls.id)
            & WebhookDelivery.next_attempt_at.is_null(False)
        )
        old = cls.created_at < utcnow() - KEEP_FINISHED
        return int(cls.delete().where(old & ~fn.EXISTS(pending)).execute())


class WebhookDelivery(BaseModel):
    id = AutoField()
    event = ForeignKeyField(WebhookEvent, on_delete="CASCADE")
    endpoint = ForeignKeyField(WebhookEndpoint, on_delete="CASCADE")
    # The event's, so that ordering per user needs no join.
    user_id = CharField(max_length=36)
    attempts = IntegerField(default=0)
    # None once finished: delivered, or given up after the last retry.
    next_attempt_at = DateTimeField(null=True, index=True)
    lease_until = DateTimeField(null=True)
    claimed_by = CharField(max_length=36, null=True)
    delivered_at = DateTimeField(null=True)
    last_status = CharField(max_length=40, null=True)

    class Meta:
        indexes = ((("endpoint", "user_id", "event"), False),)

    @classmethod
    def claim_due(cls, *, owner: str, lease: float, limit: int) -> list[Self]:
        """Claim up to `limit` due deliveries for `lease` seconds; with them,
        their event and endpoint.

        One statement picks and claims, so two senders never claim one row: on
        PostgreSQL the rows are locked (`SKIP LOCKED`: a row another sender is
        claiming is left to it), on SQLite the statement holds the write lock.
        A delivery waits while an earlier event of its user to its endpoint is
        pending: events of one user arrive in order.
        """
        now = utcnow()
        lock = (
            "" if isinstance(database.obj, SqliteDatabase) else "FOR UPDATE SKIP LOCKED"
        )
        sql = CLAIM_SQL.replace("{lock}", lock).replace("{p}", database.param)
        until = as_db(cls.lease_until, now + timedelta(seconds=lease))
        stamp = as_db(cls.next_attempt_at, now)
        with database.atomic():
            rows = database.execute_sql(sql, (owner, until, stamp, stamp, limit))
            ids = [row[0] for row in rows.fetchall()]
        if not ids:
            return []
        query = (
            cls.select(cls, WebhookEvent, WebhookEndpoint)
            .join(WebhookEvent)
            .switch(cls)
            .join(WebhookEndpoint)
            .where(cls.id.in_(ids))
            .order_by(cls.event)
        )
        return list(query)

    def finish(
        self, *, owner: str, status: str, delivered: bool, delays: Sequence[float]
    ) -> bool:
        """Record an attempt: delivered, retried after the next delay, or given
        up past the last. False if the claim was lost (its lease ran out and
        another sender took it)."""
        now = utcnow()
        attempts = self.attempts + 1
        retry = None
        if not delivered and attempts <= len(delays):
            retry = now + timedelta(seconds=delays[attempts - 1])
        model = type(self)
        query = model.update(
            attempts=attempts,
            next_attempt_at=retry,
            delivered_at=now if delivered else None,
            last_status=status[:40],
            lease_until=None,
            claimed_by=None,
        ).where((model.id == self.id) & (model.claimed_by == owner))
        return bool(query.execute())


CLAIM_SQL = """
UPDATE webhook_delivery SET claimed_by = {p}, lease_until = {p}
WHERE id IN (
    SELECT d.id FROM webhook_delivery d
    WHERE d.next_attempt_at <= {p}
      AND (d.lease_until IS NULL OR d.lease_until <= {p})
      AND NOT EXISTS (
        SELECT 1 FROM webhook_delivery e
        WHERE e.endpoint_id = d.endpoint_id AND e.user_id = d.user_id
          AND e.event_id < d.event_id AND e.next_attempt_at IS NOT NULL)
    ORDER BY d.event_id
    LIMIT {p}
    {lock})
RETURNING id
"""


def emit(tenant: Tenant | UUID, event_type: str, user: User) -> None:
    """Store an event for every endpoint of the tenant that wants it, inside
    the caller's transaction; nothing when none does."""
    endpoints = [
        endpoint
        for endpoint in WebhookEndpoint.of_tenant(tenant)
        if event_type in endpoint.event_type_list
    ]
    if not endpoints:
        return
    # Events of one account are numbered in the order their changes commit, so
    # they are sent in that order; read afresh: the change of this transaction.
    lock_account(user.id)
    current = None if event_type == DELETED else User.get_or_none(User.id == user.id)
    event = WebhookEvent.create(
        tenant=tenant,
        type=event_type,
        user_id=str(user.id),
        body=event_body(event_type, tenant_id(tenant), current, user.id),
    )
    WebhookDelivery.insert_many(
        [
            {
                "event": event,
                "endpoint": endpoint,
                "user_id": str(user.id),
                "next_attempt_at": event.created_at,
            }
            for endpoint in endpoints
        ]
    ).execute()
    for listener in _listeners:
        listener()


def on_new_event(listener: Callable[[], object]) -> Callable[[], None]:
    """Call `listener` (from a database thread) when this process stores an
    event; return what stops it."""
    _listeners.append(listener)
    return lambda: _listeners.remove(listener)


def event_body(event_type: str, tenant: UUID, user: User | None, user_id: UUID) -> str:
    """The delivery's JSON. The account's fields only, never a hash, secret or
    token; and only its id once it is deleted."""
    shown = user_fields(user) if user is not None else {"id": str(user_id)}
    return json.dumps(
        {
            "type": event_type,
            "timestamp": datetime.now(UTC).isoformat(),
            "data": {"tenant": str(tenant), "user": shown},
        }
    )


def user_fields(user: User) -> dict[str, object]:
    access = access_of(user)
    return {
        "id": str(user.id),
        "email": user.email,
        "role": user.role,
        "roles": list(grants_of(user.role, access.roles).roles),
        "groups": access.groups,
        "active": user.active,
        "emailVerified": user.email_verified,
        "mfaEnabled": user.mfa_enabled,
        "city": user.city,
        "organization": user.organization,
        "designation": user.designation,
        "mobile": user.mobile,
        "createdAt": _iso(user.created_at),
        "updatedAt": _iso(user.updated_at),
    }


def tenant_id(tenant: Tenant | UUID) -> UUID:
    return tenant.id if isinstance(tenant, Tenant) else tenant


def _iso(moment: datetime) -> str:
    return moment.replace(tzinfo=UTC).isoformat()
