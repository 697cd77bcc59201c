"""me: the caller's own account."""

from strawberry import Info

from errors import Unauthenticated, raises
from schema.context import Context
from schema.types import PasswordPolicyType, UserType
from validation import POLICY


@raises(Unauthenticated)
def me(info: Info[Context, None]) -> UserType:
    return UserType.from_row(info.context.require_user())


@raises()
def password_policy() -> PasswordPolicyType:
    return PasswordPolicyType.from_policy(POLICY)
