"""signUp: a new account in the caller's tenant."""

from typing import Annotated

import strawberry
from strawberry import Info

from errors import EmailTaken
from models import Action, DuplicateEmail, Purpose, Role, User
from models.user import PROFILE_FIELDS
from resolvers.recovery import send_link
from schema.context import Context
from schema.inputs import SignUpInput
from schema.types import UserType
from validation import check_sign_up


async def sign_up(
    info: Info[Context, None],
    input: Annotated[SignUpInput, strawberry.argument(description="The new account.")],
) -> UserType:
    context = info.context
    await context.limits.sign_up(str(context.tenant.id), context.address)
    profile = {name: getattr(input, name) or None for name in PROFILE_FIELDS}
    email, profile = check_sign_up(input.email, input.password, profile)
    role = input.role or Role.USER
    password_hash = await context.hasher.hash(input.password)
    try:
        user = User.register(
            context.tenant, email, password_hash, role=role.value, **profile
        )
    except DuplicateEmail:
        raise EmailTaken() from None
    context.audit(Action.SIGNED_UP, actor=context.optional_user(), target=user)
    await send_link(context, user, Purpose.VERIFY)
    return UserType.from_row(user)
