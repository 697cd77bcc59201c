"""`server.py tenant set`: a tenant's passkeys' relying party, as an operator
sets it, checked before it is stored, and audited."""

from pathlib import Path

import pytest

from models import Tenant
from tests.conftest import make_environ
from tests.test_cli import app_on, run_cli, run_ok
from tests.test_cli_tenants import assert_refused

SET = ("tenant", "set", "acme", "--webauthn-rp-id")


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    return make_environ(tmp_path)


def test_tenant_set_stores_the_relying_party_and_audits_it(
    environ: dict[str, str],
) -> None:
    key = run_ok(environ, "tenant", "create", "acme").last_line
    done = run_ok(
        environ,
        *SET,
        "example.com",
        *("--webauthn-origin", "https://example.com:443"),
        *("--webauthn-origin", "HTTPS://App.Example.com:8443"),
    )
    assert done.stdout.strip() == (
        "tenant 'acme': passkeys for RP ID example.com from https://example.com, "
        "https://app.example.com:8443"
    )
    audit = run_ok(environ, "audit", "acme", "--action", "PASSKEY_SETTINGS_CHANGED")
    assert "RP ID example.com, origins https://example.com" in audit.stdout
    with app_on(environ, key) as api:
        options = api.gql("mutation { startPasskeyLogin { options } }").ok()
        assert '"rpId": "example.com"' in options["startPasskeyLogin"]["options"]
        party = Tenant.relying_party(Tenant.get(Tenant.name == "acme").id)
        assert party is not None
        assert party.origins == ["https://example.com", "https://app.example.com:8443"]


@pytest.mark.parametrize(
    ("rp_id", "origin", "problem"),
    [
        ("https://example.com", "https://example.com", "A domain name"),
        ("Example.com", "https://example.com", "A domain name"),
        ("127.0.0.1", "https://127.0.0.1", "A domain name"),
        ("example.com", "https://evil.net", "on the RP ID's domain"),
        ("example.com", "https://notexample.com", "on the RP ID's domain"),
        ("example.com", "http://example.com", "http:// only for localhost"),
        ("example.com", "https://example.com/login", "An origin such as"),
        ("example.com", "https://user@example.com", "An origin such as"),
        ("example.com", "https://example.com:99999", "An origin such as"),
    ],
    ids=[
        "scheme-in-rp-id",
        "upper-case-rp-id",
        "ip-address",
        "other-domain",
        "suffix-not-subdomain",
        "plain-http",
        "path",
        "user-info",
        "bad-port",
    ],
)
def test_tenant_set_refuses_a_relying_party_browsers_would_refuse(
    environ: dict[str, str], rp_id: str, origin: str, problem: str
) -> None:
    run_ok(environ, "tenant", "create", "acme")
    refused = run_cli(environ, *SET, rp_id, "--webauthn-origin", origin)
    assert_refused(refused, problem)


def test_tenant_set_of_an_unknown_tenant_is_refused(environ: dict[str, str]) -> None:
    refused = run_cli(
        environ, *SET, "example.com", "--webauthn-origin", "https://example.com"
    )
    assert_refused(refused, "no tenant named 'acme'")
