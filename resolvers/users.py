"""users, setUserActive and unlockAccount: the tenant's accounts, for its ADMINs."""

from typing import Annotated

import strawberry
from strawberry import Info

from errors import BadUserInput, Forbidden, NotFound, Unauthenticated, raises
from models import Action, LastAdmin, Role, Session, User, database
from models.workers import run
from resolvers.login import account_key
from resolvers.pagination import check_page_size, key_of
from resolvers.update_profile import find_in_tenant
from schema.context import Context
from schema.types import UserConnection, UserType
from validation import MAX_EMAIL_LENGTH, check_text


@raises(Unauthenticated, Forbidden, BadUserInput)
async def users(
    info: Info[Context, None],
    first: Annotated[int, strawberry.argument(description="Page size, 1 to 100.")] = 20,
    after: Annotated[
        str | None, strawberry.argument(description="endCursor of the previous page.")
    ] = None,
    search: Annotated[
        str | None, strawberry.argument(description="Part of the email, any case.")
    ] = None,
    role: Annotated[
        Role | None, strawberry.argument(description="Only accounts with this role.")
    ] = None,
    active: Annotated[
        bool | None,
        strawberry.argument(description="Only active (or deactivated) ones."),
    ] = None,
) -> UserConnection:
    check_page_size(first)
    check_text(search, field="search", max_length=MAX_EMAIL_LENGTH)
    rows, total = await run(
        User.page,
        info.context.tenant,
        first=first + 1,
        after=key_of(after, "user"),
        search=search,
        role=role,
        active=active,
    )
    return UserConnection.of_page(rows, first=first, total=total)


@raises(Unauthenticated, Forbidden, NotFound)
async def set_user_active(
    info: Info[Context, None],
    email: Annotated[str, strawberry.argument(description="The account to change.")],
    active: Annotated[bool, strawberry.argument(description="false deactivates it.")],
) -> UserType:
    context = info.context
    actor = context.require_user()
    return UserType.from_row(await run(set_active, context, actor, email, active))


def set_active(context: Context, actor: User, email: str, active: bool) -> User:
    target = find_in_tenant(context.tenant.id, email)  # NotFound
    try:
        with database.atomic():
            updated = target.apply_changes({"active": active})
            if not active:
                Session.revoke_all(target)  # its tokens stop at once
            action = Action.USER_ACTIVATED if active else Action.USER_DEACTIVATED
            context.audit(action, actor=actor, target=updated)
    except LastAdmin:
        context.audit(
            Action.ACCESS_DENIED, actor=actor, target=target, detail="last admin"
        )
        raise Forbidden("A tenant must keep at least one active ADMIN.") from None
    return updated


@raises(Unauthenticated, Forbidden, NotFound)
async def unlock_account(
    info: Info[Context, None],
    email: Annotated[str, strawberry.argument(description="The locked account.")],
) -> UserType:
    """Forget the account's failed logins, so its owner may log in at once."""
    context = info.context
    target = await run(find_in_tenant, context.tenant.id, email)  # NotFound
    await context.limits.unlock(str(context.tenant.id), account_key(target.email))
    actor = context.require_user()
    await context.record(Action.ACCOUNT_UNLOCKED, actor=actor, target=target)
    return UserType.from_row(target)
