"""Production on a database that once served development: the dev tenant's keys
answer INVALID_API_KEY there (CONTRACT.md, "Amendments (second round)")."""

import contextlib
from collections.abc import Iterator
from pathlib import Path

from starlette.testclient import TestClient

from app import create_app
from models.db import close_database
from settings import DEFAULT_DEV_API_KEY, Settings
from tests.conftest import Api, make_environ
from tests.servers import run_cli

PRODUCTION = {"USER_SERVICE_ENV": "production", "USER_SERVICE_BCRYPT_COST": "10"}
POLICY = "{ passwordPolicy { minLength } }"


@contextlib.contextmanager
def serving(environ: dict[str, str], api_key: str) -> Iterator[Api]:
    """The app as `serve` starts it on `environ`'s database, seen through `api_key`."""
    settings = Settings.from_env(environ)
    with TestClient(create_app(settings)) as client:
        yield Api(client, api_key, settings)
    close_database()


def is_refused(api: Api) -> bool:
    result = api.gql(POLICY)
    return (result.status, result.error_code) == (401, "INVALID_API_KEY")


def test_dev_key_that_worked_in_development_is_invalid_in_production(
    tmp_path: Path,
) -> None:
    environ = make_environ(tmp_path)
    with serving(environ, DEFAULT_DEV_API_KEY) as development:
        assert development.gql(POLICY).ok() == {"passwordPolicy": {"minLength": 8}}
        token = development.user("ann@x.io")
    with serving(environ | PRODUCTION, DEFAULT_DEV_API_KEY) as production:
        assert is_refused(production)
        me = production.me(token)
        assert (me.status, me.error_code) == (401, "INVALID_API_KEY")


def test_every_key_of_the_dev_tenant_is_invalid_in_production(tmp_path: Path) -> None:
    environ = make_environ(tmp_path, USER_SERVICE_DEV_API_KEY="usk_my_own_dev_key")
    with serving(environ, "usk_my_own_dev_key") as development:
        development.gql(POLICY).ok()
    created = run_cli(environ, "key", "create", "dev")
    extra_key = created.stdout.strip().splitlines()[-1]
    with serving(environ | PRODUCTION, "usk_my_own_dev_key") as production:
        assert is_refused(production)
        assert is_refused(Api(production.client, extra_key, production.settings))


def test_production_start_audits_each_dev_key_it_revokes(tmp_path: Path) -> None:
    environ = make_environ(tmp_path)
    with serving(environ, DEFAULT_DEV_API_KEY) as development:
        development.gql(POLICY).ok()
    for _ in range(2):  # a second start finds nothing left to revoke
        with serving(environ | PRODUCTION, DEFAULT_DEV_API_KEY):
            pass
    audit = run_cli(environ | PRODUCTION, "audit", "dev", "--action", "API_KEY_REVOKED")
    assert audit.returncode == 0, audit.stderr
    assert len(audit.stdout.strip().splitlines()) == 1
    assert DEFAULT_DEV_API_KEY[:12] in audit.stdout


def test_development_after_production_gets_the_dev_key_back(tmp_path: Path) -> None:
    environ = make_environ(tmp_path)
    with serving(environ, DEFAULT_DEV_API_KEY) as development:
        development.gql(POLICY).ok()
    with serving(environ | PRODUCTION, DEFAULT_DEV_API_KEY) as production:
        assert is_refused(production)
    with serving(environ, DEFAULT_DEV_API_KEY) as development:
        assert development.gql(POLICY).ok() == {"passwordPolicy": {"minLength": 8}}
