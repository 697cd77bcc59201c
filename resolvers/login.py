"""login: trade an email and password for an access token."""

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
from models import Action, MfaChallenge, Tenant, User
from models.workers import run
from resolvers.auth_payload import open_session
from schema.context import Context
from schema.types import AuthPayload
from validation import check_login_password, email_key, normalize_email


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
    if context.settings.require_verified_email and not user.email_verified:
        raise EmailNotVerified()
    if user.mfa_enabled:
        mfa_token = new_token()
        await run(MfaChallenge.open, user, digest(mfa_token))
        raise MfaRequired(mfa_token)
    return await run(logged_in, context, user)


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
