"""GraphQL output types, built explicitly from rows so no column leaks by accident."""

from datetime import UTC, datetime
from typing import Self

import strawberry

from models import Role, User
from validation import PasswordPolicy

strawberry.enum(Role, name="Role", description="What an account may do.")


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC)


@strawberry.type(name="User", description="An account of the caller's tenant.")
class UserType:
    id: strawberry.ID = strawberry.field(description="Stable and opaque.")
    email: str = strawberry.field(description="The address the account signs in with.")
    role: Role = strawberry.field(description="ADMIN or USER.")
    city: str | None = strawberry.field(description="At most 100 characters.")
    organization: str | None = strawberry.field(description="At most 100 characters.")
    designation: str | None = strawberry.field(description="At most 100 characters.")
    mobile: str | None = strawberry.field(
        description="7 to 15 digits with an optional leading +."
    )
    created_at: datetime = strawberry.field(description="When the account was made.")
    updated_at: datetime = strawberry.field(description="When it last changed.")

    @classmethod
    def from_row(cls, user: User) -> Self:
        return cls(
            id=strawberry.ID(str(user.id)),
            email=user.email,
            role=Role(user.role),
            city=user.city,
            organization=user.organization,
            designation=user.designation,
            mobile=user.mobile,
            created_at=_utc(user.created_at),
            updated_at=_utc(user.updated_at),
        )


@strawberry.type(description="What a successful login returns.")
class AuthPayload:
    access_token: str = strawberry.field(
        description="Send as 'Authorization: Bearer <accessToken>'."
    )
    token_type: str = strawberry.field(description='Always "Bearer".')
    expires_in: int = strawberry.field(description="Seconds the access token lives.")
    user: UserType = strawberry.field(description="The account that logged in.")


@strawberry.type(name="PasswordPolicy", description="The rules a new password follows.")
class PasswordPolicyType:
    min_length: int = strawberry.field(description="Fewest characters.")
    max_length: int = strawberry.field(
        description="Most characters; all of them count."
    )
    requires_letter: bool = strawberry.field(description="Needs a letter.")
    requires_digit: bool = strawberry.field(description="Needs a digit.")
    requires_special: bool = strawberry.field(
        description="Needs a character that is neither a letter nor a digit."
    )

    @classmethod
    def from_policy(cls, policy: PasswordPolicy) -> Self:
        return cls(
            min_length=policy.min_length,
            max_length=policy.max_length,
            requires_letter=policy.requires_letter,
            requires_digit=policy.requires_digit,
            requires_special=policy.requires_special,
        )
