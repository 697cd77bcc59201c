"""me: the caller's own account."""

from strawberry import Info

from schema.context import Context
from schema.types import PasswordPolicyType, UserType
from validation import POLICY


def me(info: Info[Context, None]) -> UserType:
    return UserType.from_row(info.context.require_user())


def password_policy() -> PasswordPolicyType:
    return PasswordPolicyType.from_policy(POLICY)
