"""Who may call what, declared on the schema and printed in the SDL as directives.

`@authenticated` fields need a valid access token; `@requiresRole(role: ADMIN)`
fields (and input fields) need an ADMIN of the caller's tenant. Each check reads
the account afresh, so a role change applies to tokens already issued.
"""

from typing import Any

import strawberry
from strawberry.extensions import FieldExtension
from strawberry.permission import BasePermission, PermissionExtension
from strawberry.schema_directive import Location
from strawberry.types.base import has_object_definition
from strawberry.types.unset import UNSET

from errors import Forbidden, Unauthenticated
from models import Action, Role, User
from schema.context import Context


@strawberry.schema_directive(
    name="authenticated",
    locations=[Location.FIELD_DEFINITION],
    description="Needs 'Authorization: Bearer <accessToken>'; else UNAUTHENTICATED.",
)
class Authenticated:
    pass


@strawberry.schema_directive(
    name="requiresRole",
    locations=[Location.FIELD_DEFINITION, Location.INPUT_FIELD_DEFINITION],
    description=(
        "Needs an access token of an account with this role; else FORBIDDEN. "
        "On an input field: only when the value differs from the default."
    ),
)
class RequiresRole:
    role: Role


ADMIN_ONLY = RequiresRole(role=Role.ADMIN)


class IsAuthenticated(BasePermission):
    message = "Authentication required."
    error_extensions = {"code": Unauthenticated.code}
    _schema_directive = Authenticated()

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        context: Context = info.context
        context.require_user()  # raises Unauthenticated
        return True


class HasRole(BasePermission):
    message = Forbidden.default_message
    error_extensions = {"code": Forbidden.code}

    def __init__(self, role: Role) -> None:
        self.role = role

    @property
    def schema_directive(self) -> object:
        return RequiresRole(role=self.role)

    async def has_permission(
        self, source: Any, info: strawberry.Info, **kwargs: Any
    ) -> bool:
        context: Context = info.context
        user = context.require_user()
        return has_role(user, self.role) or await denied(info, user)


@strawberry.schema_directive(
    name="selfOrRole",
    locations=[Location.FIELD_DEFINITION],
    description="Only the account itself or an account with this role; else FORBIDDEN.",
)
class SelfOrRole:
    role: Role


class IsSelfOrAdmin(BasePermission):
    """On a field of User: the caller is that user, or an ADMIN of the tenant."""

    message = Forbidden.default_message
    error_extensions = {"code": Forbidden.code}
    _schema_directive = SelfOrRole(role=Role.ADMIN)

    async def has_permission(
        self, source: Any, info: strawberry.Info, **kwargs: Any
    ) -> bool:
        context: Context = info.context
        user = context.require_user()
        if str(user.id) == str(source.id) or user.is_admin:
            return True
        return await denied(info, user)


class InputFieldRoles(BasePermission):
    """Enforce `@requiresRole` on the input fields of a field's arguments.

    Without a token such an input field is FORBIDDEN; with one, the account's
    role decides. The directive itself is printed on the input field.
    """

    message = Forbidden.default_message
    error_extensions = {"code": Forbidden.code}

    async def has_permission(
        self, source: Any, info: strawberry.Info, **kwargs: Any
    ) -> bool:
        context: Context = info.context
        for role in _roles_needed(kwargs.values()):
            user = context.optional_user()
            if user is None or not has_role(user, role):
                return await denied(info, user)
        return True


async def denied(info: strawberry.Info, user: User | None) -> bool:
    """Record a refusal in the audit log; False, for `return ... or denied()`."""
    context: Context = info.context
    await context.record(Action.ACCESS_DENIED, actor=user, detail=info.field_name)
    return False


def has_role(user: User, role: Role) -> bool:
    return role == Role.USER or user.role == role


def _roles_needed(arguments: Any) -> set[Role]:
    needed: set[Role] = set()
    for argument in arguments:
        if not has_object_definition(argument):
            continue
        for field in argument.__strawberry_definition__.fields:
            value = getattr(argument, field.python_name, UNSET)
            # null is no role: signUp reads it as USER, updateProfile refuses it.
            if value in (UNSET, None, field.default):
                continue
            needed |= {
                directive.role
                for directive in field.directives
                if isinstance(directive, RequiresRole)
            }
    return needed


def authenticated() -> list[FieldExtension]:
    return [PermissionExtension([IsAuthenticated()])]


def requires_role(role: Role) -> list[FieldExtension]:
    return [PermissionExtension([HasRole(role)])]


def self_or_admin() -> list[FieldExtension]:
    return [PermissionExtension([IsSelfOrAdmin()])]


def guards_input_roles() -> list[FieldExtension]:
    return [PermissionExtension([InputFieldRoles()], use_directives=False)]
