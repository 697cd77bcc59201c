"""Tenant-defined roles (named sets of permissions), direct grants, and groups
of users that hold roles. ADMIN and USER stay the base role of each account
(`user.role`): they are the built-in roles and need no rows."""

import uuid

from peewee import (
    AutoField,
    CharField,
    DateTimeField,
    ForeignKeyField,
    Model,
    TextField,
    UUIDField,
)


def up(migrator, db):
    class Stub(Model):
        id = UUIDField(primary_key=True, default=uuid.uuid4)

        class Meta:
            database = db

    class Tenant(Stub):
        class Meta:
            table_name = "tenant"

    class User(Stub):
        class Meta:
            table_name = "user"

    class Role(Model):
        id = AutoField()
        tenant = ForeignKeyField(Tenant, on_delete="CASCADE")
        name = CharField(max_length=64)
        description = CharField(max_length=200, null=True)
        permissions = TextField()
        created_at = DateTimeField()
        updated_at = DateTimeField()

        class Meta:
            database = db
            table_name = "role"
            indexes = ((("tenant", "name"), True),)

    class RoleGrant(Model):
        id = AutoField()
        user = ForeignKeyField(User, on_delete="CASCADE")
        role = ForeignKeyField(Role, on_delete="CASCADE")

        class Meta:
            database = db
            table_name = "role_grant"
            indexes = ((("user", "role"), True),)

    class UserGroup(Model):
        id = UUIDField(primary_key=True, default=uuid.uuid4)
        tenant = ForeignKeyField(Tenant, on_delete="CASCADE")
        name = CharField(max_length=64)
        created_at = DateTimeField()

        class Meta:
            database = db
            table_name = "user_group"
            indexes = ((("tenant", "name"), True),)

    class GroupRole(Model):
        id = AutoField()
        group = ForeignKeyField(UserGroup, on_delete="CASCADE")
        role = ForeignKeyField(Role, on_delete="CASCADE")

        class Meta:
            database = db
            table_name = "group_role"
            indexes = ((("group", "role"), True),)

    class GroupMember(Model):
        id = AutoField()
        group = ForeignKeyField(UserGroup, on_delete="CASCADE")
        user = ForeignKeyField(User, on_delete="CASCADE")

        class Meta:
            database = db
            table_name = "group_member"
            indexes = ((("group", "user"), True), (("user",), False))

    db.create_tables([Role, RoleGrant, UserGroup, GroupRole, GroupMember])


def down(migrator, db):
    for table in ("group_member", "group_role", "user_group", "role_grant", "role"):
        db.execute_sql(f"DROP TABLE {table}")
