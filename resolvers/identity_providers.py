"""addIdentityProvider and removeIdentityProvider: a tenant's OpenID Connect
providers, managed by holders of `identity-providers:manage` (operators use
`idp add | list | remove`). The client secret is sealed with the data key."""

from typing import Annotated
from urllib.parse import urlsplit

import strawberry
from strawberry import Info

from auth.permissions import SERVICE_PERMISSIONS
from auth.sealing import seal
from errors import BadUserInput, Forbidden, NotFound, Unauthenticated, raises
from models import Action, IdentityProvider, ProviderExists, database
from models.workers import run
from resolvers.roles import ensure_holds
from schema.context import Context
from schema.inputs import AddIdentityProviderInput
from schema.types import IdentityProviderType
from validation import is_clean_text, is_internal, url_problem

MAX_REDIRECT_URIS = 10


@raises(Unauthenticated, Forbidden, BadUserInput)
async def add_identity_provider(
    info: Info[Context, None], input: AddIdentityProviderInput
) -> IdentityProviderType:
    context = info.context
    actor = context.require_user()
    # A provider's word on an email signs into that account, whatever it holds:
    # only a holder of every service permission may name one.
    await ensure_holds(context, SERVICE_PERMISSIONS)  # Forbidden
    check_provider(input, production=context.settings.is_production)  # BadUserInput
    secret = input.client_secret
    sealed = seal(secret, key=str(context.settings.data_key)) if secret else None
    provider = await run(register, context, input, sealed)
    await context.record(
        Action.IDENTITY_PROVIDER_ADDED,
        actor=actor,
        detail=f"{provider.name} ({provider.issuer})",
    )
    return IdentityProviderType.from_row(provider)


def register(
    context: Context, input: AddIdentityProviderInput, sealed: str | None
) -> IdentityProvider:
    try:
        return IdentityProvider.add(
            context.tenant,
            name=input.name,
            issuer=input.issuer,
            client_id=input.client_id,
            sealed_client_secret=sealed,
            redirect_uris=input.redirect_uris,
            allow_sign_up=input.allow_sign_up,
        )
    except ProviderExists:
        raise BadUserInput(
            {"name": "The tenant has a provider of this name."}
        ) from None


@raises(Unauthenticated, Forbidden, NotFound)
async def remove_identity_provider(
    info: Info[Context, None],
    provider: Annotated[
        strawberry.ID, strawberry.argument(description="An id from identityProviders.")
    ],
) -> bool:
    context = info.context
    actor = context.require_user()
    removed = await run(remove, context, provider)
    await context.record(
        Action.IDENTITY_PROVIDER_REMOVED,
        actor=actor,
        detail=f"{removed.name} ({removed.issuer})",
    )
    return True


def remove(context: Context, provider_id: str) -> IdentityProvider:
    """Remove the tenant's provider; its logins and linked identities go too."""
    with database.atomic():
        provider = IdentityProvider.in_tenant(context.tenant, provider_id)
        if provider is None:
            raise NotFound("The tenant has no such identity provider.")
        provider.delete_instance()
    return provider


def check_provider(input: AddIdentityProviderInput, *, production: bool) -> None:
    problems: dict[str, str] = {}
    name = input.name
    if not 0 < len(name) <= 64 or name != name.strip() or not is_clean_text(name):
        problems["name"] = "1 to 64 characters, no spaces at either end."
    if problem := url_problem(input.issuer, redirect=False):
        problems["issuer"] = f"The issuer {problem}."
    elif production and is_internal(urlsplit(input.issuer).hostname or ""):
        problems["issuer"] = (
            "An internal address: in production, a public https:// one."
        )
    if not 0 < len(input.client_id) <= 500 or not is_clean_text(input.client_id):
        problems["clientId"] = "1 to 500 characters of plain text."
    secret = input.client_secret
    if secret is not None and not (0 < len(secret) <= 500 and is_clean_text(secret)):
        problems["clientSecret"] = "1 to 500 characters, or null for a public client."
    if problem := redirect_uris_problem(input.redirect_uris):
        problems["redirectUris"] = problem
    if problems:
        raise BadUserInput(problems)


def redirect_uris_problem(uris: list[str]) -> str | None:
    if not 0 < len(uris) <= MAX_REDIRECT_URIS:
        return f"1 to {MAX_REDIRECT_URIS} URIs."
    for uri in uris:
        if problem := url_problem(uri, redirect=True):
            return f"{uri[:100]!r} {problem}."
    return None
