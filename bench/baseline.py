"""The baseline: `me` without GraphQL, the practical ceiling of this stack.

A bare Starlette app doing the work the service does for `me`: look the API key
up by its SHA-256 digest, verify the access token with PyJWT against the
service's published signing key (audience = the key's tenant; a token verified
once is remembered by its digest, as the service does), read the user with one
indexed query through Peewee (model queries, or with --queries sql hand-written
SQL), and answer JSON shaped like
the GraphQL answer. It reads the service's database and keys from the same
USER_SERVICE_* variables, so a token from the service's `login` works here, and
it is served by uvicorn with the service's options (same loop and HTTP
implementation, same worker count).

With --strawberry the same work is a `me` resolver of a bare Strawberry schema
behind Strawberry's own HTTP view (parser and validation caches on, nothing
else): what GraphQL itself costs on top of that work, the ceiling of any
service built on Strawberry.

    python bench/baseline.py --port P [--workers N] [--queries model|sql]
                             [--strawberry]

Its own minimal models name only the columns it reads, so it does not depend on
the service's models.
"""

import argparse
import contextlib
import hashlib
import json
import os
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import jwt
import strawberry
import uvicorn
from peewee import (
    AutoField,
    CharField,
    Database,
    DateTimeField,
    ForeignKeyField,
    Model,
    UUIDField,
)
from playhouse import db_url
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from strawberry.asgi import GraphQL
from strawberry.extensions import ParserCache, ValidationCache

# The same pragmas as the service's models/db.py.
SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "foreign_keys": 1,
    "busy_timeout": 5000,
    "synchronous": "normal",
}
REQUIRED_CLAIMS = ["iss", "aud", "sub", "sid", "iat", "exp", "jti"]

# Two ways to read, chosen by --queries (default: model):
# - model: Peewee model queries, as the prototypes did; Peewee compiles
#   each query anew, so this is the ceiling for a service that does the same;
# - sql: hand-written SQL run by Peewee's execute_sql, the fastest practical
#   read, the ceiling for a service that hand-writes its hot queries.
QUERIES_ENV = "BENCH_BASELINE_QUERIES"
STRAWBERRY_ENV = "BENCH_BASELINE_STRAWBERRY"
SIGNING_KEYS_SQL = "SELECT public_jwk FROM signing_key WHERE retired_at IS NULL"
KEY_SQL = "SELECT tenant_id FROM api_key WHERE digest = {p} AND revoked_at IS NULL"
USER_SQL = (
    "SELECT id, email, role, city, organization, designation, mobile, created_at,"
    ' updated_at FROM "user" WHERE id = {p} AND tenant_id = {p}'
)
USER_FIELDS = (
    "id",
    "email",
    "role",
    "city",
    "organization",
    "designation",
    "mobile",
    "createdAt",
    "updatedAt",
)
FindKey = Callable[[str], UUID | None]  # digest -> tenant id
FindUser = Callable[[UUID, UUID], dict[str, Any] | None]  # user, tenant -> JSON


class Tenant(Model):
    id = UUIDField(primary_key=True)

    class Meta:
        table_name = "tenant"


class ApiKey(Model):
    id = AutoField()
    tenant = ForeignKeyField(Tenant, column_name="tenant_id")
    digest = CharField()
    revoked_at = DateTimeField(null=True)

    class Meta:
        table_name = "api_key"


class User(Model):
    id = UUIDField(primary_key=True)
    tenant = ForeignKeyField(Tenant, column_name="tenant_id")
    email = CharField()
    role = CharField()
    city = CharField(null=True)
    organization = CharField(null=True)
    designation = CharField(null=True)
    mobile = CharField(null=True)
    created_at = DateTimeField()
    updated_at = DateTimeField()

    class Meta:
        table_name = "user"


def model_queries(database: Database) -> tuple[FindKey, FindUser]:
    database.bind([Tenant, ApiKey, User])

    def find_key(digest: str) -> UUID | None:
        key = (
            ApiKey.select(ApiKey.tenant)
            .where((ApiKey.digest == digest) & ApiKey.revoked_at.is_null())
            .first()
        )
        return None if key is None else key.tenant_id

    def find_user(user_id: UUID, tenant_id: UUID) -> dict[str, Any] | None:
        user = User.get_or_none((User.id == user_id) & (User.tenant == tenant_id))
        if user is None:
            return None
        return as_json(
            (
                user.id,
                user.email,
                user.role,
                user.city,
                user.organization,
                user.designation,
                user.mobile,
                user.created_at,
                user.updated_at,
            )
        )

    return find_key, find_user


def sql_queries(database: Database) -> tuple[FindKey, FindUser]:
    key_sql = KEY_SQL.replace("{p}", database.param)
    user_sql = USER_SQL.replace("{p}", database.param)

    def find_key(digest: str) -> UUID | None:
        row = database.execute_sql(key_sql, (digest,)).fetchone()  # type: ignore[no-untyped-call]
        return None if row is None else as_uuid(row[0])

    def find_user(user_id: UUID, tenant_id: UUID) -> dict[str, Any] | None:
        cursor = database.execute_sql(  # type: ignore[no-untyped-call]
            user_sql, (user_id.hex, tenant_id.hex)
        )
        row = cursor.fetchone()
        return None if row is None else as_json(row)

    return find_key, find_user


def unauthorized(code: str) -> JSONResponse:
    body = {"errors": [{"message": code, "extensions": {"code": code}}]}
    return JSONResponse(body, status_code=401)


def create_app() -> Starlette:
    url = os.environ.get("USER_SERVICE_DATABASE_URL", "sqlite:///data/users.db")
    issuer = os.environ.get("USER_SERVICE_ISSUER", "http://127.0.0.1:8000")
    pragmas = SQLITE_PRAGMAS if url.startswith("sqlite:") else {}
    database = db_url.connect(url, **({"pragmas": pragmas} if pragmas else {}))
    queries = os.environ.get(QUERIES_ENV, "model")
    reader = sql_queries if queries == "sql" else model_queries
    find_key, find_user = reader(database)
    signing_keys: dict[str, jwt.PyJWK] = {}
    verified: dict[bytes, dict[str, Any]] = {}

    def public_key(token: str) -> jwt.PyJWK:
        kid = jwt.get_unverified_header(token).get("kid")
        if not isinstance(kid, str):
            raise jwt.InvalidTokenError("the token names no key")
        if kid not in signing_keys:  # the service made or rotated one
            for (jwk,) in database.execute_sql(SIGNING_KEYS_SQL).fetchall():
                key = jwt.PyJWK(json.loads(jwk))
                signing_keys[key.key_id or ""] = key
        return signing_keys[kid]

    def claims_of(token: str, tenant_id: UUID) -> dict[str, Any]:
        digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        claims = verified.get(digest)
        if claims is None or claims["exp"] <= datetime.now(UTC).timestamp():
            key = public_key(token)
            claims = verified[digest] = jwt.decode(
                token,
                key,
                algorithms=[key.algorithm_name],
                audience=str(tenant_id),
                issuer=issuer,
                options={"require": REQUIRED_CLAIMS},
            )
        if claims["aud"] != str(tenant_id):
            raise jwt.InvalidAudienceError("another tenant's token")
        return claims

    def caller(request: Request) -> dict[str, Any] | JSONResponse:
        """The caller's account as JSON, or the refusal."""
        keys = request.headers.getlist("x-api-key")
        if len(keys) != 1 or not keys[0]:
            return unauthorized("INVALID_API_KEY")
        digest = hashlib.sha256(keys[0].encode("utf-8", "surrogatepass")).hexdigest()
        tenant_id = find_key(digest)
        if tenant_id is None:
            return unauthorized("INVALID_API_KEY")
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return unauthorized("UNAUTHENTICATED")
        try:
            claims = claims_of(token.strip(), tenant_id)
            user_id = UUID(claims["sub"])
        except (jwt.PyJWTError, ValueError, KeyError):
            return unauthorized("UNAUTHENTICATED")
        user = find_user(user_id, tenant_id)
        return unauthorized("UNAUTHENTICATED") if user is None else user

    async def me(request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except ValueError:
            return JSONResponse({"errors": [{"message": "bad JSON"}]}, 400)
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            return JSONResponse({"errors": [{"message": "no query"}]}, 400)
        user = caller(request)
        return (
            user if isinstance(user, Response) else JSONResponse({"data": {"me": user}})
        )

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        database.connect(reuse_if_open=True)
        try:
            yield
        finally:
            database.close()

    endpoint = strawberry_view(caller) if os.environ.get(STRAWBERRY_ENV) else me
    return Starlette(
        routes=[
            Route("/graphql", endpoint, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


@strawberry.type
class UserType:
    id: strawberry.ID
    email: str
    role: str
    city: str | None
    organization: str | None
    designation: str | None
    mobile: str | None
    created_at: str
    updated_at: str


def strawberry_view(
    caller: Callable[[Request], dict[str, Any] | JSONResponse],
) -> GraphQL[Any, None]:
    @strawberry.type
    class Query:
        @strawberry.field
        def me(self, info: strawberry.Info) -> UserType:
            user = caller(info.context["request"])
            if isinstance(user, Response):
                raise PermissionError("UNAUTHENTICATED")
            created, updated = user.pop("createdAt"), user.pop("updatedAt")
            return UserType(**user, created_at=created, updated_at=updated)

    # One instance of each for every request, so that the caches outlive one
    # (Strawberry's documented usage; its operations hold no await in between).
    parser, validation = ParserCache(maxsize=256), ValidationCache(maxsize=256)
    schema = strawberry.Schema(Query, extensions=[lambda: parser, lambda: validation])
    return GraphQL(schema, graphql_ide=None)


def as_uuid(value: object) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))


def as_json(row: tuple[Any, ...]) -> dict[str, Any]:
    user = dict(zip(USER_FIELDS, row, strict=True))
    user["id"] = str(as_uuid(user["id"]))
    for name in ("createdAt", "updatedAt"):
        # Stored naive in UTC; answered with the offset, as the service does.
        moment = user[name]
        if isinstance(moment, str):
            moment = datetime.fromisoformat(moment)
        user[name] = moment.replace(tzinfo=UTC).isoformat()
    return user


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--queries", choices=["model", "sql"], default="model")
    parser.add_argument("--strawberry", action="store_true")
    args = parser.parse_args()
    os.environ[QUERIES_ENV] = args.queries  # uvicorn's workers inherit them
    if args.strawberry:
        os.environ[STRAWBERRY_ENV] = "1"
    # The options server.py's serve() passes; loop and http stay "auto"
    # (uvloop and httptools when installed), as for the service.
    uvicorn.run(
        "baseline:create_app",
        factory=True,
        app_dir=str(Path(__file__).resolve().parent),
        host=args.host,
        port=args.port,
        workers=args.workers,
        server_header=False,
        proxy_headers=False,
        access_log=False,
        log_level="info",
    )


if __name__ == "__main__":
    main()
