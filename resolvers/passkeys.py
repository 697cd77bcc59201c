"""Passkeys (WebAuthn): startPasskeyRegistration, finishPasskeyRegistration,
startPasskeyLogin, finishPasskeyLogin and removePasskey.

A challenge is stored, bound to the tenant (and to the account for a
registration), lives 5 minutes and is used once: of racing finishes, exactly
one gets it. The relying party is the tenant's (`tenant set`), read afresh. A
passkey login with user verification is a whole login: no MFA_REQUIRED. Its
failures count like failed logins, reserved before they are judged.
"""

from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

import strawberry
from strawberry import Info

from auth.passkeys import (
    CeremonyFailed,
    credential_id_of,
    login_options,
    new_challenge,
    registration_options,
    verified_login,
    verified_registration,
)
from errors import (
    BadUserInput,
    EmailNotVerified,
    Forbidden,
    NotFound,
    RateLimited,
    Unauthenticated,
    raises,
)
from models import (
    Action,
    Ceremony,
    DuplicateCredential,
    Passkey,
    PasskeyChallenge,
    RelyingParty,
    Tenant,
    User,
    database,
)
from models.identity import LastWayIn, keep_a_way_in
from models.user import lock_account
from models.workers import run
from resolvers.login import (
    account_key,
    audit_failure,
    find_account,
    logged_in,
    require_fresh_login,
)
from schema.context import Context
from schema.types import AuthPayload, PasskeyChallengeType, PasskeyType
from validation import MAX_PROFILE_LENGTH, check_text, is_clean_text

NOT_SET_UP = "Passkeys are not set up for this tenant: see `server.py tenant set`."
REFUSED = "The passkey could not be verified; start again."
LAST_WAY_IN = (
    "This is the account's only way in: set a password first (requestPasswordReset)."
)
ChallengeId = Annotated[
    str, strawberry.argument(description="challengeId of the start mutation.")
]
Credential = Annotated[
    str,
    strawberry.argument(
        description="The browser's PublicKeyCredential as JSON (its toJSON())."
    ),
]


@raises(
    (Unauthenticated, "no access token, or its login is over 10 minutes old"),
    (Forbidden, "passkeys are not set up for the tenant"),
)
async def start_passkey_registration(info: Info[Context, None]) -> PasskeyChallengeType:
    context = info.context
    user = context.require_user()
    await require_fresh_login(context, user)  # Unauthenticated
    return await run(open_registration, context, user)


def open_registration(context: Context, user: User) -> PasskeyChallengeType:
    party = relying_party(context.tenant)  # Forbidden
    challenge = new_challenge()
    row = PasskeyChallenge.open(context.tenant, Ceremony.REGISTER, challenge, user=user)
    options = registration_options(
        rp_id=party.rp_id,
        rp_name=context.tenant.name,
        user_handle=user.id.bytes,  # random and stable; never the email
        user_name=user.email,
        challenge=challenge,
        registered=[passkey.credential_id for passkey in Passkey.of_user(user.id)],
    )
    return PasskeyChallengeType(challenge_id=str(row.id), options=options)


@raises(
    Unauthenticated,
    (BadUserInput, "the credential does not verify, or the challenge is spent"),
    (Forbidden, "passkeys are not set up for the tenant"),
)
async def finish_passkey_registration(
    info: Info[Context, None],
    challenge_id: ChallengeId,
    credential: Credential,
    name: Annotated[
        str | None,
        strawberry.argument(description="What to call it, e.g. 'Work laptop'."),
    ] = None,
) -> PasskeyType:
    context = info.context
    user = context.require_user()
    label = passkey_name(name)  # BadUserInput
    passkey = await run(register, context, user, challenge_id, credential, label)
    return PasskeyType.from_row(passkey)


def passkey_name(name: str | None) -> str | None:
    text = (name or "").strip()
    check_text(text, field="name", max_length=MAX_PROFILE_LENGTH)
    return text or None


def register(
    context: Context, user: User, challenge_id: str, credential: str, name: str | None
) -> Passkey:
    party = relying_party(context.tenant)
    challenge = PasskeyChallenge.pending(
        context.tenant, Ceremony.REGISTER, challenge_id
    )
    if challenge is None or challenge.user_id != user.id or not challenge.use():
        raise BadUserInput({"challengeId": "Unknown, used or expired: start again."})
    try:
        new = verified_registration(
            credential,
            challenge=challenge.challenge,
            rp_id=party.rp_id,
            origins=party.origins,
        )
    except CeremonyFailed:
        raise BadUserInput(
            {"credential": "The passkey could not be verified."}
        ) from None
    try:
        with database.atomic():
            passkey = Passkey.add(
                user,
                credential_id=new.credential_id,
                public_key=new.public_key,
                sign_count=new.sign_count,
                transports=",".join(new.transports)[:200] or None,
                name=name,
            )
            context.audit(Action.PASSKEY_REGISTERED, actor=user, target=user)
    except DuplicateCredential:
        raise BadUserInput(
            {"credential": "This passkey is registered already."}
        ) from None
    return passkey


@raises((Forbidden, "passkeys are not set up for the tenant"))
async def start_passkey_login(
    info: Info[Context, None],
    email: Annotated[
        str | None,
        strawberry.argument(
            description="Only this account's passkeys; null: any (discoverable)."
        ),
    ] = None,
) -> PasskeyChallengeType:
    return await run(open_login, info.context, email)


def open_login(context: Context, email: str | None) -> PasskeyChallengeType:
    party = relying_party(context.tenant)
    challenge = new_challenge()
    # An email that names no account gets a challenge all the same, which no
    # passkey can finish: the answer tells nothing about who has an account.
    user = find_account(context.tenant, email) if email is not None else None
    # What failures count against (an email no account could have: none).
    account = account_key(email) if email is not None and is_clean_text(email) else None
    row = PasskeyChallenge.open(
        context.tenant, Ceremony.LOGIN, challenge, user=user, account=account
    )
    options = login_options(rp_id=party.rp_id, challenge=challenge)
    return PasskeyChallengeType(challenge_id=str(row.id), options=options)


@dataclass(frozen=True)
class Attempt:
    """A passkey login as presented, before it is judged."""

    party: RelyingParty
    challenge: PasskeyChallenge | None
    passkey: Passkey | None
    owner: User | None
    account: str  # what a failure counts against...
    target: User | None  # ...and whose failure it is in the audit log


@raises(
    (Unauthenticated, "the assertion does not verify, or its challenge is spent"),
    RateLimited,
    EmailNotVerified,
    (Forbidden, "passkeys are not set up for the tenant"),
)
async def finish_passkey_login(
    info: Info[Context, None], challenge_id: ChallengeId, credential: Credential
) -> AuthPayload:
    context = info.context
    tenant = str(context.tenant.id)
    attempt = await run(presented, context, challenge_id, credential)
    await context.limits.reserve_login(tenant, attempt.account, context.address)
    user = await run(judged, attempt, credential)
    if user is None:
        locked = await context.limits.is_locked(tenant, attempt.account)
        await run(audit_failure, context, attempt.target, locked=locked)
        raise Unauthenticated(REFUSED)
    await context.limits.unlock(tenant, attempt.account)
    if context.settings.require_verified_email and not user.email_verified:
        raise EmailNotVerified()
    return await run(logged_in, context, user, detail="with a passkey")


def presented(context: Context, challenge_id: str, credential: str) -> Attempt:
    party = relying_party(context.tenant)
    challenge = PasskeyChallenge.pending(context.tenant, Ceremony.LOGIN, challenge_id)
    credential_id = credential_id_of(credential)
    # Found in the caller's tenant only: another tenant's passkey is unknown here.
    passkey = Passkey.by_credential(context.tenant, credential_id or "")
    owner = User.by_id(context.tenant, passkey.user_id) if passkey else None
    if challenge is not None and challenge.account is not None:
        # The email the login named, and its account if there is one.
        account = challenge.account
        target = (
            User.by_id(context.tenant, challenge.user_id) if challenge.user_id else None
        )
    elif owner is not None:
        account, target = account_key(owner.email), owner
    else:
        account, target = f"passkey {credential_id or '-'}", None
    return Attempt(party, challenge, passkey, owner, account, target)


def judged(attempt: Attempt, credential: str) -> User | None:
    """The account the assertion logs in, or None. The challenge is spent first,
    whatever follows: a replay, or the loser of a race, finds it used."""
    challenge, passkey, owner = attempt.challenge, attempt.passkey, attempt.owner
    if challenge is None or not challenge.use():
        return None
    if passkey is None or owner is None or not owner.active:
        return None
    # A login that named an email takes only that account's passkeys.
    if challenge.account is not None and challenge.user_id != owner.id:
        return None
    try:
        sign_count = verified_login(
            credential,
            challenge=challenge.challenge,
            rp_id=attempt.party.rp_id,
            origins=attempt.party.origins,
            public_key=passkey.public_key,
            sign_count=passkey.sign_count,
        )
    except CeremonyFailed:
        return None
    # A counter that a racing login moved as far already: a cloned authenticator.
    return owner if passkey.advance(sign_count) else None


@raises(
    Unauthenticated,
    (NotFound, "the caller has no passkey with this id"),
    (Forbidden, "the last way in of an account without a password"),
)
async def remove_passkey(
    info: Info[Context, None],
    passkey_id: Annotated[
        strawberry.ID,
        strawberry.argument(name="id", description="The passkey's id."),
    ],
) -> bool:
    context = info.context
    user = context.require_user()
    await run(remove, context, user, passkey_id)
    return True


def remove(context: Context, user: User, passkey_id: str) -> None:
    try:
        wanted = UUID(passkey_id)
    except ValueError:
        raise NotFound("You have no passkey with this id.") from None
    with database.atomic():
        lock_account(user.id)
        if not Passkey.remove(user, wanted):
            raise NotFound("You have no passkey with this id.")
        try:
            keep_a_way_in(user)
        except LastWayIn:
            raise Forbidden(LAST_WAY_IN) from None
        context.audit(Action.PASSKEY_REMOVED, actor=user, target=user)


def relying_party(tenant: Tenant) -> RelyingParty:
    party = Tenant.relying_party(tenant.id)
    if party is None:
        raise Forbidden(NOT_SET_UP)
    return party
