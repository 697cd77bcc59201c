"""Who may call what, declared on the schema and printed in the SDL as directives.

`@authenticated` fields need a valid access token; `@requiresPermission` fields
need an account of the caller's tenant holding that permission (through its
base role, a role granted to it, or a group's). Input fields with
`@permissionToSet` need it only when set. Permissions are read afresh for each
request, so a revoked grant stops the next request of a token already issued.
"""

from typing import Any

import strawberry
from strawberry.extensions import FieldExtension
from strawberry.permission import BasePermission, PermissionExtension
from strawberry.schema_directive import Location
from strawberry.types.base import has_object_definition
from strawberry.types.unset import UNSET

from errors import Forbidden, Unauthenticated
from models import Action, User
from schema.context import Context


@strawberry.schema_directive(
    name="authenticated",
    locations=[Location.FIELD_DEFINITION],
    description="Needs 'Authorization: Bearer <accessToken>'; else UNAUTHENTICATED.",
)
class Authenticated:
    pass


@strawberry.schema_directive(
    name="requiresPermission",
    locations=[Location.FIELD_DEFINITION],
    description=(
        "Needs an access token of an account holding this permission; else "
        "FORBIDDEN (UNAUTHENTICATED without a token)."
    ),
)
class RequiresPermission:
    permission: str


@strawberry.schema_directive(
    name="permissionToSet",
    locations=[Location.INPUT_FIELD_DEFINITION],
    description=(
        "Setting this input field (to anything but its default) needs this "
        "permission; else FORBIDDEN."
    ),
)
class PermissionToSet:
    permission: str


MANAGE_ROLES = PermissionToSet(permission="roles:manage")


class IsAuthenticated(BasePermission):
    message = "Authentication required."
    error_extensions = {"code": Unauthenticated.code}
    _schema_directive = Authenticated()

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        context: Context = info.context
        context.require_user()  # raises Unauthenticated
        return True


class HasPermission(BasePermission):
    message = Forbidden.default_message
    error_extensions = {"code": Forbidden.code}

    def __init__(self, permission: str) -> None:
        self.permission = permission

    @property
    def schema_directive(self) -> object:
        return RequiresPermission(permission=self.permission)

    async def has_permission(
        self, source: Any, info: strawberry.Info, **kwargs: Any
    ) -> bool:
        context: Context = info.context
        user = context.require_user()
        return await context.holds(self.permission) or await denied(info, user)


@strawberry.schema_directive(
    name="selfOrPermission",
    locations=[Location.FIELD_DEFINITION],
    description=(
        "Only the account itself or an account holding this permission; else FORBIDDEN."
    ),
)
class SelfOrPermission:
    permission: str


class IsSelfOrReader(BasePermission):
    """On a field of User: the caller is that user, or holds `users:read`."""

    message = Forbidden.default_message
    error_extensions = {"code": Forbidden.code}
    _schema_directive = SelfOrPermission(permission="users:read")

    async def has_permission(
        self, source: Any, info: strawberry.Info, **kwargs: Any
    ) -> bool:
        context: Context = info.context
        user = context.require_user()
        if str(user.id) == str(source.id) or await context.holds("users:read"):
            return True
        return await denied(info, user)


class InputFieldPermissions(BasePermission):
    """Enforce `@permissionToSet` on the input fields of a field's arguments.

    Without a token such an input field is FORBIDDEN; with one, the account's
    permissions decide.
    """

    message = Forbidden.default_message
    error_extensions = {"code": Forbidden.code}

    async def has_permission(
        self, source: Any, info: strawberry.Info, **kwargs: Any
    ) -> bool:
        context: Context = info.context
        for permission in _permissions_needed(kwargs.values()):
            user = context.optional_user()
            if user is None or not await context.holds(permission):
                return await denied(info, user)
        return True


async def denied(info: strawberry.Info, user: User | None) -> bool:
    """Record a refusal in the audit log; False, for `return ... or denied()`."""
    context: Context = info.context
    await context.record(Action.ACCESS_DENIED, actor=user, detail=info.field_name)
    return False


def _permissions_needed(arguments: Any) -> set[str]:
    needed: set[str] = set()
    for argument in arguments:
        if not has_object_definition(argument):
            continue
        for field in argument.__strawberry_definition__.fields:
            value = getattr(argument, field.python_name, UNSET)
            # null is no role: signUp reads it as USER, updateProfile refuses it.
            if value in (UNSET, None, field.default):
                continue
            needed |= {
                directive.permission
                for directive in field.directives
                if isinstance(directive, PermissionToSet)
            }
    return needed


def authenticated() -> list[FieldExtension]:
    return [PermissionExtension([IsAuthenticated()])]


def requires_permission(permission: str) -> list[FieldExtension]:
    return [PermissionExtension([HasPermission(permission)])]


def self_or_reader() -> list[FieldExtension]:
    return [PermissionExtension([IsSelfOrReader()])]


def guards_input_permissions() -> list[FieldExtension]:
    return [PermissionExtension([InputFieldPermissions()], use_directives=False)]
