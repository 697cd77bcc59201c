"""Tenant-defined roles, direct grants, groups and their members.

A role is a named set of permissions stored as a sorted JSON list. The base
roles ADMIN and USER (`user.role`) have no rows. Every change that could take
`roles:manage` away from its last holder runs in `guarded_change`.
"""

import contextlib
import json
from collections.abc import Iterator
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

from models.db import BaseModel, as_db, database, utcnow
from models.tenant import Tenant
from models.user import LastAdmin, User, has_roles_manager, lock_tenant


class RoleDefinition(BaseModel):
    id = AutoField()
    tenant = ForeignKeyField(Tenant, on_delete="CASCADE")
    name = CharField(max_length=64)
    description = CharField(max_length=200, null=True)
    permissions = TextField()  # a sorted JSON list
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "role"
        indexes = ((("tenant", "name"), True),)

    @property
    def permission_list(self) -> list[str]:
        names: list[str] = json.loads(self.permissions)
        return names

    @classmethod
    def by_name(cls, tenant_id: UUID, name: str) -> Self | None:
        return cls.get_or_none((cls.tenant == tenant_id) & (cls.name == name))

    @classmethod
    def of_tenant(cls, tenant_id: UUID) -> list[Self]:
        return list(cls.select().where(cls.tenant == tenant_id).order_by(cls.name))

    @classmethod
    def define(
        cls,
        tenant_id: UUID,
        name: str,
        *,
        permissions: list[str],
        description: str | None,
    ) -> Self:
        """Create the role, or replace its permissions and description."""
        values = {
            "permissions": json.dumps(sorted(set(permissions))),
            "description": description,
            "updated_at": utcnow(),
        }
        where = (cls.tenant == tenant_id) & (cls.name == name)
        if not cls.update(values).where(where).execute():
            try:
                with database.atomic():
                    cls.create(tenant=tenant_id, name=name, **values)
            except IntegrityError:  # defined a moment ago by another request
                cls.update(values).where(where).execute()
        role = cls.by_name(tenant_id, name)
        assert role is not None  # noqa: S101  # written just above
        return role


class RoleGrant(BaseModel):
    id = AutoField()
    user = ForeignKeyField(User, on_delete="CASCADE")
    role = ForeignKeyField(RoleDefinition, on_delete="CASCADE")

    class Meta:
        table_name = "role_grant"
        indexes = ((("user", "role"), True),)

    @classmethod
    def grant(cls, user: User, role: RoleDefinition) -> bool:
        """False when the user held it already."""
        try:
            with database.atomic():
                cls.create(user=user, role=role)
        except IntegrityError:
            return False
        return True

    @classmethod
    def revoke(cls, user: User, role: RoleDefinition) -> bool:
        query = cls.delete().where((cls.user == user) & (cls.role == role))
        return bool(query.execute())

    @classmethod
    def holders(cls, role: RoleDefinition) -> list[User]:
        query = User.select().join(cls).where(cls.role == role).order_by(User.email_key)
        return list(query)


class UserGroup(BaseModel):
    id = UUIDField(primary_key=True, default=uuid4)
    tenant = ForeignKeyField(Tenant, on_delete="CASCADE")
    name = CharField(max_length=64)
    created_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "user_group"
        indexes = ((("tenant", "name"), True),)

    @classmethod
    def by_name(cls, tenant_id: UUID, name: str) -> Self | None:
        return cls.get_or_none((cls.tenant == tenant_id) & (cls.name == name))

    @classmethod
    def of_tenant(cls, tenant_id: UUID) -> list[Self]:
        return list(cls.select().where(cls.tenant == tenant_id).order_by(cls.name))

    @classmethod
    def define(cls, tenant_id: UUID, name: str, roles: list[RoleDefinition]) -> Self:
        """Create the group, or replace its roles; members stay."""
        group = cls.by_name(tenant_id, name)
        if group is None:
            try:
                with database.atomic():
                    group = cls.create(tenant=tenant_id, name=name)
            except IntegrityError:  # made a moment ago by another request
                group = cls.by_name(tenant_id, name)
                assert group is not None  # noqa: S101  # the unique index says so
        GroupRole.delete().where(GroupRole.group == group).execute()
        GroupRole.insert_many(
            [{"group": group, "role": role} for role in roles]
        ).execute()
        return group

    def roles(self) -> list[RoleDefinition]:
        query = (
            RoleDefinition.select()
            .join(GroupRole)
            .where(GroupRole.group == self)
            .order_by(RoleDefinition.name)
        )
        return list(query)

    def role_names(self) -> list[str]:
        return [role.name for role in self.roles()]

    def add_member(self, user: User) -> bool:
        try:
            with database.atomic():
                GroupMember.create(group=self, user=user)
        except IntegrityError:
            return False
        return True

    def remove_member(self, user: User) -> bool:
        query = GroupMember.delete().where(
            (GroupMember.group == self) & (GroupMember.user == user)
        )
        return bool(query.execute())

    def members(self) -> list[User]:
        return list(User.select().join(GroupMember).where(GroupMember.group == self))

    def members_page(self, *, first: int, after: str | None) -> tuple[list[User], int]:
        members = User.select().join(GroupMember).where(GroupMember.group == self)
        total = members.count()
        if after is not None:
            members = members.where(User.email_key > after)
        return list(members.order_by(User.email_key).limit(first)), total


class GroupRole(BaseModel):
    id = AutoField()
    group = ForeignKeyField(UserGroup, on_delete="CASCADE")
    role = ForeignKeyField(RoleDefinition, on_delete="CASCADE")

    class Meta:
        table_name = "group_role"
        indexes = ((("group", "role"), True),)


class GroupMember(BaseModel):
    id = AutoField()
    group = ForeignKeyField(UserGroup, on_delete="CASCADE")
    user = ForeignKeyField(User, on_delete="CASCADE")

    class Meta:
        table_name = "group_member"
        indexes = ((("group", "user"), True), (("user",), False))


# Every role the account holds, directly or through a group, and its groups:
# one query.
ACCESS_SQL = (
    "SELECT 'role', r.name, r.permissions FROM role r WHERE r.tenant_id = {p} AND ("
    " r.id IN (SELECT g.role_id FROM role_grant g WHERE g.user_id = {p})"
    " OR r.id IN (SELECT gr.role_id FROM group_role gr JOIN group_member m"
    " ON m.group_id = gr.group_id WHERE m.user_id = {p}))"
    " UNION ALL SELECT 'group', ug.name, NULL FROM user_group ug"
    " JOIN group_member gm ON gm.group_id = ug.id WHERE gm.user_id = {p}"
)


@dataclass(frozen=True)
class Access:
    """The tenant-defined roles an account holds (with their permissions), and
    its groups."""

    roles: list[tuple[str, list[str]]]
    groups: list[str]


def holders_of(role: RoleDefinition) -> list[User]:
    """Every account holding the role, directly or through a group."""
    direct = User.select().join(RoleGrant).where(RoleGrant.role == role)
    grouped = (
        User.select()
        .join(GroupMember)
        .join(GroupRole, on=GroupRole.group == GroupMember.group)
        .where(GroupRole.role == role)
    )
    return list({user.id: user for user in [*direct, *grouped]}.values())


def access_of(user: User) -> Access:
    sql = ACCESS_SQL.replace("{p}", database.param)
    user_id = as_db(User.id, user.id)
    tenant_id = as_db(User.tenant, user.tenant_id)
    rows = database.execute_sql(sql, (tenant_id, user_id, user_id, user_id)).fetchall()
    roles = sorted((name, json.loads(p)) for kind, name, p in rows if kind == "role")
    groups = sorted(name for kind, name, _ in rows if kind == "group")
    return Access(roles=roles, groups=groups)


@contextlib.contextmanager
def guarded_change(tenant_id: UUID) -> Iterator[None]:
    """A transaction that is undone (LastAdmin) if it leaves the tenant, which
    had an active account holding `roles:manage`, without one. A tenant that had
    none (one without an ADMIN yet) loses nothing. Racing changes of one tenant
    take turns (PostgreSQL locks the tenant's row; SQLite's write lock)."""
    # SQLite: take the write lock first, so the checks inside see the last commit.
    atomic = database.atomic() if database.for_update else database.atomic("IMMEDIATE")
    with atomic:
        lock_tenant(tenant_id)
        had_manager = has_roles_manager(tenant_id)
        yield
        if had_manager and not has_roles_manager(tenant_id):
            raise LastAdmin
