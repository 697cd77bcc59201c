"""Sign-in through a tenant's OpenID Connect provider: identityProviders,
startExternalLogin, startExternalLink, completeExternalLogin and
unlinkExternalIdentity.

The flow is the authorization code flow with PKCE: the state (stored as a
digest, single use, 10 minutes) is bound to the tenant, the provider, the
redirect URI, the PKCE verifier, the nonce and, for a link, the account. An
identity is linked to an existing account only when both the provider and the
account have the email verified (account pre-hijacking), and never silently:
else EMAIL_TAKEN, and the user logs in with the password and links from there.
"""

from typing import Annotated

import strawberry
from strawberry import Info

from auth.oidc import Identity, Provider, new_code_verifier
from auth.opaque import digest, is_plausible, new_token
from auth.sealing import unseal
from errors import (
    BadUserInput,
    EmailNotVerified,
    EmailTaken,
    Forbidden,
    MfaRequired,
    NotFound,
    RateLimited,
    Unauthenticated,
    raises,
)
from models import (
    NO_PASSWORD,
    Action,
    AlreadyLinked,
    DuplicateEmail,
    ExternalIdentity,
    IdentityProvider,
    LastWayIn,
    LoginState,
    User,
    database,
)
from models.workers import run, run_read
from resolvers.login import require_fresh_login, signed_in
from schema.context import Context
from schema.types import (
    AuthPayload,
    ExternalLoginStart,
    IdentityProviderType,
    UserType,
)
from validation import normalize_email

ProviderId = Annotated[
    strawberry.ID, strawberry.argument(description="An id from identityProviders.")
]
RedirectUri = Annotated[
    str,
    strawberry.argument(
        description="Where the provider sends the browser back: one of the "
        "provider's registered redirect URIs, exactly."
    ),
]
MAX_CODE_LENGTH = 2000
USED_STATE = "This sign-in is invalid, used or expired; start it again."


@raises()
async def identity_providers(info: Info[Context, None]) -> list[IdentityProviderType]:
    providers = await run_read(IdentityProvider.of_tenant, info.context.tenant)
    return [IdentityProviderType.from_row(provider) for provider in providers]


@raises(
    (NotFound, "no such provider"),
    (BadUserInput, "unregistered redirectUri"),
    RateLimited,
)
async def start_external_login(
    info: Info[Context, None], provider: ProviderId, redirect_uri: RedirectUri
) -> ExternalLoginStart:
    return await start(info.context, provider, redirect_uri, link_to=None)


@raises(
    (Unauthenticated, "no access token, or its login is over 10 minutes old"),
    (NotFound, "no such provider"),
    (BadUserInput, "unregistered redirectUri"),
    RateLimited,
)
async def start_external_link(
    info: Info[Context, None], provider: ProviderId, redirect_uri: RedirectUri
) -> ExternalLoginStart:
    user = info.context.require_user()
    await require_fresh_login(info.context, user)  # Unauthenticated
    return await start(info.context, provider, redirect_uri, link_to=user)


async def start(
    context: Context, provider_id: str, redirect_uri: str, *, link_to: User | None
) -> ExternalLoginStart:
    await context.limits.reserve_guess(str(context.tenant.id), context.address)
    provider = await run(find_provider, context, provider_id)  # NotFound
    # Compared, never fetched, and exactly: a prefix or a look-alike is refused.
    if redirect_uri not in provider.redirect_uri_list:
        raise BadUserInput({"redirectUri": "Not a registered redirect URI."})
    state, nonce, verifier = new_token(), new_token(), new_code_verifier()
    url = await context.oidc.authorization_url(
        client_of(context, provider),
        redirect_uri=redirect_uri,
        state=state,
        nonce=nonce,
        code_verifier=verifier,
    )
    await run(
        LoginState.open,
        provider,
        digest=digest(state),
        redirect_uri=redirect_uri,
        code_verifier=verifier,
        nonce=nonce,
        link_user=link_to,
    )
    return ExternalLoginStart(authorization_url=url)


@raises(
    (Unauthenticated, "bad, used or expired state; the provider refused"),
    (MfaRequired, "the account has TOTP on"),
    (EmailTaken, "an account with the email exists but cannot be linked"),
    (NotFound, "no account, and the provider allows no sign-up"),
    (EmailNotVerified, "the email is not verified on the provider, or here"),
    (Forbidden, "the identity is linked to another account"),
    BadUserInput,
    RateLimited,
)
async def complete_external_login(
    info: Info[Context, None],
    code: Annotated[str, strawberry.argument(description="`code` from the redirect.")],
    state: Annotated[
        str, strawberry.argument(description="`state` from the redirect.")
    ],
) -> AuthPayload:
    context = info.context
    await context.limits.reserve_guess(str(context.tenant.id), context.address)
    if not is_plausible(state) or not 0 < len(code) <= MAX_CODE_LENGTH:
        raise Unauthenticated(USED_STATE)
    login = await run(LoginState.take, context.tenant, digest(state))
    if login is None:
        raise Unauthenticated(USED_STATE)
    link_to = linking_caller(context, login)  # Unauthenticated
    provider = await run(IdentityProvider.get_by_id, login.provider_id)
    try:
        identity = await context.oidc.identity(
            client_of(context, provider),
            code=code,
            redirect_uri=login.redirect_uri,
            code_verifier=login.code_verifier,
            nonce=login.nonce,
        )
    except Unauthenticated:
        detail = f"through {provider.name}: refused"
        await context.record(Action.LOGIN_FAILED, target=link_to, detail=detail)
        raise
    user = await run(account_for, context, provider, identity, link_to=link_to)
    if not user.active:
        raise Unauthenticated("This account is deactivated.")
    return await signed_in(context, user, detail=f"through {provider.name}")


@raises(
    Unauthenticated,
    (NotFound, "no such provider, or no identity of it linked"),
    (Forbidden, "the last way in of an account without a password"),
    RateLimited,
)
async def unlink_external_identity(
    info: Info[Context, None], provider: ProviderId
) -> UserType:
    context = info.context
    user = context.require_user()
    await context.limits.reserve_guess(str(context.tenant.id), context.address)
    found = await run(find_provider, context, provider)  # NotFound
    try:
        removed = await run(ExternalIdentity.unlink, user, found)
    except LastWayIn:
        raise Forbidden(
            "This is the account's only way in: set a password first "
            "(requestPasswordReset)."
        ) from None
    if not removed:
        raise NotFound("No identity of this provider is linked to the account.")
    await context.record(
        Action.EXTERNAL_IDENTITY_UNLINKED, actor=user, target=user, detail=found.name
    )
    return UserType.from_row(user)


def find_provider(context: Context, provider_id: str) -> IdentityProvider:
    provider = IdentityProvider.in_tenant(context.tenant, provider_id)
    if provider is None:
        raise NotFound("The tenant has no such identity provider.")
    return provider


def client_of(context: Context, provider: IdentityProvider) -> Provider:
    sealed = provider.sealed_client_secret
    secret = unseal(sealed, keys=[str(context.settings.data_key)]) if sealed else None
    return Provider(
        issuer=provider.issuer, client_id=provider.client_id, client_secret=secret
    )


def linking_caller(context: Context, login: LoginState) -> User | None:
    """The account a link flow links to: it must be the caller's own."""
    if login.link_user_id is None:
        return None
    caller = context.optional_user()
    if caller is None or caller.id != login.link_user_id:
        raise Unauthenticated("Finish a link with the access token that started it.")
    return caller


def account_for(
    context: Context,
    provider: IdentityProvider,
    identity: Identity,
    *,
    link_to: User | None,
) -> User:
    """The account this identity signs in to: linked already, linked now, or new."""
    linked = ExternalIdentity.find(provider, identity.subject)
    if link_to is not None:
        return link_caller(context, provider, identity, link_to, linked)
    if linked is not None:
        user = User.by_id(context.tenant, linked.user_id)
        assert user is not None  # noqa: S101  # identities go with their account
        return user
    if identity.email is None:
        raise NotFound("The identity provider gave no email to find an account by.")
    email = normalize_email(identity.email)  # BadUserInput
    existing = User.by_email(context.tenant, email)
    if existing is not None:
        return link_by_email(context, provider, identity, existing)
    if not provider.allow_sign_up:
        raise NotFound("No account has this email, and sign-up is not allowed here.")
    return sign_up(context, provider, identity, email)


def link_caller(
    context: Context,
    provider: IdentityProvider,
    identity: Identity,
    user: User,
    linked: ExternalIdentity | None,
) -> User:
    """startExternalLink's end: the caller proved both accounts are theirs."""
    if linked is not None and linked.user_id == user.id:
        return user
    if linked is not None:
        raise Forbidden("This identity is linked to another account.")
    link(context, provider, identity, user, how="by its owner")
    return user


def link_by_email(
    context: Context, provider: IdentityProvider, identity: Identity, user: User
) -> User:
    # Either side unverified may be a squatter's: never link it (pre-hijacking).
    if not (identity.email_verified and user.email_verified):
        raise EmailTaken(
            "An account with this email exists: log in with its password and link "
            "the provider from there."
        )
    link(context, provider, identity, user, how="by verified email")
    return user


def link(
    context: Context,
    provider: IdentityProvider,
    identity: Identity,
    user: User,
    *,
    how: str,
) -> None:
    try:
        ExternalIdentity.link(
            user, provider, subject=identity.subject, email=kept_email(identity.email)
        )
    except AlreadyLinked:
        raise Forbidden(
            "The account has an identity of this provider linked already."
        ) from None
    context.audit(
        Action.EXTERNAL_IDENTITY_LINKED,
        actor=user,
        target=user,
        detail=f"{provider.name} ({how})",
    )


def sign_up(
    context: Context, provider: IdentityProvider, identity: Identity, email: str
) -> User:
    """A new account (USER, email verified, no password) for this identity."""
    if not identity.email_verified:
        raise EmailNotVerified(
            "The identity provider has not verified this email; verify it there."
        )
    try:
        with database.atomic():
            user = User.register(
                context.tenant, email, NO_PASSWORD, email_verified=True
            )
            ExternalIdentity.link(
                user,
                provider,
                subject=identity.subject,
                email=kept_email(identity.email),
            )
            context.audit(
                Action.SIGNED_UP,
                actor=user,
                target=user,
                detail=f"through {provider.name}",
            )
    except (DuplicateEmail, AlreadyLinked):  # a racing sign-in made it first
        raise EmailTaken("An account with this email was just made.") from None
    return user


def kept_email(email: str | None) -> str | None:
    """The provider's email as stored with the link: only one that is valid."""
    if email is None:
        return None
    try:
        return normalize_email(email)
    except BadUserInput:
        return None
