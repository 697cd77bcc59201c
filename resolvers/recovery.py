"""Account recovery and email verification, by single-use links sent by mail.

requestPasswordReset always answers true, does the same work whether or not
the email has an account, and sends nothing but to that account's own inbox.
"""

import asyncio
import time
from typing import Annotated

import strawberry
from strawberry import Info

from auth.opaque import digest, is_plausible, new_token
from errors import Unauthenticated
from mail import compose
from models import Action, EmailToken, Purpose, Session, User, database
from resolvers.login import find_account
from schema.context import Context
from schema.types import UserType
from validation import check_new_password

RESET_REQUEST_SECONDS = 0.1
USED_LINK = "This link is invalid, used or expired."
Token = Annotated[str, strawberry.argument(description="The token from the link.")]


async def request_password_reset(
    info: Info[Context, None],
    email: Annotated[str, strawberry.argument(description="The account's email.")],
) -> bool:
    context = info.context
    await context.limits.mail_request(str(context.tenant.id), context.address)
    started = time.monotonic()
    user = find_account(context, email)
    if user is not None and user.active:
        await send_link(context, user, Purpose.RESET)
        context.audit(Action.PASSWORD_RESET_REQUESTED, target=user)
    # Answer after the same time either way: timing tells no one which emails
    # have accounts (a known one costs a token, a mail and an audit row).
    await asyncio.sleep(max(0.0, RESET_REQUEST_SECONDS - (time.monotonic() - started)))
    return True


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
    with database.atomic():
        if not found.spend():
            raise Unauthenticated(USED_LINK)
        EmailToken.spend_all(user, Purpose.RESET)  # older links must not work on
        user.set_password_hash(password_hash)
        user.mark_email_verified()  # the link reached the inbox: it is theirs
        Session.revoke_all(user)
        context.audit(Action.PASSWORD_RESET, actor=user, target=user)
    return True


async def request_email_verification(info: Info[Context, None]) -> bool:
    context = info.context
    user = context.require_user()
    await context.limits.mail_request(str(context.tenant.id), context.address)
    if not user.email_verified:
        await send_link(context, user, Purpose.VERIFY)
        context.audit(Action.EMAIL_VERIFICATION_SENT, actor=user, target=user)
    return True


async def verify_email(info: Info[Context, None], token: Token) -> UserType:
    context = info.context
    found, user = await live_token(context, Purpose.VERIFY, token)  # Unauthenticated
    with database.atomic():
        if not found.spend():
            raise Unauthenticated(USED_LINK)
        user.mark_email_verified()
        context.audit(Action.EMAIL_VERIFIED, actor=user, target=user)
    return UserType.from_row(user)


async def send_link(context: Context, user: User, purpose: Purpose) -> None:
    """Issue a token and mail its link, unless this inbox had enough for now."""
    if not await context.limits.may_mail(str(context.tenant.id), str(user.id)):
        return
    token = new_token()
    EmailToken.issue(user, purpose, digest(token))
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
    """The live token and its account; a miss counts as a guess of the address."""
    tenant = str(context.tenant.id)
    await context.limits.check_guess(tenant, context.address)
    found = (
        EmailToken.live(context.tenant, purpose, digest(token))
        if is_plausible(token)
        else None
    )
    user = User.by_id(context.tenant, found.user_id) if found else None
    if found is None or user is None or not user.active:
        await context.limits.guess_failed(tenant, context.address)
        raise Unauthenticated(USED_LINK)
    return found, user
