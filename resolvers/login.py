"""login: trade an email and password for an access token."""

from datetime import timedelta
from typing import Annotated

import strawberry
from strawberry import Info

from auth.opaque import digest, new_token
from errors import (
    BadUserInput,
    EmailNotVerified,
    MfaRequired,
    RateLimited,
    Unauthenticated,
    raises,
)
from models import Action, MfaChallenge, Session, Tenant, User
from models.db import utcnow
from models.workers import run
from resolvers.auth_payload import open_session
from schema.context import Context
from schema.types import AuthPayload
from validation import check_login_password, email_key, normalize_email

# How recent the login of an account without a password must be to stand in
# for it (email change, deletion).
FRESH_LOGIN = timedelta(minutes=10)
NOT_PROVEN = (
    "The password is wrong (an account without one: its external login is over "
    "10 minutes old; sign in again)."
)
STALE_LOGIN = "Log in again: adding a way in needs a login of the last 10 minutes."
PROOF = (
    "Proves it is you: the password (an account without one: anything, within "
    "10 minutes of its external login)."
)


@raises(
    (Unauthenticated, "wrong email or password"),
    BadUserInput,
    RateLimited,
    MfaRequired,
    EmailNotVerified,
)
async def login(
    info: Info[Context, None],
    email: Annotated[str, strawberry.argument(description="The account's email.")],
    password: Annotated[str, strawberry.argument(description="Its password.")],
) -> AuthPayload:
    context = info.context
    check_login_password(password)
    user = await run(find_account, context.tenant, email)
    # An unknown email is counted, and checked against a dummy hash, like a
    # known one: same answer, same time. A deactivated account answers like a
    # wrong password: nothing to learn.
    matched = await password_matches(context, account_key(email), password, user)
    if not matched or user is None or not user.active:
        raise Unauthenticated("Wrong email or password.")
    return await signed_in(context, user)


async def signed_in(
    context: Context, user: User, *, detail: str | None = None
) -> AuthPayload:
    """The rest of a login once the account is known and may sign in: a
    verified email when the tenant asks for one, then the second factor when
    the account has TOTP on (MfaRequired), else a new session."""
    if context.settings.require_verified_email and not user.email_verified:
        raise EmailNotVerified()
    if user.mfa_enabled:
        mfa_token = new_token()
        await run(MfaChallenge.open, user, digest(mfa_token))
        raise MfaRequired(mfa_token)
    return await run(logged_in, context, user, detail=detail)


async def password_matches(
    context: Context, account: str, password: str, user: User | None
) -> bool:
    """Judge one password guess of an account, counted before it is judged.

    Every check of a password counts: login, and the current password that
    changePassword and disableTotp ask for. A failure is audited; a success
    forgets the account's failures.
    """
    tenant = str(context.tenant.id)
    await context.limits.reserve_login(tenant, account, context.address)  # RateLimited
    stored = user.password_hash if user is not None else None
    if await context.hasher.matches(password, stored):
        await context.limits.unlock(tenant, account)
        return True
    locked = await context.limits.is_locked(tenant, account)
    await run(audit_failure, context, user, locked=locked)
    return False


async def proves_owner(context: Context, user: User, password: str) -> bool:
    """The caller's proof that the account is theirs: its password, counted like
    a login; for an account without one, a fresh login of this very session
    (only an external login opens one), within FRESH_LOGIN."""
    if user.has_password:
        return await password_matches(context, account_key(user.email), password, user)
    return await is_fresh_login(context, user)


async def is_fresh_login(context: Context, user: User) -> bool:
    """Whether the caller's session was opened by a login within FRESH_LOGIN
    (refreshes do not count)."""
    session_id = context.session_id
    since = utcnow() - FRESH_LOGIN
    return session_id is not None and await run(
        Session.began_since, session_id, user, since
    )


async def require_fresh_login(context: Context, user: User) -> None:
    """Adding a way in (a passkey, a linked identity) needs a recent login: a
    stolen access token must not become a lasting way into the account."""
    if not await is_fresh_login(context, user):
        raise Unauthenticated(STALE_LOGIN)


def audit_failure(context: Context, user: User | None, *, locked: bool) -> None:
    context.audit(Action.LOGIN_FAILED, target=user)
    if locked:
        context.audit(Action.ACCOUNT_LOCKED, target=user)


def logged_in(
    context: Context, user: User, *, detail: str | None = None
) -> AuthPayload:
    context.audit(Action.LOGIN_SUCCEEDED, actor=user, target=user, detail=detail)
    return open_session(context, user)


def find_account(tenant: Tenant, email: str) -> User | None:
    try:
        return User.by_email(tenant, normalize_email(email))
    except BadUserInput:
        return None


def account_key(email: str) -> str:
    """What failed logins are counted against, known account or not."""
    try:
        return email_key(normalize_email(email))
    except BadUserInput:
        return email_key(email.strip()[:254].encode("utf-8", "replace").decode())
