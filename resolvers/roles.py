"""Roles, grants and groups of a tenant: who may do what.

Reading needs `users:read`, changing needs `roles:manage` (declared on the
schema). No one gives what they do not hold: a role, grant or membership that
would hand out a service permission the caller lacks is FORBIDDEN. A change
that would leave no active holder of `roles:manage` is undone (FORBIDDEN).
"""

import contextlib
from collections.abc import Iterable, Iterator
from typing import Annotated
from uuid import UUID

import strawberry
from strawberry import Info

from auth.permissions import (
    BASE_ROLE_PERMISSIONS,
    BUILT_IN_ROLES,
    MAX_PERMISSIONS_PER_ROLE,
    SERVICE_PERMISSIONS,
    is_name,
    is_permission_name,
    missing_service_permissions,
)
from errors import BadUserInput, Forbidden, NotFound, Unauthenticated, raises
from models import Action, LastAdmin, User, database
from models.grants import (
    RoleDefinition,
    RoleGrant,
    UserGroup,
    guarded_change,
    holders_of,
)
from models.webhook import emit
from models.workers import run
from resolvers.update_profile import find_in_tenant
from schema.context import Context
from schema.types import GroupType, RoleDefinitionType, UserType
from validation import check_text

KEEP_MANAGER = "A tenant must keep an active account holding roles:manage."
Name = Annotated[str, strawberry.argument(description="The role's name.")]
GroupName = Annotated[str, strawberry.argument(description="The group's name.")]
Email = Annotated[str, strawberry.argument(description="The account's email.")]


@raises(Unauthenticated, Forbidden)
def permissions() -> list[str]:
    return list(SERVICE_PERMISSIONS)


@raises(Unauthenticated, Forbidden)
async def roles(info: Info[Context, None]) -> list[RoleDefinitionType]:
    defined = await run(RoleDefinition.of_tenant, info.context.tenant.id)
    built_in = [
        RoleDefinitionType(
            name=name,
            description=f"Built in: the base role {name}.",
            permissions=list(BASE_ROLE_PERMISSIONS[name]),
            built_in=True,
        )
        for name in BUILT_IN_ROLES
    ]
    return built_in + [role_type(role) for role in defined]


@raises(Unauthenticated, Forbidden)
async def groups(info: Info[Context, None]) -> list[GroupType]:
    return await run(group_types, info.context.tenant.id)


def group_types(tenant_id: UUID) -> list[GroupType]:
    return [group_type(group) for group in UserGroup.of_tenant(tenant_id)]


def group_type(group: UserGroup) -> GroupType:
    """Database work: the group's roles are read."""
    return GroupType.from_row(group, roles=group.role_names())


@raises(Unauthenticated, Forbidden, BadUserInput)
async def define_role(
    info: Info[Context, None],
    name: Name,
    permissions: Annotated[
        list[str], strawberry.argument(description="The service's and the tenant's.")
    ],
    description: Annotated[
        str | None, strawberry.argument(description="What the role is for.")
    ] = None,
) -> RoleDefinitionType:
    context = info.context
    check_role_name(name)
    check_permissions(permissions)
    check_text(description, field="description", max_length=200)
    await ensure_holds(context, permissions)
    role = await run(define, context, name, permissions, description)
    return role_type(role)


def define(
    context: Context, name: str, permissions: list[str], description: str | None
) -> RoleDefinition:
    with guarded(context):
        role = RoleDefinition.define(
            context.tenant.id, name, permissions=permissions, description=description
        )
        context.audit(Action.ROLE_DEFINED, actor=context.caller.user, detail=name)
    return role


@raises(Unauthenticated, Forbidden, NotFound, BadUserInput)
async def delete_role(info: Info[Context, None], name: Name) -> bool:
    context = info.context
    check_role_name(name)
    await run(delete, context, name)
    return True


def delete(context: Context, name: str) -> None:
    with guarded(context):
        role = find_role(context, name)
        holders = holders_of(role)
        role.delete_instance()
        context.audit(Action.ROLE_DELETED, actor=context.caller.user, detail=name)
        roles_changed(context, holders)


@raises(Unauthenticated, Forbidden, NotFound, BadUserInput)
async def grant_role(info: Info[Context, None], email: Email, role: Name) -> UserType:
    context = info.context
    check_role_name(role)
    found = await run(find_role, context, role)
    await ensure_holds(context, found.permission_list)
    user = await run(grant, context, email, found)
    return UserType.from_row(user)


def grant(context: Context, email: str, role: RoleDefinition) -> User:
    user = find_in_tenant(context.tenant.id, email)
    with database.atomic():
        if RoleGrant.grant(user, role):
            context.audit(
                Action.ROLE_GRANTED,
                actor=context.caller.user,
                target=user,
                detail=role.name,
            )
    return user


@raises(Unauthenticated, Forbidden, NotFound, BadUserInput)
async def revoke_role(info: Info[Context, None], email: Email, role: Name) -> UserType:
    context = info.context
    check_role_name(role)
    user = await run(revoke, context, email, role)
    return UserType.from_row(user)


def revoke(context: Context, email: str, name: str) -> User:
    with guarded(context):
        role = find_role(context, name)
        user = find_in_tenant(context.tenant.id, email)
        if RoleGrant.revoke(user, role):
            context.audit(
                Action.ROLE_REVOKED, actor=context.caller.user, target=user, detail=name
            )
    return user


@raises(Unauthenticated, Forbidden, NotFound, BadUserInput)
async def define_group(
    info: Info[Context, None],
    name: GroupName,
    roles: Annotated[
        list[str], strawberry.argument(description="Roles its members hold.")
    ],
) -> GroupType:
    context = info.context
    check_group_name(name)
    for role in roles:
        check_role_name(role, field="roles")
    found = await run(find_roles, context, roles)
    await ensure_holds(context, [p for role in found for p in role.permission_list])
    return await run(define_group_rows, context, name, found)


def define_group_rows(
    context: Context, name: str, roles: list[RoleDefinition]
) -> GroupType:
    with guarded(context):
        before = UserGroup.by_name(context.tenant.id, name)
        held = {role.name for role in before.roles()} if before else set()
        group = UserGroup.define(context.tenant.id, name, roles)
        detail = f"{name}: {', '.join(role.name for role in roles) or '-'}"
        context.audit(Action.GROUP_DEFINED, actor=context.caller.user, detail=detail)
        if held != {role.name for role in roles}:
            roles_changed(context, group.members())
    return group_type(group)


@raises(Unauthenticated, Forbidden, NotFound, BadUserInput)
async def delete_group(info: Info[Context, None], name: GroupName) -> bool:
    context = info.context
    check_group_name(name)
    await run(delete_group_rows, context, name)
    return True


def delete_group_rows(context: Context, name: str) -> None:
    with guarded(context):
        group = find_group(context, name)
        members = group.members()
        group.delete_instance()
        context.audit(Action.GROUP_DELETED, actor=context.caller.user, detail=name)
        roles_changed(context, members)


@raises(Unauthenticated, Forbidden, NotFound, BadUserInput)
async def add_to_group(
    info: Info[Context, None], email: Email, group: GroupName
) -> GroupType:
    context = info.context
    check_group_name(group)
    found = await run(find_group, context, group)
    held_by_group = await run(group_permissions, found)
    await ensure_holds(context, held_by_group)
    return await run(add_member, context, email, found)


def group_permissions(group: UserGroup) -> list[str]:
    return [p for role in group.roles() for p in role.permission_list]


def add_member(context: Context, email: str, group: UserGroup) -> GroupType:
    user = find_in_tenant(context.tenant.id, email)
    with database.atomic():
        if group.add_member(user):
            context.audit(
                Action.GROUP_MEMBER_ADDED,
                actor=context.caller.user,
                target=user,
                detail=group.name,
            )
    return group_type(group)


@raises(Unauthenticated, Forbidden, NotFound, BadUserInput)
async def remove_from_group(
    info: Info[Context, None], email: Email, group: GroupName
) -> GroupType:
    context = info.context
    check_group_name(group)
    return await run(remove_member, context, email, group)


def remove_member(context: Context, email: str, name: str) -> GroupType:
    with guarded(context):
        group = find_group(context, name)
        user = find_in_tenant(context.tenant.id, email)
        if group.remove_member(user):
            context.audit(
                Action.GROUP_MEMBER_REMOVED,
                actor=context.caller.user,
                target=user,
                detail=name,
            )
    return group_type(group)


# ---- the rules ---------------------------------------------------------------


def check_role_name(name: str, *, field: str = "name") -> None:
    if name in BUILT_IN_ROLES:
        raise BadUserInput(
            {field: f"{name} is built in: it is the base role, set with updateProfile."}
        )
    if not is_name(name):
        raise BadUserInput({field: "1 to 64 letters, digits, '.', '-' or '_'."})


def check_group_name(name: str) -> None:
    if not is_name(name):
        raise BadUserInput({"name": "1 to 64 letters, digits, '.', '-' or '_'."})


def check_permissions(names: list[str]) -> None:
    if len(names) > MAX_PERMISSIONS_PER_ROLE:
        raise BadUserInput({"permissions": f"At most {MAX_PERMISSIONS_PER_ROLE}."})
    bad = [name for name in names if not is_permission_name(name)]
    if bad:
        raise BadUserInput(
            {
                "permissions": "Lowercase letters, digits, '-' and '.', with exactly "
                f"one ':' (e.g. invoices:approve): not {bad[0][:100]!r}."
            }
        )


async def ensure_holds(context: Context, permissions: Iterable[str]) -> None:
    """No one gives a service permission they do not hold themselves."""
    held = (await context.grants()).permissions
    missing = missing_service_permissions(permissions, held=held)
    if missing:
        detail = f"would give {', '.join(missing)}"
        await context.record(
            Action.ACCESS_DENIED, actor=context.caller.user, detail=detail
        )
        raise Forbidden(f"You do not hold {missing[0]}, so you cannot give it.")


def roles_changed(context: Context, users: Iterable[User]) -> None:
    """A role or group went or changed: its holders' webhooks hear of it, as
    they do of a grant (the audit log has the one event, without targets)."""
    for user in users:
        emit(context.tenant.id, "user.roles_changed", user)


@contextlib.contextmanager
def guarded(context: Context, *, target: User | None = None) -> Iterator[None]:
    """A change undone, with FORBIDDEN, if it leaves no holder of roles:manage."""
    try:
        with guarded_change(context.tenant.id):
            yield
    except LastAdmin:
        actor = context.caller.user
        context.audit(
            Action.ACCESS_DENIED, actor=actor, target=target, detail="last manager"
        )
        raise Forbidden(KEEP_MANAGER) from None


def find_role(context: Context, name: str) -> RoleDefinition:
    role = RoleDefinition.by_name(context.tenant.id, name)
    if role is None:
        raise NotFound(f"No role named {name!r} in your tenant.")
    return role


def find_roles(context: Context, names: list[str]) -> list[RoleDefinition]:
    return [find_role(context, name) for name in dict.fromkeys(names)]


def find_group(context: Context, name: str) -> UserGroup:
    group = UserGroup.by_name(context.tenant.id, name)
    if group is None:
        raise NotFound(f"No group named {name!r} in your tenant.")
    return group


def role_type(role: RoleDefinition) -> RoleDefinitionType:
    return RoleDefinitionType(
        name=role.name,
        description=role.description,
        permissions=role.permission_list,
        built_in=False,
    )
