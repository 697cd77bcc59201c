"""The OpenID Connect client: discovery, the authorization code exchange with
PKCE (S256), and the ID token's checks.

Authlib does the OAuth side (authorization URL, PKCE challenge, token request
and its client authentication, error responses) over httpx2; joserfc checks
the ID token's signature and claims. Nothing here is hand-written JOSE.

Only the issuer an operator registered is ever fetched, and the endpoints its
own discovery document names; a URL a client sends (redirectUri) is compared,
never fetched. Redirects are not followed. Every call runs under the request's
deadline: a provider that hangs answers SERVICE_UNAVAILABLE in time, never a
hang; a provider that refuses (or a token that fails a check) UNAUTHENTICATED.
"""

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx2
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

from dependencies import time_left
from errors import ServiceError, ServiceUnavailable, Unauthenticated
from validation import is_internal, is_loopback, url_problem

log = logging.getLogger("user_service.oidc")
SCOPES = "openid email profile"
# Asymmetric only: an HS256 token keyed with something public proves nothing.
ALGORITHMS = (
    *("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"),
    *("ES256", "ES384", "ES512", "EdDSA"),
)
TIMEOUT = 5.0  # the contract's deadline for a dependency
METADATA_TTL = 3600.0
# A token signed with a key we do not know refetches the keys (the provider
# rotated them), at most once a second per provider.
KEYS_REFRESH_SECONDS = 1.0
CLOCK_LEEWAY = 60
ENDPOINTS = ("authorization_endpoint", "token_endpoint", "jwks_uri")
NOT_VALID = "The identity provider's token is not valid."
NO_ANSWER = "The identity provider does not answer; try again later."


@dataclass(frozen=True)
class Provider:
    issuer: str
    client_id: str
    client_secret: str | None  # None: a public client, PKCE only


@dataclass(frozen=True)
class Identity:
    subject: str
    email: str | None
    email_verified: bool


def new_code_verifier() -> str:
    """A PKCE verifier: 64 characters of [A-Za-z0-9] (RFC 7636 allows 43-128)."""
    return str(generate_token(64))


class OidcClient:
    """One per process: each provider's metadata and keys, cached."""

    def __init__(self, *, timeout: float = TIMEOUT) -> None:
        self.timeout = timeout
        self._metadata: dict[str, tuple[dict[str, Any], float]] = {}
        self._keys: dict[str, tuple[KeySet, float]] = {}

    async def authorization_url(
        self,
        provider: Provider,
        *,
        redirect_uri: str,
        state: str,
        nonce: str,
        code_verifier: str,
    ) -> str:
        async with self._client(provider) as client:
            metadata = await self._metadata_of(client, provider.issuer)
            url, _ = client.create_authorization_url(
                metadata["authorization_endpoint"],
                state=state,
                code_verifier=code_verifier,
                redirect_uri=redirect_uri,
                nonce=nonce,
            )
        return str(url)

    async def identity(
        self,
        provider: Provider,
        *,
        code: str,
        redirect_uri: str,
        code_verifier: str,
        nonce: str,
    ) -> Identity:
        """Trade the code for tokens; the checked ID token's identity."""
        async with self._client(provider) as client:
            metadata = await self._metadata_of(client, provider.issuer)
            try:
                token = await client.fetch_token(
                    metadata["token_endpoint"],
                    grant_type="authorization_code",
                    code=code,
                    redirect_uri=redirect_uri,
                    code_verifier=code_verifier,
                )
            # An error answer, or one that is no token object at all.
            except (OAuthError, httpx2.HTTPStatusError, ValueError, TypeError) as error:
                raise _refused(error) from None
            id_token = token.get("id_token")
            if not isinstance(id_token, str):
                raise Unauthenticated("The identity provider sent no ID token.")
            claims = await self._checked_claims(client, provider, id_token, nonce)
        return identity_of(claims)

    @asynccontextmanager
    async def _client(self, provider: Provider) -> AsyncIterator[AsyncOAuth2Client]:
        """A client for one exchange with the provider, under the deadline."""
        seconds = time_left(self.timeout)
        try:
            async with (
                asyncio.timeout(seconds),
                AsyncOAuth2Client(
                    client_id=provider.client_id,
                    client_secret=provider.client_secret,
                    token_endpoint_auth_method=(
                        "client_secret_basic" if provider.client_secret else "none"
                    ),
                    code_challenge_method="S256",
                    scope=SCOPES,
                    timeout=seconds,
                    follow_redirects=False,
                    trust_env=False,
                ) as client,
            ):
                yield client
        except (TimeoutError, httpx2.TransportError) as error:
            log.warning("identity provider %s: %r", provider.issuer, error)
            raise ServiceUnavailable(NO_ANSWER) from None

    async def _metadata_of(
        self, client: AsyncOAuth2Client, issuer: str
    ) -> dict[str, Any]:
        cached = self._metadata.get(issuer)
        if cached is not None and time.monotonic() - cached[1] < METADATA_TTL:
            return cached[0]
        well_known = f"{issuer.rstrip('/')}/.well-known/openid-configuration"
        metadata = await _json(client, well_known)
        # OpenID Connect Discovery 4.3: the document speaks for this issuer only.
        # Its endpoints are https:// (http:// on loopback only), and a remote
        # issuer's never name an internal address: a document cannot point
        # the service at a plain-text or internal one.
        endpoints = [metadata.get(name) for name in ENDPOINTS]
        if metadata.get("issuer") != issuer or not all(
            isinstance(url, str) and endpoint_fits(url, issuer) for url in endpoints
        ):
            raise _broken(issuer, "its discovery document does not fit its issuer")
        self._metadata[issuer] = (metadata, time.monotonic())
        return metadata

    async def _key_set(
        self, client: AsyncOAuth2Client, issuer: str, *, refresh: bool
    ) -> KeySet:
        cached = self._keys.get(issuer)
        fresh_enough = cached is not None and (
            not refresh or time.monotonic() - cached[1] < KEYS_REFRESH_SECONDS
        )
        if cached is not None and fresh_enough:
            return cached[0]
        metadata = await self._metadata_of(client, issuer)
        try:
            published = await _json(client, metadata["jwks_uri"])
            keys = KeySet.import_key_set(published)  # type: ignore[arg-type]
        except (JoseError, ValueError, TypeError, KeyError):
            raise _broken(issuer, "its keys cannot be read") from None
        self._keys[issuer] = (keys, time.monotonic())
        return keys

    async def _checked_claims(
        self, client: AsyncOAuth2Client, provider: Provider, id_token: str, nonce: str
    ) -> dict[str, Any]:
        """The ID token's claims once its signature, iss, aud, exp and nonce pass."""
        try:
            keys = await self._key_set(client, provider.issuer, refresh=False)
            try:
                token = jwt.decode(id_token, keys, algorithms=ALGORITHMS)
            except InvalidKeyIdError:  # the provider may have rotated its keys
                keys = await self._key_set(client, provider.issuer, refresh=True)
                token = jwt.decode(id_token, keys, algorithms=ALGORITHMS)
            claims_of(provider, nonce).validate(token.claims)
        except (JoseError, ValueError, TypeError) as error:
            log.info("ID token of %s refused: %s", provider.issuer, error)
            raise Unauthenticated(NOT_VALID) from None
        claims = token.claims
        # OpenID Connect Core 3.1.3.7: with several audiences, azp names us.
        audience = claims["aud"]
        several = isinstance(audience, list) and len(audience) > 1
        if several and claims.get("azp") != provider.client_id:
            raise Unauthenticated(NOT_VALID)
        return claims


def claims_of(provider: Provider, nonce: str) -> jwt.JWTClaimsRegistry:
    return jwt.JWTClaimsRegistry(
        leeway=CLOCK_LEEWAY,
        iss={"essential": True, "value": provider.issuer},
        aud={"essential": True, "value": provider.client_id},
        sub={"essential": True},
        exp={"essential": True},
        nonce={"essential": True, "value": nonce},
    )


def identity_of(claims: dict[str, Any]) -> Identity:
    subject, email = claims["sub"], claims.get("email")
    if not isinstance(subject, str) or not 0 < len(subject) <= 255:
        raise Unauthenticated(NOT_VALID)
    verified = claims.get("email_verified")
    return Identity(
        subject=subject,
        email=email if isinstance(email, str) else None,
        # Some providers send the string "true"; anything else is not verified.
        email_verified=verified is True or verified == "true",
    )


async def _json(client: AsyncOAuth2Client, url: str) -> dict[str, Any]:
    # Metadata and keys are public: no token goes with them.
    response = await client.request(
        "GET", url, headers={"Accept": "application/json"}, withhold_token=True
    )
    if response.status_code != 200:
        raise _broken(url, f"it answered HTTP {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise _broken(url, "it answered no JSON object")
    return body


def _refused(error: Exception) -> ServiceError:
    """A token endpoint's error answer; a 5xx is an outage, not a refusal."""
    if isinstance(error, httpx2.HTTPStatusError) and error.response.status_code >= 500:
        return ServiceUnavailable(NO_ANSWER)
    log.info("identity provider refused the code: %s", error)
    return Unauthenticated("The identity provider refused the login.")


def _broken(where: str, why: str) -> ServiceUnavailable:
    log.warning("identity provider %s cannot be used: %s", where, why)
    return ServiceUnavailable("The identity provider cannot be used; try again later.")


def endpoint_fits(url: str, issuer: str) -> bool:
    """An endpoint a discovery document may name: a URL the service may call,
    internal only when the issuer itself is on loopback (development, tests)."""
    if url_problem(url, redirect=True) is not None:
        return False
    return is_loopback(urlsplit(issuer).hostname or "") or not is_internal(
        urlsplit(url).hostname or ""
    )
