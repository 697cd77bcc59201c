"""GraphQL inputs: only the declared fields exist, so nothing else can be assigned."""

import strawberry

import schema.types  # noqa: F401  # registers Role as a GraphQL enum
from models import Role
from schema.permissions import MANAGE_ROLES

TEXT = "At most 100 characters; null or left out: none."


@strawberry.input(description="A new account of the caller's tenant.")
class SignUpInput:
    email: str = strawberry.field(
        description="Unique in the tenant, regardless of case."
    )
    password: str = strawberry.field(description="Follows passwordPolicy.")
    role: Role | None = strawberry.field(
        default=Role.USER,
        description=(
            "USER when left out or null; another needs the permission roles:manage "
            "(and ADMIN, every service permission)."
        ),
        directives=[MANAGE_ROLES],
    )
    city: str | None = strawberry.field(default=strawberry.UNSET, description=TEXT)
    organization: str | None = strawberry.field(
        default=strawberry.UNSET, description=TEXT
    )
    designation: str | None = strawberry.field(
        default=strawberry.UNSET, description=TEXT
    )
    mobile: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="7 to 15 digits with an optional leading +.",
    )


@strawberry.input(
    description="Changes to one profile. A field left out stays; null clears it."
)
class UpdateProfileInput:
    email: str = strawberry.field(description="Whose profile: the account's email.")
    role: Role | None = strawberry.field(
        default=strawberry.UNSET,
        description=(
            "Needs roles:manage (ADMIN: every service permission). A tenant always "
            "keeps an active account holding roles:manage."
        ),
        directives=[MANAGE_ROLES],
    )
    city: str | None = strawberry.field(default=strawberry.UNSET, description=TEXT)
    organization: str | None = strawberry.field(
        default=strawberry.UNSET, description=TEXT
    )
    designation: str | None = strawberry.field(
        default=strawberry.UNSET, description=TEXT
    )
    mobile: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="7 to 15 digits with an optional leading +.",
    )
