"""Users: one account per (tenant, folded email), enforced by a unique index."""

from enum import StrEnum
from typing import Any, Self
from uuid import UUID, uuid4

from peewee import (
    BooleanField,
    CharField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    IntegrityError,
    TextField,
    UUIDField,
)

from models.db import BaseModel, as_db, database, utcnow
from models.tenant import Tenant
from validation import email_key

PROFILE_FIELDS = ("city", "organization", "designation", "mobile")
# The password hash of an account made by an external sign-up: no password
# matches it (the hasher checks a dummy hash instead, in the same time), and
# resetPassword sets a real one.
NO_PASSWORD = ""


class Role(StrEnum):
    ADMIN = "ADMIN"
    USER = "USER"


class DuplicateEmail(Exception):
    """The tenant already has an account with this email."""


class LastAdmin(Exception):
    """The change would leave the tenant without an active account holding
    `roles:manage` (an ADMIN, or a holder of a role with that permission)."""


class User(BaseModel):
    id = UUIDField(primary_key=True, default=uuid4)
    tenant = ForeignKeyField(Tenant, backref="users", on_delete="CASCADE")
    email = CharField(max_length=254)
    # validation.email_key(email): what uniqueness and look-ups use. A later
    # account of a collision that migration 0007 found keeps legacy_key(email).
    email_key = CharField(max_length=254)
    password_hash = CharField(max_length=100)
    role = CharField(max_length=10, default=Role.USER.value)
    city = CharField(max_length=100, null=True)
    organization = CharField(max_length=100, null=True)
    designation = CharField(max_length=100, null=True)
    mobile = CharField(max_length=16, null=True)
    active = BooleanField(default=True)
    email_verified = BooleanField(default=False)
    # TOTP secrets, sealed (encrypted) with the data key; pending until confirmed.
    totp_secret = TextField(null=True)
    totp_pending = TextField(null=True)
    # The last time step whose code was accepted: each code works once.
    totp_last_step = IntegerField(null=True)
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)
    tenant_id: UUID  # the foreign key's raw value, set by Peewee

    class Meta:
        indexes = ((("tenant", "email_key"), True),)

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    @property
    def has_password(self) -> bool:
        return self.password_hash != NO_PASSWORD

    @property
    def mfa_enabled(self) -> bool:
        return self.totp_secret is not None

    def set_totp(self, **columns: str | int | None) -> None:
        """Write TOTP columns (secret, pending, last step) of this account."""
        model = type(self)
        model.update(**columns, updated_at=utcnow()).where(
            model.id == self.id
        ).execute()
        for name, value in columns.items():
            setattr(self, name, value)

    def accept_totp_step(self, step: int) -> bool:
        """Record a used step; False when it (or a later one) was used already."""
        model = type(self)
        query = model.update(totp_last_step=step).where(
            (model.id == self.id)
            & (model.totp_last_step.is_null() | (model.totp_last_step < step))
        )
        return bool(query.execute())

    @classmethod
    def by_email(cls, tenant: Tenant | UUID, email: str) -> Self | None:
        """The account a normalized address names: the one holding its folded
        key, unless a later account of a collision answers to this spelling."""
        keys = (email_key(email), legacy_key(email))
        query = cls.select().where((cls.tenant == tenant) & cls.email_key.in_(keys))
        return min(query, key=lambda user: user.email_key == keys[0], default=None)

    def is_named_by(self, email: str) -> bool:
        """Whether a normalized address names this account, without a query."""
        return self.email_key in (email_key(email), legacy_key(email))

    @classmethod
    def by_id(cls, tenant: Tenant | UUID, user_id: UUID) -> Self | None:
        return cls.get_or_none((cls.tenant == tenant) & (cls.id == user_id))

    @classmethod
    def page(
        cls,
        tenant: Tenant | UUID,
        *,
        first: int,
        after: str | None = None,
        search: str | None = None,
        role: Role | None = None,
        active: bool | None = None,
    ) -> tuple[list[Self], int]:
        """A page of the tenant's accounts in email order, and how many match."""
        condition = cls.tenant == tenant
        if search:
            condition &= cls.email_key.contains(email_key(search))  # escaped
        if role is not None:
            condition &= cls.role == role.value
        if active is not None:
            condition &= cls.active == active
        total = cls.select().where(condition).count()
        if after is not None:
            condition &= cls.email_key > after
        query = cls.select().where(condition).order_by(cls.email_key).limit(first)
        return list(query), total

    @classmethod
    def headcount(cls, tenant: Tenant | UUID) -> tuple[int, int]:
        """How many accounts the tenant has, and how many are active ADMINs."""
        accounts = cls.select().where(cls.tenant == tenant)
        admins = accounts.where((cls.role == Role.ADMIN.value) & cls.active)
        return accounts.count(), admins.count()

    @classmethod
    def emails_by_id(cls, tenant: Tenant | UUID, ids: set[str]) -> dict[str, str]:
        """The emails of those of `ids` that are accounts of the tenant."""
        wanted = [UUID(user_id) for user_id in ids]
        query = cls.select(cls.id, cls.email).where(
            (cls.tenant == tenant) & cls.id.in_(wanted)
        )
        return {str(user.id): user.email for user in query}

    @classmethod
    def register(
        cls, tenant: Tenant, email: str, password_hash: str, **fields: Any
    ) -> Self:
        """Insert a new account; the unique index, not a prior look-up, decides."""
        try:
            with database.atomic():
                return cls.create(
                    tenant=tenant,
                    email=email,
                    email_key=email_key(email),
                    password_hash=password_hash,
                    **fields,
                )
        except IntegrityError:
            raise DuplicateEmail(email) from None

    def set_password_hash(self, password_hash: str) -> None:
        model = type(self)
        model.update(password_hash=password_hash, updated_at=utcnow()).where(
            model.id == self.id
        ).execute()

    def mark_email_verified(self) -> None:
        model = type(self)
        model.update(email_verified=True, updated_at=utcnow()).where(
            model.id == self.id
        ).execute()
        self.email_verified = True

    def change_email(self, email: str) -> None:
        """Take a new address, verified. Raises DuplicateEmail when the tenant
        has it: the unique index decides, so of two racing changes one wins."""
        model = type(self)
        key = email_key(email)
        changes = {"email": email, "email_key": key, "email_verified": True}
        try:
            with database.atomic():
                model.update(**changes, updated_at=utcnow()).where(
                    model.id == self.id
                ).execute()
        except IntegrityError:
            raise DuplicateEmail(email) from None
        self.email, self.email_key, self.email_verified = email, key, True

    def apply_changes(self, changes: dict[str, Any]) -> Self:
        """Write only the changed columns, so concurrent edits of others survive.

        Raises LastAdmin (and changes nothing) when a demotion would leave the
        tenant without an active holder of `roles:manage`.
        """
        model = type(self)
        demotes = changes.get("role") == Role.USER or changes.get("active") is False
        with database.atomic():
            if demotes:
                lock_tenant(self.tenant_id)
            model.update(**changes, updated_at=utcnow()).where(
                model.id == self.id
            ).execute()
            if demotes and not has_roles_manager(self.tenant_id):
                raise LastAdmin
        fresh = model.by_id(self.tenant_id, self.id)
        assert fresh is not None  # noqa: S101  # updated inside this transaction
        return fresh


def legacy_key(email: str) -> str:
    """The key of a later account of a collision (see migration 0007): its old
    lower-cased key with the "@" made a space. Every folded key holds an "@",
    so no sign-up can ever take it."""
    return email.lower().replace("@", " ")


# The row locks that serialize changes: they exclude each other, but not the
# key-share lock that inserting a row which refers to the locked one takes.
# FOR UPDATE would: two transactions that each stored a role grant (or a
# session, a passkey…) of an account, then locked it, deadlocked. Peewee takes
# the clause as a string (its stubs admit only a bool).
ROW_LOCK: Any = "FOR NO KEY UPDATE"


def lock_tenant(tenant_id: UUID) -> None:
    """Serialize the changes of who may manage a tenant's roles, so racing
    demotions, revocations and deletions see each other.

    On SQLite the write lock that the UPDATE takes already serializes them.
    """
    if database.for_update:
        query = Tenant.select(Tenant.id).where(Tenant.id == tenant_id)
        query.for_update(ROW_LOCK).execute()


def lock_account(user_id: UUID) -> None:
    """Serialize the changes of one account that must see each other: the
    removal of its last two ways in, and the order of its webhook events.

    On SQLite the write lock of the transaction already serializes them.
    """
    if database.for_update:
        User.select(User.id).where(User.id == user_id).for_update(ROW_LOCK).execute()


# An active account that holds roles:manage: an ADMIN, or through a role held
# directly or by one of its groups. Permission names are checked words, so the
# quoted name matches only itself in a role's JSON list.
MANAGER_SQL = (
    'SELECT 1 FROM "user" u WHERE u.tenant_id = {p} AND u.active AND ('
    "u.role = 'ADMIN'"
    " OR EXISTS (SELECT 1 FROM role_grant g JOIN role r ON r.id = g.role_id"
    " WHERE g.user_id = u.id AND r.permissions LIKE {p})"
    " OR EXISTS (SELECT 1 FROM group_member m JOIN group_role gr"
    " ON gr.group_id = m.group_id JOIN role r ON r.id = gr.role_id"
    " WHERE m.user_id = u.id AND r.permissions LIKE {p})) LIMIT 1"
)
MANAGE_ROLES = '%"roles:manage"%'


def has_roles_manager(tenant_id: UUID) -> bool:
    """Whether an active account of the tenant holds `roles:manage`."""
    sql = MANAGER_SQL.replace("{p}", database.param)
    tenant = as_db(User.tenant, tenant_id)
    cursor = database.execute_sql(sql, (tenant, MANAGE_ROLES, MANAGE_ROLES))
    return cursor.fetchone() is not None
