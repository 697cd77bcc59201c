"""`idp add`, `idp list` and `idp remove`: operators register a tenant's
OpenID Connect providers; the client secret is sealed at rest."""

import re
from pathlib import Path

import pytest

from auth.sealing import unseal
from models import IdentityProvider
from models.db import close_database, open_database
from settings import Settings
from tests.conftest import DATA_KEY, make_environ
from tests.servers import create_tenant, run_cli
from tests.test_cli import app_on

ISSUER = "https://idp.example.com/realms/acme"
CALLBACK = "https://app.example/auth/callback"
SECRET = "the-client-secret-of-acme"
ADD = ("add", "acme", "--name", "Acme SSO", "--issuer", ISSUER, "--client-id", "svc")


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    return make_environ(tmp_path)


def idp(environ: dict[str, str], *args: str) -> "tuple[int, str, str]":
    done = run_cli(environ, "idp", *args)
    return done.returncode, done.stdout, done.stderr


def stored(environ: dict[str, str]) -> list[IdentityProvider]:
    open_database(Settings.from_env(environ).database_url)
    try:
        return list(IdentityProvider.select())
    finally:
        close_database()


def test_add_prints_the_id_last_and_seals_the_secret(environ: dict[str, str]) -> None:
    key = create_tenant(environ, "acme", "boss@acme.io")
    with_secret = environ | {"USER_SERVICE_IDP_CLIENT_SECRET": SECRET}
    status, out, err = idp(with_secret, *ADD, "--redirect-uri", CALLBACK)
    assert (status, err) == (0, "")
    provider_id = out.splitlines()[-1]
    assert re.fullmatch(r"[0-9a-f-]{36}", provider_id)
    [row] = stored(environ)
    assert row.sealed_client_secret is not None
    assert SECRET not in row.sealed_client_secret
    assert unseal(row.sealed_client_secret, keys=[DATA_KEY]) == SECRET
    with app_on(environ, key) as api:
        assert api.gql("{ identityProviders { id name } }").ok() == {
            "identityProviders": [{"id": provider_id, "name": "Acme SSO"}]
        }
    status, listed, _ = idp(environ, "list", "acme")
    assert status == 0
    assert provider_id in listed
    assert "confidential" in listed
    assert CALLBACK in listed
    assert SECRET not in listed


def test_a_public_client_needs_no_secret(environ: dict[str, str]) -> None:
    create_tenant(environ, "acme", "boss@acme.io")
    uris = ("--redirect-uri", CALLBACK, "--redirect-uri", "http://127.0.0.1:3000/cb")
    status, _, err = idp(environ, *ADD, *uris, "--public", "--allow-sign-up")
    assert (status, err) == (0, "")
    [row] = stored(environ)
    assert row.sealed_client_secret is None
    assert row.allow_sign_up is True
    assert row.redirect_uri_list == [CALLBACK, "http://127.0.0.1:3000/cb"]


def test_remove_deletes_the_provider_once(environ: dict[str, str]) -> None:
    create_tenant(environ, "acme", "boss@acme.io")
    _, out, _ = idp(environ, *ADD, "--redirect-uri", CALLBACK, "--public")
    provider_id = out.splitlines()[-1]
    assert idp(environ, "remove", provider_id)[0] == 0
    assert stored(environ) == []
    status, out, err = idp(environ, "remove", provider_id)
    assert (status, out) == (1, "")
    assert err == f"error: no identity provider with id {provider_id}\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--issuer", "http://idp.example.com"),
            "error: argument --issuer: issuer 'http://idp.example.com': must be "
            "https:// (http:// only for a loopback host)",
        ),
        (
            ("--issuer", "https://idp.example.com/?tenant=x"),
            "error: argument --issuer: issuer 'https://idp.example.com/?tenant=x': "
            "must have no ?query",
        ),
        (
            ("--redirect-uri", "https://app.example/cb#x"),
            "error: argument --redirect-uri: redirect URI 'https://app.example/cb#x':"
            " must have no #fragment or user:password@",
        ),
        (("--name", " padded"), "error: argument --name: ' padded': a name is"),
    ],
    ids=["http-issuer", "issuer-query", "redirect-fragment", "name"],
)
def test_bad_arguments_are_one_line_errors_with_exit_2(
    environ: dict[str, str], args: tuple[str, ...], message: str
) -> None:
    create_tenant(environ, "acme", "boss@acme.io")
    status, out, err = idp(environ, *ADD, "--redirect-uri", CALLBACK, "--public", *args)
    assert (status, out) == (2, "")
    assert err.startswith(message), err
    assert len(err.splitlines()) == 1
    assert stored(environ) == []


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ((), "error: no client secret: set USER_SERVICE_IDP_CLIENT_SECRET"),
        (("--public",), "error: tenant 'acme' has a provider 'Acme SSO'"),
    ],
    ids=["no-secret", "duplicate"],
)
def test_refusals_are_one_line_errors(
    environ: dict[str, str], extra: tuple[str, ...], message: str
) -> None:
    create_tenant(environ, "acme", "boss@acme.io")
    if extra:
        assert idp(environ, *ADD, "--redirect-uri", CALLBACK, "--public")[0] == 0
    status, out, err = idp(environ, *ADD, "--redirect-uri", CALLBACK, *extra)
    assert (status, out) == (1, "")
    assert err.startswith(message), err
    assert len(err.splitlines()) == 1


def test_an_unknown_tenant_is_a_one_line_error(environ: dict[str, str]) -> None:
    create_tenant(environ, "acme", "boss@acme.io")
    status, out, err = idp(environ, "list", "nope")
    assert (status, out) == (1, "")
    assert err == "error: no tenant named 'nope'; see: python server.py tenant list\n"
