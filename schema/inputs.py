"""GraphQL inputs: only the declared fields exist, so nothing else can be assigned."""

import strawberry

from models import Role as RoleValue
from schema.permissions import ADMIN_ONLY
from schema.types import Role


@strawberry.input(description="A new account of the caller's tenant.")
class SignUpInput:
    email: str = strawberry.field(description="Unique in the tenant, regardless of case.")
    password: str = strawberry.field(description="Follows passwordPolicy.")
    role: Role = strawberry.field(
        default=RoleValue.USER,
        description="ADMIN needs an ADMIN's access token.",
        directives=[ADMIN_ONLY],
    )
    city: str | None = None
    organization: str | None = None
    designation: str | None = None
    mobile: str | None = strawberry.field(
        default=None, description="7 to 15 digits with an optional leading +."
    )


@strawberry.input(
    description="Changes to one profile. A field left out stays; null clears it."
)
class UpdateProfileInput:
    email: str = strawberry.field(description="Whose profile: the account's email.")
    role: Role | None = strawberry.field(
        default=strawberry.UNSET,
        description="ADMIN only. A tenant always keeps at least one ADMIN.",
        directives=[ADMIN_ONLY],
    )
    city: str | None = strawberry.UNSET
    organization: str | None = strawberry.UNSET
    designation: str | None = strawberry.UNSET
    mobile: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="7 to 15 digits with an optional leading +.",
    )
