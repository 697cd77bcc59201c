"""Two-factor authentication: enrollTotp, confirmTotp, verifyMfa, disableTotp, resetMfa.

TOTP secrets are sealed with the data key at rest. A code (TOTP or recovery)
works once, and wrong codes count against USER_SERVICE_CODE_FAILURES_PER_ACCOUNT.
"""

from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

import strawberry
from strawberry import Info

from auth.opaque import digest, is_plausible
from auth.sealing import seal, unseal
from auth.totp import (
    looks_like_recovery_code,
    matching_step,
    new_recovery_codes,
    new_secret,
    normalize_recovery_code,
    provisioning_uri,
    qr_code_svg,
)
from errors import BadUserInput, Forbidden, Unauthenticated
from models import Action, MfaChallenge, RecoveryCode, Session, User, database
from resolvers.auth_payload import open_session
from resolvers.update_profile import find_in_tenant
from schema.context import Context
from schema.types import AuthPayload, TotpEnrollment
from validation import check_login_password

Code = Annotated[
    str, strawberry.argument(description="6 digits from the app, or a recovery code.")
]


async def enroll_totp(info: Info[Context, None]) -> TotpEnrollment:
    context = info.context
    user = context.require_user()
    if user.mfa_enabled:
        raise Forbidden("Two-factor authentication is on already; disable it first.")
    secret = new_secret()
    user.set_totp(totp_pending=seal(secret, key=str(context.settings.data_key)))
    uri = provisioning_uri(secret, account=user.email, issuer=context.tenant.name)
    return TotpEnrollment(secret=secret, otpauth_uri=uri, qr_code_svg=qr_code_svg(uri))


async def confirm_totp(
    info: Info[Context, None],
    code: Annotated[str, strawberry.argument(description="6 digits from the app.")],
) -> list[str]:
    context = info.context
    user = context.require_user()
    if user.mfa_enabled:
        raise Forbidden("Two-factor authentication is on already.")
    if user.totp_pending is None:
        raise BadUserInput({"code": "Call enrollTotp first."})
    await context.limits.check_codes(str(context.tenant.id), str(user.id))
    step = matching_step(opened(context, user.totp_pending), code, now=now())
    if step is None:
        await context.limits.code_failed(str(context.tenant.id), str(user.id))
        raise BadUserInput({"code": "The code does not match; check the clock."})
    codes = new_recovery_codes()
    with database.atomic():
        user.set_totp(
            totp_secret=user.totp_pending, totp_pending=None, totp_last_step=step
        )
        RecoveryCode.replace_all(
            user, [digest(normalize_recovery_code(c)) for c in codes]
        )
        context.audit(Action.MFA_ENABLED, actor=user, target=user)
    return codes


async def verify_mfa(
    info: Info[Context, None],
    mfa_token: Annotated[
        str, strawberry.argument(description="extensions.mfaToken of MFA_REQUIRED.")
    ],
    code: Code,
) -> AuthPayload:
    context = info.context
    tenant = str(context.tenant.id)
    await context.limits.check_guess(tenant, context.address)
    challenge = (
        MfaChallenge.pending(digest(mfa_token), context.tenant)
        if is_plausible(mfa_token)
        else None
    )
    user = User.by_id(context.tenant, challenge.user_id) if challenge else None
    if challenge is None or user is None or not user.active or not user.mfa_enabled:
        await context.limits.guess_failed(tenant, context.address)
        raise Unauthenticated("The MFA token is invalid or expired; log in again.")
    await check_code(context, user, code)  # Unauthenticated, RateLimited
    if not challenge.use():
        raise Unauthenticated("The MFA token was used already; log in again.")
    context.audit(Action.LOGIN_SUCCEEDED, actor=user, target=user, detail="with MFA")
    return open_session(context, user)


async def disable_totp(
    info: Info[Context, None],
    password: Annotated[
        str, strawberry.argument(description="The account's password.")
    ],
    code: Code,
) -> bool:
    context = info.context
    user = context.require_user()
    if not user.mfa_enabled:
        raise BadUserInput({"code": "Two-factor authentication is not on."})
    check_login_password(password)
    if not await context.hasher.matches(password, user.password_hash):
        raise Unauthenticated("The password is wrong.")
    await check_code(context, user, code)
    turn_off(user, keep=context.session_id)
    context.audit(Action.MFA_DISABLED, actor=user, target=user)
    return True


async def reset_mfa(
    info: Info[Context, None],
    email: Annotated[
        str, strawberry.argument(description="Whose two-factor to turn off.")
    ],
) -> bool:
    context = info.context
    target = find_in_tenant(context.tenant.id, email)  # NotFound
    turn_off(target, keep=None)
    context.audit(Action.MFA_RESET, actor=context.require_user(), target=target)
    return True


async def check_code(context: Context, user: User, code: str) -> None:
    """Accept a TOTP or recovery code once; count and refuse a wrong one."""
    tenant, account = str(context.tenant.id), str(user.id)
    await context.limits.check_codes(tenant, account)
    if not spend_code(context, user, code):
        await context.limits.code_failed(tenant, account)
        context.audit(Action.MFA_FAILED, target=user)
        raise Unauthenticated("The code is wrong or was used already.")


def spend_code(context: Context, user: User, code: str) -> bool:
    if looks_like_recovery_code(code):
        return RecoveryCode.use(user, digest(normalize_recovery_code(code)))
    assert user.totp_secret is not None  # noqa: S101  # callers check mfa_enabled
    step = matching_step(opened(context, user.totp_secret), code, now=now())
    return step is not None and user.accept_totp_step(step)


def turn_off(user: User, *, keep: UUID | None) -> None:
    """Turn two-factor off and end the user's sessions (but `keep`)."""
    with database.atomic():
        user.set_totp(totp_secret=None, totp_pending=None, totp_last_step=None)
        RecoveryCode.remove_all(user)
        Session.revoke_all(user, keep=keep)


def opened(context: Context, sealed: str) -> str:
    return unseal(sealed, keys=[str(context.settings.data_key)])


def now() -> datetime:
    return datetime.now(UTC)
