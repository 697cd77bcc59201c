"""deleteAccount (the caller's own) and deleteUser (an ADMIN's, in the tenant).

One transaction removes the account; the foreign keys cascade to everything
tied to it (sessions and their refresh tokens, mailed links, two-factor state,
passkeys and their challenges, role grants and group memberships). Audit
events, and the webhook events not yet purged, keep only its id. It runs in
`guarded_change`: the last holder of `roles:manage` stays.
"""

from typing import Annotated

import strawberry
from strawberry import Info

from errors import (
    BadUserInput,
    Forbidden,
    NotFound,
    RateLimited,
    Unauthenticated,
    raises,
)
from models import Action, AuditEvent, User
from models.webhook import WebhookEvent
from models.workers import run
from resolvers.login import NOT_PROVEN, PROOF, proves_owner
from resolvers.roles import guarded
from resolvers.update_profile import find_in_tenant
from schema.context import Context
from validation import check_login_password


@raises(
    (Unauthenticated, "no access token, or a wrong password"),
    (Forbidden, "the last holder of roles:manage"),
    BadUserInput,
    RateLimited,
)
async def delete_account(
    info: Info[Context, None],
    password: Annotated[str, strawberry.argument(description=PROOF)],
) -> bool:
    context = info.context
    user = context.require_user()
    if user.has_password:
        check_login_password(password)
    if not await proves_owner(context, user, password):
        raise Unauthenticated(NOT_PROVEN)
    await run(remove, context, user, actor=user)
    return True


@raises(Unauthenticated, Forbidden, NotFound)
async def delete_user(
    info: Info[Context, None],
    email: Annotated[str, strawberry.argument(description="The account to delete.")],
) -> bool:
    context = info.context
    actor = context.require_user()
    target = await run(find_in_tenant, context.tenant.id, email)  # NotFound
    await run(remove, context, target, actor=actor)
    return True


def remove(context: Context, user: User, *, actor: User) -> None:
    with guarded(context, target=user):  # Forbidden
        user.delete_instance()
        context.audit(Action.ACCOUNT_DELETED, actor=actor, target=user)
        AuditEvent.forget_account(user.tenant_id, user.id)
        WebhookEvent.forget_user(user.tenant_id, user.id)
