"""signUp: a new account in the caller's tenant."""

from collections.abc import Mapping
from typing import Annotated

import strawberry
from strawberry import Info

from errors import (
    BadUserInput,
    EmailTaken,
    Forbidden,
    RateLimited,
    Unauthenticated,
    raises,
)
from models import Action, DuplicateEmail, Purpose, Role, User, database
from models.user import PROFILE_FIELDS
from models.workers import run
from resolvers.recovery import deliver_link, issue_link, may_mail
from resolvers.update_profile import ensure_may_give_admin
from schema.context import Context
from schema.inputs import SignUpInput
from schema.types import UserType
from validation import check_sign_up


@raises(
    BadUserInput,
    EmailTaken,
    Forbidden,
    RateLimited,
    (Unauthenticated, "a bad access token"),
)
async def sign_up(
    info: Info[Context, None],
    input: Annotated[SignUpInput, strawberry.argument(description="The new account.")],
) -> UserType:
    context = info.context
    await context.limits.sign_up(str(context.tenant.id), context.address)
    profile = {name: getattr(input, name) or None for name in PROFILE_FIELDS}
    email, profile = check_sign_up(input.email, input.password, profile)
    role = input.role or Role.USER
    actor = context.optional_user()
    if role == Role.ADMIN:
        await ensure_may_give_admin(context)  # Forbidden
    password_hash = await context.hasher.hash(input.password)
    new_account = {"role": role.value, **profile}
    user, token = await run(register, context, actor, email, password_hash, new_account)
    if await may_mail(context, user):  # after the commit
        deliver_link(context, user, Purpose.VERIFY, token)
    return UserType.from_row(user)


def register(
    context: Context,
    actor: User | None,
    email: str,
    password_hash: str,
    fields: Mapping[str, object],
) -> tuple[User, str]:
    """The account, its audit row and its verification link: one transaction."""
    try:
        with database.atomic():
            user = User.register(context.tenant, email, password_hash, **fields)
            context.audit(Action.SIGNED_UP, actor=actor, target=user)
            return user, issue_link(user, Purpose.VERIFY)
    except DuplicateEmail:
        raise EmailTaken() from None
