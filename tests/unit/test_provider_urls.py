"""Issuer and redirect URI rules as a table: https, or http on loopback only."""

import pytest

from auth.oidc import endpoint_fits
from errors import BadUserInput
from resolvers.identity_providers import check_provider
from schema.inputs import AddIdentityProviderInput
from validation import url_problem

HTTPS_ONLY = "must be https:// (http:// only for a loopback host)"
NO_FRAGMENT = "must have no #fragment or user:password@"


@pytest.mark.parametrize(
    ("url", "as_issuer", "as_redirect"),
    [
        ("https://accounts.google.com", None, None),
        ("https://login.microsoftonline.com/TENANT/v2.0", None, None),
        ("http://127.0.0.1:8080/realms/dev", None, None),
        ("http://[::1]:3000/cb", None, None),
        ("http://localhost:3000/cb", None, None),
        ("http://idp.example.com", HTTPS_ONLY, HTTPS_ONLY),
        ("http://10.0.0.1/cb", HTTPS_ONLY, HTTPS_ONLY),
        ("http://127.0.0.1.example.com/cb", HTTPS_ONLY, HTTPS_ONLY),
        ("ftp://idp.example.com", HTTPS_ONLY, HTTPS_ONLY),
        ("javascript:alert(1)", "not a URL", "not a URL"),
        ("https://app.example/cb?next=1", "must have no ?query", None),
        ("https://app.example/cb#x", NO_FRAGMENT, NO_FRAGMENT),
        ("https://user:pw@app.example/cb", NO_FRAGMENT, NO_FRAGMENT),
        ("https://app.example:99999/cb", "not a URL", "not a URL"),
        ("https://app.example/c b", "not a URL", "not a URL"),
        ("https://app.example/\x00", "not a URL", "not a URL"),
        ("", "not a URL", "not a URL"),
    ],
    ids=[
        "google",
        "entra",
        "loopback-http",
        "loopback-ipv6",
        "localhost",
        "plain-http",
        "private-address",
        "loopback-look-alike",
        "ftp",
        "javascript",
        "query",
        "fragment",
        "credentials",
        "bad-port",
        "space",
        "control-character",
        "empty",
    ],
)
def test_provider_url_rules(
    url: str, as_issuer: str | None, as_redirect: str | None
) -> None:
    assert url_problem(url, redirect=False) == as_issuer
    assert url_problem(url, redirect=True) == as_redirect


@pytest.mark.parametrize(
    ("endpoint", "issuer", "fits"),
    [
        ("https://idp.example.com/token", "https://idp.example.com", True),
        ("https://keys.example.net/jwks", "https://idp.example.com", True),
        ("http://127.0.0.1:9000/token", "https://idp.example.com", False),
        ("https://127.0.0.1/token", "https://idp.example.com", False),
        ("https://localhost/token", "https://idp.example.com", False),
        ("https://10.0.0.5/token", "https://idp.example.com", False),
        ("https://192.168.1.1/token", "https://idp.example.com", False),
        ("https://169.254.169.254/latest", "https://idp.example.com", False),
        ("https://[fd00::1]/token", "https://idp.example.com", False),
        ("http://idp.example.com/token", "https://idp.example.com", False),
        ("http://127.0.0.1:9000/token", "http://127.0.0.1:9000", True),
    ],
)
def test_a_remote_issuers_discovery_never_names_an_internal_endpoint(
    endpoint: str, issuer: str, fits: bool
) -> None:
    assert endpoint_fits(endpoint, issuer) is fits


@pytest.mark.parametrize(
    ("issuer", "production", "refused"),
    [
        ("http://127.0.0.1:9000", False, False),
        ("http://127.0.0.1:9000", True, True),
        ("https://10.1.2.3/realms/acme", True, True),
        ("https://idp.example.com/realms/acme", True, False),
    ],
)
def test_production_names_no_provider_on_an_internal_address(
    issuer: str, production: bool, refused: bool
) -> None:
    provider = AddIdentityProviderInput(
        name="Acme SSO",
        issuer=issuer,
        client_id="user-service",
        client_secret=None,
        redirect_uris=["https://app.example/cb"],
        allow_sign_up=False,
    )
    if not refused:
        check_provider(provider, production=production)
        return
    with pytest.raises(BadUserInput) as refusal:
        check_provider(provider, production=production)
    assert "issuer" in refusal.value.fields
