"""Issuer and redirect URI rules as a table: https, or http on loopback only."""

import pytest

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
