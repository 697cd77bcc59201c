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
from errors import (
    BadUserInput,
    Forbidden,
    NotFound,
    RateLimited,
    Unauthenticated,
    raises,
)
from models import Action, MfaChallenge, RecoveryCode, Session, User, database
from models.workers import run
from resolvers.login import account_key, logged_in, password_matches
from resolvers.update_profile import find_in_tenant
from schema.context import Context
from schema.types import AuthPayload, TotpEnrollment
from validation import check_login_password

Code = Annotated[
    str, strawberry.argument(description="6 digits from the app, or a recovery code.")
]


@raises(Unauthenticated, (Forbidden, "already on"))
async def enroll_totp(info: Info[Context, None]) -> TotpEnrollment:
    context = info.context
    user = context.require_user()
    if user.mfa_enabled:
        raise Forbidden("Two-factor authentication is on already; disable it first.")
    secret = new_secret()
    sealed = seal(secret, key=str(context.settings.data_key))
    await run(user.set_totp, totp_pending=sealed)
    uri = provisioning_uri(secret, account=user.email, issuer=context.tenant.name)
    return TotpEnrollment(secret=secret, otpauth_uri=uri, qr_code_svg=qr_code_svg(uri))


@raises(Unauthenticated, BadUserInput, RateLimited, (Forbidden, "already on"))
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
    tenant, account = str(context.tenant.id), str(user.id)
    await context.limits.reserve_code(tenant, account)  # RateLimited
    step = matching_step(opened(context, user.totp_pending), code, now=now())
    if step is None:
        raise BadUserInput({"code": "The code does not match; check the clock."})
    await context.limits.code_succeeded(tenant, account)
    codes = new_recovery_codes()
    await run(turn_on, context, user, step, codes)
    return codes


def turn_on(context: Context, user: User, step: int, codes: list[str]) -> None:
    with database.atomic():
        user.set_totp(
            totp_secret=user.totp_pending, totp_pending=None, totp_last_step=step
        )
        RecoveryCode.replace_all(
            user, [digest(normalize_recovery_code(c)) for c in codes]
        )
        context.audit(Action.MFA_ENABLED, actor=user, target=user)


@raises(Unauthenticated, RateLimited)
async def verify_mfa(
    info: Info[Context, None],
    mfa_token: Annotated[
        str, strawberry.argument(description="extensions.mfaToken of MFA_REQUIRED.")
    ],
    code: Code,
) -> AuthPayload:
    context = info.context
    await context.limits.reserve_guess(str(context.tenant.id), context.address)
    challenge, user = await run(pending_challenge, context, mfa_token)
    if challenge is None or user is None:
        raise Unauthenticated("The MFA token is invalid or expired; log in again.")
    await check_code(context, user, code)  # Unauthenticated, RateLimited
    if not await run(challenge.use):
        raise Unauthenticated("The MFA token was used already; log in again.")
    return await run(logged_in, context, user, detail="with MFA")


def pending_challenge(
    context: Context, mfa_token: str
) -> tuple[MfaChallenge | None, User | None]:
    """The live challenge of this token and its account, if it still needs MFA."""
    if not is_plausible(mfa_token):
        return None, None
    challenge = MfaChallenge.pending(digest(mfa_token), context.tenant)
    user = User.by_id(context.tenant, challenge.user_id) if challenge else None
    if user is None or not user.active or not user.mfa_enabled:
        return None, None
    return challenge, user


@raises(Unauthenticated, BadUserInput, RateLimited)
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
    if not await password_matches(context, account_key(user.email), password, user):
        raise Unauthenticated("The password is wrong.")
    await check_code(context, user, code)
    await run(turn_off, user, keep=context.session_id)
    await context.record(Action.MFA_DISABLED, actor=user, target=user)
    return True


@raises(Unauthenticated, Forbidden, NotFound)
async def reset_mfa(
    info: Info[Context, None],
    email: Annotated[
        str, strawberry.argument(description="Whose two-factor to turn off.")
    ],
) -> bool:
    context = info.context
    target = await run(find_in_tenant, context.tenant.id, email)  # NotFound
    await run(turn_off, target, keep=None)
    await context.record(Action.MFA_RESET, actor=context.require_user(), target=target)
    return True


async def check_code(context: Context, user: User, code: str) -> None:
    """Accept a TOTP or recovery code once; it is counted before it is judged."""
    tenant, account = str(context.tenant.id), str(user.id)
    await context.limits.reserve_code(tenant, account)  # RateLimited
    if not await run(spend_code, context, user, code):
        await context.record(Action.MFA_FAILED, target=user)
        raise Unauthenticated("The code is wrong or was used already.")
    await context.limits.code_succeeded(tenant, account)


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
