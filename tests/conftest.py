"""Fixtures: a fresh SQLite file per test, the real app behind Starlette's
TestClient (lifespan included), and `Api`, which wraps the key, token and
GraphQL ritual."""

import hashlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from starlette.testclient import TestClient

from app import create_app
from auth.key_ring import stored_key
from auth.sealing import unseal
from auth.signing_keys import KeySchedule, load_private_key
from auth.tokens import SigningKey
from models.db import close_database
from models.signing_key import SigningKey as SigningKeyRow
from provisioning import new_tenant
from settings import Settings
from tests.mail_server import Inbox, running_inbox

DATA_KEY = "test-data-key-" + "y" * 40
PASSWORD = "s3cret-Pw!"
REQUIRE_SERVICES = os.environ.get("USER_SERVICE_TEST_REQUIRE_SERVICES") == "1"
# One switch runs the whole suite on PostgreSQL: USER_SERVICE_TEST_DATABASE=postgresql
ON_POSTGRES = os.environ.get("USER_SERVICE_TEST_DATABASE", "sqlite") == "postgresql"
POSTGRES_URL = os.environ.get(
    "USER_SERVICE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
RUN_ID = uuid.uuid4().hex[:8]


def service_signing_key() -> SigningKey:
    """The key the app under test signs with now, read from its database."""
    now = datetime.now(UTC)
    stored = KeySchedule.of(
        [stored_key(row) for row in SigningKeyRow.unretired()], token_ttl=timedelta(0)
    ).signing_key(now)
    assert stored is not None
    pem = unseal(stored.sealed_private_key, keys=[DATA_KEY])
    return SigningKey(stored.kid, stored.algorithm, load_private_key(pem))


def service_missing(reason: str) -> None:
    """Skip, or fail where the services must be there (CI)."""
    if REQUIRE_SERVICES:
        pytest.fail(f"required service missing: {reason}")
    pytest.skip(reason)


def make_environ(tmp_path: Path, **overrides: str) -> dict[str, str]:
    return {
        "USER_SERVICE_DATA_DIR": str(tmp_path),
        "USER_SERVICE_DATABASE_URL": database_url(tmp_path),
        "USER_SERVICE_DATA_KEY": DATA_KEY,
        # Cost 4 keeps the suite fast; production's 12 is checked on its own.
        "USER_SERVICE_BCRYPT_COST": "4",
        # The webhook sender's idle polls would show in pinned query counts; the
        # webhook tests poll fast (its wake-up on a new event works either way).
        "USER_SERVICE_WEBHOOK_POLL_INTERVAL": "3600",
        **overrides,
    }


def database_url(tmp_path: Path) -> str:
    """A fresh database for this test: a SQLite file, or a PostgreSQL schema."""
    if not ON_POSTGRES:
        return f"sqlite:///{tmp_path}/users.db"
    schema = f"t_{RUN_ID}_{hashlib.sha256(str(tmp_path).encode()).hexdigest()[:12]}"
    with postgres() as connection:
        connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    return f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"


def postgres() -> "psycopg.Connection[tuple[object, ...]]":
    try:
        return psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError:
        service_missing(f"PostgreSQL at {POSTGRES_URL} is not reachable")
        raise


@pytest.fixture(scope="module", autouse=True)
def drop_test_schemas() -> Iterator[None]:
    """Runs never collide (each has its own schemas) and leave nothing behind.

    Dropped after each module, not once at the end: information_schema's views
    (which Peewee's migrator reads) slow down with every schema on the server,
    to seconds per query after a thousand."""
    yield
    if ON_POSTGRES:
        with postgres() as connection:
            rows = connection.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s",
                (f"t_{RUN_ID}_%",),
            ).fetchall()
            for (schema,) in rows:
                connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    return make_environ(tmp_path)


@pytest.fixture
def settings(environ: dict[str, str]) -> Settings:
    return Settings.from_env(environ)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client
    close_database()  # the test thread's own connection, if it opened one


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    """A loopback SMTP server; a module's own `environ` sends the mail there."""
    with running_inbox() as inbox:
        yield inbox


@dataclass
class Result:
    status: int
    body: dict[str, Any]
    headers: Any = None

    @property
    def data(self) -> Any:
        return self.body.get("data")

    @property
    def errors(self) -> list[dict[str, Any]]:
        return self.body.get("errors") or []

    @property
    def error_code(self) -> str | None:
        return self.errors[0]["extensions"]["code"] if self.errors else None

    @property
    def extensions(self) -> dict[str, Any]:
        extensions: dict[str, Any] = self.errors[0]["extensions"]
        return extensions

    def ok(self) -> Any:
        assert self.status == 200, self.body
        assert not self.errors, self.errors
        return self.data


@dataclass
class Api:
    """One tenant's view of the service: its API key on every request."""

    client: TestClient
    api_key: str
    settings: Settings
    tokens: dict[str, str] = field(default_factory=dict)

    def gql(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Result:
        sent = {"X-API-Key": self.api_key, **(headers or {})}
        if token:
            sent["Authorization"] = f"Bearer {token}"
        response = self.client.post(
            "/graphql", json={"query": query, "variables": variables}, headers=sent
        )
        return Result(response.status_code, response.json(), response.headers)

    def sign_up(
        self,
        email: str,
        password: str = PASSWORD,
        *,
        token: str | None = None,
        **fields: Any,
    ) -> Result:
        return self.gql(
            "mutation($input: SignUpInput!) { signUp(input: $input) { id email role"
            " city organization designation mobile createdAt updatedAt } }",
            {"input": {"email": email, "password": password, **fields}},
            token=token,
        )

    def login(self, email: str, password: str = PASSWORD) -> Result:
        return self.gql(
            "mutation($email: String!, $password: String!) {"
            " login(email: $email, password: $password) {"
            " accessToken tokenType expiresIn refreshToken refreshExpiresIn"
            " user { id email role } } }",
            {"email": email, "password": password},
        )

    def token(self, email: str, password: str = PASSWORD) -> str:
        return str(self.login(email, password).ok()["login"]["accessToken"])

    def user(self, email: str, password: str = PASSWORD, **fields: Any) -> str:
        """Sign up and log in; return the access token."""
        self.sign_up(email, password, **fields).ok()
        return self.token(email, password)

    def me(self, token: str | None) -> Result:
        return self.gql(
            "{ me { id email role city organization designation mobile } }", token=token
        )

    def update_profile(self, token: str | None, **input: Any) -> Result:
        return self.gql(
            "mutation($input: UpdateProfileInput!) { updateProfile(input: $input) {"
            " email role city organization designation mobile updatedAt } }",
            {"input": input},
            token=token,
        )

    def tenant(self, name: str, admin: tuple[str, str] | None = None) -> "Api":
        """Another tenant (with its first ADMIN), as `tenant create` makes it."""
        email, password = admin or (None, None)
        key = new_tenant(self.settings, name, email, password)
        return Api(self.client, key, self.settings)


@pytest.fixture
def api(client: TestClient, settings: Settings) -> Api:
    """The dev tenant, which development start-up ensures."""
    return Api(client, settings.dev_api_key, settings)


@pytest.fixture
def admin_api(api: Api) -> Api:
    """A tenant 'acme' whose first ADMIN is boss@acme.io."""
    return api.tenant("acme", admin=("boss@acme.io", PASSWORD))
