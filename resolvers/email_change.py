"""requestEmailChange and confirmEmailChange: a new address, proven by a link.

The request needs the current password (counted like a login) and mails a
single-use link to the new address and a notice to the old one. The address is
free when asked, but only the unique index decides, when the link is opened: of
two accounts racing for one address, one gets it and the other EMAIL_TAKEN.
"""

from typing import Annotated

import strawberry
from strawberry import Info

from auth.opaque import digest, new_token
from errors import BadUserInput, EmailTaken, RateLimited, Unauthenticated, raises
from mail import compose
from models import Action, DuplicateEmail, EmailToken, Purpose, Session, User, database
from models.workers import run
from resolvers.login import NOT_PROVEN, PROOF, proves_owner
from resolvers.recovery import USED_LINK, Token, live_token, may_mail
from schema.context import Context
from schema.types import UserType
from validation import check_login_password, normalize_email


@raises(
    (Unauthenticated, "no access token, or a wrong password"),
    BadUserInput,
    EmailTaken,
    RateLimited,
)
async def request_email_change(
    info: Info[Context, None],
    new_email: Annotated[str, strawberry.argument(description="The address to use.")],
    password: Annotated[str, strawberry.argument(description=PROOF)],
) -> bool:
    context = info.context
    user = context.require_user()
    email = normalize_email(new_email, field="newEmail")
    if user.has_password:
        check_login_password(password)
    await context.limits.mail_request(str(context.tenant.id), context.address)
    # A stolen access token must not make guessing the password free.
    if not await proves_owner(context, user, password):
        raise Unauthenticated(NOT_PROVEN)
    token = await run(issue_change, context, user, email)  # EmailTaken
    if await may_mail(context, user):
        mail_change(context, user, email, token)
    return True


def issue_change(context: Context, user: User, email: str) -> str:
    if User.by_email(context.tenant, email) is not None:
        raise EmailTaken()
    token = new_token()
    with database.atomic():
        EmailToken.spend_all(user, Purpose.EMAIL_CHANGE)  # only the last link works
        EmailToken.issue(user, Purpose.EMAIL_CHANGE, digest(token), new_email=email)
        context.audit(Action.EMAIL_CHANGE_REQUESTED, actor=user, target=user)
    return token


def mail_change(context: Context, user: User, email: str, token: str) -> None:
    """The link to the new address, and a notice to the old one."""
    link = context.settings.email_change_url.replace("{token}", token)
    tenant = context.tenant.name
    context.mailer.send(
        compose("email_change", to=email, tenant=tenant, email=email, link=link)
    )
    context.mailer.send(
        compose("email_change_notice", to=user.email, tenant=tenant, email=user.email)
    )


@raises((Unauthenticated, "bad, used or expired link"), EmailTaken, RateLimited)
async def confirm_email_change(info: Info[Context, None], token: Token) -> UserType:
    context = info.context
    found, user = await live_token(context, Purpose.EMAIL_CHANGE, token)
    await run(change_email, context, found, user)
    return UserType.from_row(user)


def change_email(context: Context, found: EmailToken, user: User) -> None:
    try:
        with database.atomic():
            if not found.spend():
                raise Unauthenticated(USED_LINK)
            user.change_email(str(found.new_email))  # DuplicateEmail
            # Links mailed to the old address must not work on.
            EmailToken.spend_all(user, Purpose.RESET)
            EmailToken.spend_all(user, Purpose.VERIFY)
            Session.revoke_all(user)  # the link may be opened logged out: all end
            context.audit(Action.EMAIL_CHANGED, actor=user, target=user)
    except DuplicateEmail:
        raise EmailTaken() from None
