"""addIdentityProvider and removeIdentityProvider: a tenant's OpenID Connect
providers, managed by holders of `identity-providers:manage` (operators use
`idp add | list | remove`). The client secret is sealed with the data key."""

import functools
from typing import Annotated
from urllib.parse import urlsplit

import strawberry
from strawberry import Info

import provisioning
from auth.permissions import SERVICE_PERMISSIONS
from errors import BadUserInput, Forbidden, NotFound, Unauthenticated, raises
from models import IdentityProvider, ProviderExists, User
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
    provider = await run(register, context, actor, input)
    return IdentityProviderType.from_row(provider)


def register(
    context: Context, actor: User, input: AddIdentityProviderInput
) -> IdentityProvider:
    try:
        return provisioning.add_identity_provider(
            context.settings,
            context.tenant,
            name=input.name,
            issuer=input.issuer,
            client_id=input.client_id,
            client_secret=input.client_secret,
            redirect_uris=input.redirect_uris,
            allow_sign_up=input.allow_sign_up,
            audit=functools.partial(context.audit, actor=actor),
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
    removed = await run(
        provisioning.remove_identity_provider,
        provider,
        tenant=context.tenant,
        audit=functools.partial(context.audit, actor=actor),
    )
    if removed is None:
        raise NotFound("The tenant has no such identity provider.")
    return True


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
