"""signUp: a new account in the caller's tenant."""

from strawberry import Info

from errors import EmailTaken
from models import DuplicateEmail, User
from models.user import PROFILE_FIELDS
from schema.context import Context
from schema.inputs import SignUpInput
from schema.types import UserType
from validation import check_sign_up


async def sign_up(info: Info[Context, None], input: SignUpInput) -> UserType:
    context = info.context
    profile = {name: getattr(input, name) for name in PROFILE_FIELDS}
    email, profile = check_sign_up(input.email, input.password, profile)
    password_hash = await context.hasher.hash(input.password)
    try:
        user = User.register(
            context.tenant, email, password_hash, role=input.role.value, **profile
        )
    except DuplicateEmail:
        raise EmailTaken() from None
    return UserType.from_row(user)
