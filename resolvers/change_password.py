"""changePassword: needs the current password; ends the user's other sessions."""

from typing import Annotated

import strawberry
from strawberry import Info

from errors import BadUserInput, RateLimited, Unauthenticated, raises
from models import Action, EmailToken, Purpose, Session, User, database
from models.workers import run
from resolvers.login import account_key, password_matches
from schema.context import Context
from validation import check_login_password, check_new_password


@raises((Unauthenticated, "wrong current password"), BadUserInput, RateLimited)
async def change_password(
    info: Info[Context, None],
    current_password: Annotated[
        str, strawberry.argument(description="Proves it is you.")
    ],
    new_password: Annotated[
        str, strawberry.argument(description="Follows passwordPolicy.")
    ],
) -> bool:
    context = info.context
    user = context.require_user()
    check_login_password(current_password, field="currentPassword")
    check_new_password(new_password, email=user.email, field="newPassword")
    # A stolen access token must not make guessing the password free.
    account = account_key(user.email)
    if not await password_matches(context, account, current_password, user):
        raise Unauthenticated("The current password is wrong.")
    password_hash = await context.hasher.hash(new_password)
    await run(change, context, user, password_hash)
    return True


def change(context: Context, user: User, password_hash: str) -> None:
    with database.atomic():
        user.set_password_hash(password_hash)
        EmailToken.spend_all(user, Purpose.RESET)  # old reset links end too
        Session.revoke_all(user, keep=context.session_id)
        context.audit(Action.PASSWORD_CHANGED, actor=user, target=user)
