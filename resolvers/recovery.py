"""Account recovery and email verification, by single-use links sent by mail.

requestPasswordReset always answers true, does the same work whether or not
the email has an account, and sends nothing but to that account's own inbox.
A completed reset lifts the account's lock-out; when the email had not been
verified, it also ends whatever was set up before it (sessions, two-factor,
linked external identities):
someone who signed up with another person's address keeps nothing once that
person takes the account back (account pre-hijacking).
"""

import asyncio
import time
from typing import Annotated

import strawberry
from strawberry import Info

from auth.opaque import digest, is_plausible, new_token
from errors import BadUserInput, RateLimited, Unauthenticated, raises
from mail import compose
from models import (
    Action,
    EmailToken,
    ExternalIdentity,
    Passkey,
    Purpose,
    Session,
    User,
    database,
)
from models.workers import run
from resolvers.login import account_key, find_account
from resolvers.mfa import turn_off
from schema.context import Context
from schema.types import UserType
from validation import check_new_password

RESET_REQUEST_SECONDS = 0.1
USED_LINK = "This link is invalid, used or expired."
Token = Annotated[str, strawberry.argument(description="The token from the link.")]


@raises(RateLimited)
async def request_password_reset(
    info: Info[Context, None],
    email: Annotated[str, strawberry.argument(description="The account's email.")],
) -> bool:
    context = info.context
    await context.limits.mail_request(str(context.tenant.id), context.address)
    started = time.monotonic()
    user = await run(find_account, context.tenant, email)
    if user is not None and user.active:
        await send_link(context, user, Purpose.RESET)
        await context.record(Action.PASSWORD_RESET_REQUESTED, target=user)
    # Answer after the same time either way: timing tells no one which emails
    # have accounts (a known one costs a token, a mail and an audit row).
    await asyncio.sleep(max(0.0, RESET_REQUEST_SECONDS - (time.monotonic() - started)))
    return True


@raises((Unauthenticated, "bad, used or expired link"), BadUserInput, RateLimited)
async def reset_password(
    info: Info[Context, None],
    token: Token,
    new_password: Annotated[
        str, strawberry.argument(description="Follows passwordPolicy.")
    ],
) -> bool:
    context = info.context
    found, user = await live_token(context, Purpose.RESET, token)  # Unauthenticated
    # Checked before the token is spent: the link stays good for a better password.
    check_new_password(new_password, email=user.email, field="newPassword")
    password_hash = await context.hasher.hash(new_password)
    await run(reset, context, found, user, password_hash)
    await context.limits.unlock(str(context.tenant.id), account_key(user.email))
    return True


def reset(context: Context, found: EmailToken, user: User, password_hash: str) -> None:
    with database.atomic():
        if not found.spend():
            raise Unauthenticated(USED_LINK)
        EmailToken.spend_all(user, Purpose.RESET)  # older links must not work on
        # A change of address asked for before the reset, perhaps by whoever
        # held the account, must not take it away afterwards.
        EmailToken.spend_all(user, Purpose.EMAIL_CHANGE)
        user.set_password_hash(password_hash)
        verified = user.email_verified
        if not verified:
            # Whoever set up two-factor, a passkey or a linked identity before
            # the inbox's owner came may not be that owner: nothing of theirs
            # survives (pre-hijacking).
            turn_off(user, keep=None)
            ExternalIdentity.remove_all(user)
            Passkey.remove_all(user)
        user.mark_email_verified()  # the link reached the inbox: it is theirs
        Session.revoke_all(user)
        context.audit(Action.PASSWORD_RESET, actor=user, target=user)
        if not verified:
            context.audit(Action.EMAIL_VERIFIED, actor=user, target=user)


@raises(Unauthenticated, RateLimited)
async def request_email_verification(info: Info[Context, None]) -> bool:
    context = info.context
    user = context.require_user()
    await context.limits.mail_request(str(context.tenant.id), context.address)
    if not user.email_verified:
        await send_link(context, user, Purpose.VERIFY)
        await context.record(Action.EMAIL_VERIFICATION_SENT, actor=user, target=user)
    return True


@raises((Unauthenticated, "bad, used or expired link"), RateLimited)
async def verify_email(info: Info[Context, None], token: Token) -> UserType:
    context = info.context
    found, user = await live_token(context, Purpose.VERIFY, token)  # Unauthenticated
    await run(verify, context, found, user)
    return UserType.from_row(user)


def verify(context: Context, found: EmailToken, user: User) -> None:
    with database.atomic():
        if not found.spend():
            raise Unauthenticated(USED_LINK)
        user.mark_email_verified()
        context.audit(Action.EMAIL_VERIFIED, actor=user, target=user)


async def send_link(context: Context, user: User, purpose: Purpose) -> None:
    """Issue a token and mail its link, unless this inbox had enough for now."""
    if await may_mail(context, user):
        deliver_link(context, user, purpose, await run(issue_link, user, purpose))


async def may_mail(context: Context, user: User) -> bool:
    """Whether the inbox may get one more mail asked from this address."""
    tenant = str(context.tenant.id)
    return await context.limits.may_mail(tenant, str(user.id), context.address)


def issue_link(user: User, purpose: Purpose) -> str:
    """A new single-use token for a link; only its digest is stored."""
    token = new_token()
    EmailToken.issue(user, purpose, digest(token))
    return token


def deliver_link(context: Context, user: User, purpose: Purpose, token: str) -> None:
    """Queue the mail with the link (sent in the background)."""
    settings = context.settings
    template = settings.reset_url if purpose == Purpose.RESET else settings.verify_url
    link = template.replace("{token}", token)
    name = "reset" if purpose == Purpose.RESET else "verify"
    mail = compose(
        name, to=user.email, tenant=context.tenant.name, email=user.email, link=link
    )
    context.mailer.send(mail)


async def live_token(
    context: Context, purpose: Purpose, token: str
) -> tuple[EmailToken, User]:
    """The live token and its account; it counts as a guess of the address."""
    await context.limits.reserve_guess(str(context.tenant.id), context.address)
    found, user = await run(token_and_account, context, purpose, token)
    if found is None or user is None or not user.active:
        raise Unauthenticated(USED_LINK)
    return found, user


def token_and_account(
    context: Context, purpose: Purpose, token: str
) -> tuple[EmailToken | None, User | None]:
    if not is_plausible(token):
        return None, None
    found = EmailToken.live(context.tenant, purpose, digest(token))
    user = User.by_id(context.tenant, found.user_id) if found else None
    return found, user
