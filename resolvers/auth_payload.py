"""The pair a login or a refresh hands out: an access token and a refresh token."""

from datetime import UTC, datetime, timedelta

from auth.opaque import digest, new_token
from auth.permissions import grants_of
from auth.tokens import issue_access_token
from models import RefreshToken, Session, User, database
from models.db import utcnow
from models.grants import access_of
from schema.context import Context
from schema.types import AuthPayload, UserType


def open_session(context: Context, user: User) -> AuthPayload:
    """Start a session (a login family) for `user` and hand out its first pair."""
    settings = context.settings
    with database.atomic():
        session = Session.open(
            user,
            ttl=settings.refresh_token_ttl,
            user_agent=context.user_agent,
            ip=context.client_ip,
        )
        # Past the cap, the least recently used session makes room.
        Session.end_least_recently_used(user, keep=settings.max_sessions_per_user)
        return next_pair(context, user, session)


def next_pair(context: Context, user: User, session: Session) -> AuthPayload:
    """A fresh pair in `session`, whose token replaces the family's live one."""
    settings = context.settings
    # Touching the session first locks its row (PostgreSQL) until the commit:
    # two refreshes of one family take turns, and only the last token lives.
    session.touch(ttl=settings.refresh_token_ttl)
    RefreshToken.retire_live(session)
    refresh_token = new_token()
    RefreshToken.create(
        digest=digest(refresh_token),
        session=session,
        expires_at=utcnow() + timedelta(seconds=settings.refresh_token_ttl),
    )
    now = datetime.now(UTC)
    access_token = issue_access_token(
        user_id=user.id,
        tenant_id=context.tenant.id,
        session_id=session.id,
        grants=grants_of(user.role, access_of(user).roles),
        key=context.keys.signing_key(now),
        issuer=settings.issuer,
        ttl=settings.access_token_ttl,
        now=now,
    )
    return AuthPayload(
        access_token=access_token,
        token_type="Bearer",  # noqa: S106  # the scheme, not a secret
        expires_in=settings.access_token_ttl,
        refresh_token=refresh_token,
        refresh_expires_in=settings.refresh_token_ttl,
        user=UserType.from_row(user),
    )
