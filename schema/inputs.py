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


@strawberry.input(description="An OpenID Connect provider to register for the tenant.")
class AddIdentityProviderInput:
    name: str = strawberry.field(
        description="1 to 64 characters, unique in the tenant: the login button."
    )
    issuer: str = strawberry.field(
        description=(
            "The provider's issuer URL, as its ID tokens' iss: https:// (http:// only "
            "for a loopback host)."
        )
    )
    client_id: str = strawberry.field(description="The client id it gave the service.")
    client_secret: str | None = strawberry.field(
        default=None,
        description="Its client secret, sealed at rest; null for a public client.",
    )
    redirect_uris: list[str] = strawberry.field(
        description="The frontend URLs the provider may send the browser back to (1-10)"
    )
    allow_sign_up: bool = strawberry.field(
        default=False, description="Create an account (USER) for an unknown user."
    )
