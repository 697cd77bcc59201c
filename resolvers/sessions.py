"""refreshSession, logout, logoutAll and revokeSessions.

A refresh token works once. Presenting a retired one again means it was copied:
the whole session (login family) is revoked, unless the token was retired less
than USER_SERVICE_REFRESH_REUSE_GRACE seconds ago, as when two tabs refresh at once.
"""

from datetime import timedelta
from typing import Annotated

import strawberry
from strawberry import Info

from auth.opaque import digest, is_plausible
from errors import Forbidden, NotFound, RateLimited, Unauthenticated, raises
from models import Action, RefreshToken, Session, User, database
from models.db import utcnow
from models.workers import run
from resolvers.auth_payload import next_pair
from resolvers.update_profile import find_in_tenant
from schema.context import Context
from schema.types import AuthPayload

RefreshTokenArgument = Annotated[
    str, strawberry.argument(description="The refreshToken of a login or refresh.")
]


@raises(Unauthenticated, RateLimited)
async def refresh_session(
    info: Info[Context, None], refresh_token: RefreshTokenArgument
) -> AuthPayload:
    context = info.context
    token = await find_refresh_token(context, refresh_token)  # Unauthenticated
    return await run(rotate, context, token)


def rotate(context: Context, token: RefreshToken) -> AuthPayload:
    """Retire the token and hand out the next pair, or end a copied token's session."""
    session = token.session
    user = User.by_id(context.tenant, session.user_id)
    if user is None or not user.active or token.expires_at <= utcnow():
        raise Unauthenticated("Invalid refresh token.")
    with database.atomic():
        if token.retire() or not is_reuse(context, token):
            return next_pair(context, user, session)
        session.revoke()  # committed before the error below is raised
        context.audit(Action.REFRESH_TOKEN_REUSED, target=user)
    raise Unauthenticated("This refresh token was already used; log in again.")


@raises((Unauthenticated, "unknown or foreign token"), RateLimited)
async def logout(
    info: Info[Context, None], refresh_token: RefreshTokenArgument
) -> bool:
    context = info.context
    session = (await find_refresh_token(context, refresh_token)).session
    await run(end_session, context, session)
    return True


def end_session(context: Context, session: Session) -> None:
    session.revoke()
    user = User.by_id(context.tenant, session.user_id)
    detail = f"session {session.id}"
    context.audit(Action.SESSION_ENDED, actor=user, target=user, detail=detail)


@raises(Unauthenticated)
async def logout_all(info: Info[Context, None]) -> bool:
    user = info.context.require_user()
    await run(revoke_all, info.context, user, actor=user)
    return True


@raises(Unauthenticated, Forbidden, NotFound)
async def revoke_sessions(
    info: Info[Context, None],
    email: Annotated[str, strawberry.argument(description="Whose sessions to end.")],
) -> bool:
    context = info.context
    target = await run(find_in_tenant, context.tenant.id, email)  # NotFound
    await run(revoke_all, context, target, actor=context.require_user())
    return True


def revoke_all(context: Context, user: User, *, actor: User) -> None:
    with database.atomic():
        Session.revoke_all(user)
        context.audit(Action.SESSIONS_REVOKED, actor=actor, target=user)


async def find_refresh_token(context: Context, presented: str) -> RefreshToken:
    """The token, if it belongs to a live session of the caller's tenant.

    A presented token is a guess until found: it counts against the client
    address before it is looked up.
    """
    await context.limits.reserve_guess(str(context.tenant.id), context.address)
    token = (
        await run(RefreshToken.by_digest, digest(presented))
        if is_plausible(presented)
        else None
    )
    if token is None or token.session.tenant_id != context.tenant.id:
        raise Unauthenticated("Invalid refresh token.")
    session = token.session
    if session.revoked_at is not None or session.expires_at <= utcnow():
        raise Unauthenticated("This session has ended; log in again.")
    return token


def is_reuse(context: Context, token: RefreshToken) -> bool:
    """Whether a token found retired was retired longer ago than the grace window.

    `retired_at` is None when a racing request retired it after we read it.
    """
    if token.retired_at is None:
        return False
    grace = timedelta(seconds=context.settings.refresh_reuse_grace)
    return bool(utcnow() - token.retired_at > grace)
