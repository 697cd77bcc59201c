"""login: trade an email and password for an access token."""

from typing import Annotated

import strawberry
from strawberry import Info

from auth.opaque import digest, new_token
from errors import BadUserInput, EmailNotVerified, MfaRequired, Unauthenticated
from models import Action, MfaChallenge, User
from resolvers.auth_payload import open_session
from schema.context import Context
from schema.types import AuthPayload
from validation import check_login_password, email_key, normalize_email


async def login(
    info: Info[Context, None],
    email: Annotated[str, strawberry.argument(description="The account's email.")],
    password: Annotated[str, strawberry.argument(description="Its password.")],
) -> AuthPayload:
    context = info.context
    check_login_password(password)
    tenant, account = str(context.tenant.id), account_key(email)
    await context.limits.check_login(tenant, account, context.address)  # RateLimited
    user = find_account(context, email)
    # An unknown email is checked against a dummy hash: same answer, same time.
    stored = user.password_hash if user else None
    matched = await context.hasher.matches(password, stored)
    # A deactivated account answers like a wrong password: nothing to learn.
    if not matched or user is None or not user.active:
        locked = await context.limits.login_failed(tenant, account, context.address)
        context.audit(Action.LOGIN_FAILED, target=user)
        if locked:
            context.audit(Action.ACCOUNT_LOCKED, target=user)
        raise Unauthenticated("Wrong email or password.")
    await context.limits.login_succeeded(tenant, account)
    if context.settings.require_verified_email and not user.email_verified:
        raise EmailNotVerified()
    if user.mfa_enabled:
        mfa_token = new_token()
        MfaChallenge.open(user, digest(mfa_token))
        raise MfaRequired(mfa_token)
    context.audit(Action.LOGIN_SUCCEEDED, actor=user, target=user)
    return open_session(context, user)


def find_account(context: Context, email: str) -> User | None:
    try:
        return User.by_email(context.tenant, normalize_email(email))
    except BadUserInput:
        return None


def account_key(email: str) -> str:
    """What failed logins are counted against, known account or not."""
    try:
        return email_key(normalize_email(email))
    except BadUserInput:
        return email_key(email.strip()[:254].encode("utf-8", "replace").decode())
