"""Sessions (login families) and their single-use refresh tokens.

A login opens a session; every refresh retires the presented token and adds a
new one to the same session. Revoking the session ends all of its refresh tokens
and every access token issued to it, since access tokens name their session.
Only a SHA-256 digest of each refresh token is stored.
"""

from datetime import datetime, timedelta
from typing import Self, cast
from uuid import UUID, uuid4

from peewee import AutoField, CharField, DateTimeField, ForeignKeyField, UUIDField

from models.db import (
    BaseModel,
    as_db,
    columns_of,
    database,
    fetch_row,
    model_from,
    utcnow,
)
from models.tenant import ApiKey, Tenant
from models.user import User


class Session(BaseModel):
    id = UUIDField(primary_key=True, default=uuid4)
    tenant = ForeignKeyField(Tenant, on_delete="CASCADE")
    user = ForeignKeyField(User, backref="sessions", on_delete="CASCADE")
    created_at = DateTimeField(default=utcnow)
    last_used_at = DateTimeField(default=utcnow)
    expires_at = DateTimeField(index=True)
    revoked_at = DateTimeField(null=True)
    user_agent = CharField(max_length=200, null=True)
    ip = CharField(max_length=64, null=True)
    user_id: UUID
    tenant_id: UUID

    @classmethod
    def open(
        cls, user: User, *, ttl: int, user_agent: str | None, ip: str | None
    ) -> Self:
        now = utcnow()
        return cls.create(
            tenant=user.tenant_id,
            user=user,
            created_at=now,
            last_used_at=now,
            expires_at=now + timedelta(seconds=ttl),
            user_agent=(user_agent or "")[:200] or None,
            ip=ip,
        )

    @classmethod
    def began_since(cls, session_id: UUID, user: User, moment: datetime) -> bool:
        """Whether this live session of `user` was opened (logged in) after
        `moment`; refreshes do not count."""
        query = cls.select().where(
            (cls.id == session_id)
            & (cls.user == user)
            & cls.revoked_at.is_null()
            & (cls.created_at > moment)
        )
        return bool(query.exists())

    @classmethod
    def live_of(cls, user: User | UUID) -> list[Self]:
        query = (
            cls.select()
            .where((cls.user == user) & cls.is_live())
            .order_by(cls.created_at.desc())
        )
        return list(query)

    @classmethod
    def all_of(cls, user: User) -> list[Self]:
        """Every session of the account, ended ones too, oldest first."""
        return list(cls.select().where(cls.user == user).order_by(cls.created_at))

    @classmethod
    def is_live(cls) -> object:
        """The condition a usable session meets, for queries."""
        return cls.revoked_at.is_null() & (cls.expires_at > utcnow())

    @classmethod
    def revoke_all(cls, user: User | UUID, *, keep: UUID | None = None) -> int:
        """End every live session of a user, except `keep`; return how many."""
        condition = (cls.user == user) & cls.revoked_at.is_null()
        if keep is not None:
            condition &= cls.id != keep
        return cast(int, cls.update(revoked_at=utcnow()).where(condition).execute())

    @classmethod
    def end_least_recently_used(cls, user: User, *, keep: int) -> int:
        """End the user's live sessions but the `keep` most recently used."""
        surplus = (
            cls.select(cls.id)
            .where((cls.user == user) & cls.is_live())
            .order_by(cls.last_used_at.desc(), cls.created_at.desc())
            .offset(keep)
        )
        ended = cls.update(revoked_at=utcnow()).where(cls.id.in_(surplus))
        return cast(int, ended.execute())

    def revoke(self) -> None:
        self.stamp_once("revoked_at")

    def touch(self, *, ttl: int) -> None:
        now = utcnow()
        model = type(self)
        model.update(last_used_at=now, expires_at=now + timedelta(seconds=ttl)).where(
            model.id == self.id
        ).execute()

    @classmethod
    def purge(cls, *, ended_before: datetime) -> int:
        """Delete sessions that ended (expired or revoked) before that moment.

        Their refresh tokens go with them (ON DELETE CASCADE).
        """
        ended = (cls.expires_at < ended_before) | (cls.revoked_at < ended_before)
        return cast(int, cls.delete().where(ended).execute())


class RefreshToken(BaseModel):
    id = AutoField()
    digest = CharField(max_length=64, unique=True)
    session = ForeignKeyField(Session, backref="refresh_tokens", on_delete="CASCADE")
    created_at = DateTimeField(default=utcnow)
    expires_at = DateTimeField()
    retired_at = DateTimeField(null=True)
    session_id: UUID

    @classmethod
    def by_digest(cls, digest: str) -> Self | None:
        query = cls.select(cls, Session).join(Session).where(cls.digest == digest)
        return cast(Self | None, query.first())

    @classmethod
    def purge(cls, *, now: datetime) -> int:
        """Delete expired tokens. Retired ones stay until then: a retired token
        presented again must still be recognised as reuse."""
        return cast(int, cls.delete().where(cls.expires_at < now).execute())

    def retire(self) -> bool:
        """Retire this token; False when a racing request retired it first."""
        return self.stamp_once("retired_at")

    @classmethod
    def retire_live(cls, session: Session) -> int:
        """Retire the session's live tokens: a family keeps at most one."""
        live = (cls.session == session) & cls.retired_at.is_null()
        return cast(int, cls.update(retired_at=utcnow()).where(live).execute())


def purge_ended_sessions(*, retention: timedelta = timedelta(hours=1)) -> int:
    """Delete expired refresh tokens and sessions ended over `retention` ago."""
    now = utcnow()
    with database.atomic():
        return RefreshToken.purge(now=now) + Session.purge(ended_before=now - retention)


# The user's columns come from the model, never from input.
LIVE_KEY_AND_USER = (
    "SELECT api_key.id, api_key.tenant_id, "  # noqa: S608
    + columns_of(User)
    + " FROM api_key"
    ' LEFT JOIN "user" ON "user".id = {p}'
    ' AND "user".tenant_id = api_key.tenant_id AND "user".active'
    " AND EXISTS (SELECT 1 FROM session WHERE session.id = {p}"
    ' AND session.user_id = "user".id AND session.revoked_at IS NULL'
    " AND session.expires_at > {p})"
    " AND EXISTS (SELECT 1 FROM signing_key WHERE signing_key.kid = {p}"
    " AND signing_key.retired_at IS NULL)"
    " WHERE api_key.digest = {p} AND api_key.revoked_at IS NULL"
)


def live_key_and_user(
    key_digest: str,
    user_id: UUID | None = None,
    session_id: UUID | None = None,
    signing_key_id: str | None = None,
) -> tuple[ApiKey | None, User | None]:
    """The live API key with this digest, and the active user of the key's tenant
    with that live session: one indexed query, the one every request makes.

    The user is None without ids, or when the rule does not hold: the account is
    another tenant's or deactivated, the session ended or is someone else's, or
    the key that signed the token was retired (by any process, a moment ago).
    """
    row = fetch_row(
        LIVE_KEY_AND_USER,
        as_db(User.id, user_id),
        as_db(Session.id, session_id),
        as_db(Session.expires_at, utcnow()),
        signing_key_id,
        key_digest,
    )
    if row is None:
        return None, None
    key_id, tenant_id, *user_columns = row
    tenant = Tenant.cached(cast(UUID, Tenant.id.python_value(tenant_id)))
    api_key = ApiKey(id=key_id, tenant=tenant)
    user = model_from(User, user_columns) if user_columns[0] is not None else None
    return api_key, user
