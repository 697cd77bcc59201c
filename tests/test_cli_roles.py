"""`role list`, `role grant` and `role revoke`: operators bootstrap a tenant's roles."""

from pathlib import Path

import pytest

from tests.conftest import PASSWORD, make_environ
from tests.servers import create_tenant, run_cli
from tests.test_cli import app_on

BOSS = "boss@acme.io"


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    return make_environ(tmp_path)


def role(environ: dict[str, str], *args: str) -> "tuple[int, str, str]":
    done = run_cli(environ, "role", *args)
    return done.returncode, done.stdout, done.stderr


def test_grant_list_and_revoke_roles_from_the_command_line(
    environ: dict[str, str],
) -> None:
    key = create_tenant(environ, "acme", BOSS)
    with app_on(environ, key) as api:
        boss = api.token(BOSS)
        api.sign_up("ann@acme.io").ok()
        define = (
            'mutation { defineRole(name: "support", permissions: ["users:read"])'
            " { name } }"
        )
        api.gql(define, token=boss).ok()
    assert role(environ, "grant", "acme", "ann@acme.io", "support") == (
        0,
        "granted support to ann@acme.io\n",
        "",
    )
    status, listed, _ = role(environ, "list", "acme")
    assert status == 0
    assert listed.splitlines() == [
        "ADMIN: users:read, users:write, users:deactivate, roles:manage, "
        "sessions:revoke, mfa:reset, audit:read, identity-providers:manage",
        f"  held by: {BOSS}",
        "USER: -",
        "support: users:read",
        "  held by: ann@acme.io",
    ]
    assert role(environ, "grant", "acme", "ann@acme.io", "ADMIN")[0] == 0
    assert role(environ, "revoke", "acme", BOSS, "ADMIN")[0] == 0
    assert role(environ, "revoke", "acme", "ann@acme.io", "support")[0] == 0
    with app_on(environ, key) as api:
        token = api.token("ann@acme.io", PASSWORD)
        me = api.gql("{ me { role roles } }", token=token).ok()["me"]
        assert me == {"role": "ADMIN", "roles": ["ADMIN"]}
        log = api.gql("{ auditLog { edges { node { action detail } } } }", token=token)
        details = [edge["node"]["detail"] for edge in log.ok()["auditLog"]["edges"]]
        assert "support (command line)" in details


def test_the_last_admin_cannot_be_revoked_from_the_command_line(
    environ: dict[str, str],
) -> None:
    create_tenant(environ, "acme", BOSS)
    status, out, err = role(environ, "revoke", "acme", BOSS, "ADMIN")
    assert (status, out) == (1, "")
    assert err == (
        "error: the tenant must keep an active account holding roles:manage\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("grant", "nope", "a@x.io", "ADMIN"), "error: no tenant named 'nope'"),
        (("grant", "acme", "nobody@acme.io", "ADMIN"), "error: no account"),
        (("grant", "acme", BOSS, "nope"), "error: no role 'nope' in tenant 'acme'"),
        (("revoke", "acme", BOSS, "USER"), "error: USER is the base role"),
    ],
    ids=["tenant", "email", "role", "USER"],
)
def test_unknown_names_are_one_line_errors(
    environ: dict[str, str], args: tuple[str, ...], message: str
) -> None:
    create_tenant(environ, "acme", BOSS)
    status, out, err = role(environ, *args)
    assert (status, out) == (1, "")
    assert err.startswith(message), err
    assert len(err.splitlines()) == 1
