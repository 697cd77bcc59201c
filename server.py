"""The Starlette app (`create_app(settings)`) and the command line.

python server.py [serve] [--host H] [--port P] [--workers N]
python server.py tenant create NAME [--admin-email E]
python server.py key create TENANT | key list TENANT | key revoke KEY_ID
python server.py migrate
"""

import argparse
import asyncio
import contextlib
import getpass
import logging
import os
import sys
import tempfile
from collections.abc import AsyncIterator, Sequence

import uvicorn
from peewee import IntegrityError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from auth.api_keys import new_api_key, shown_prefix
from auth.hashing import PasswordHasher
from auth.middleware import ApiKeyMiddleware
from auth.opaque import digest
from auth.passwords import hash_password
from auth.rate_limits import RateLimits
from errors import BadUserInput
from models import ApiKey, DuplicateEmail, Role, Tenant, TenantExists, User, database
from models.db import close_database, migrate, open_database
from models.session import purge_ended_sessions
from schema import build_schema
from settings import Settings, SettingsError
from validation import check_sign_up
from web.body_limit import BodyLimit
from web.graphql_view import GRAPHIQL_ASSETS, GraphQLView, is_graphiql_page
from web.headers import SecurityHeaders
from web.health import healthz, readyz
from web.metrics_endpoint import metrics
from web.request_log import RequestLog
from web.responses import http_error, internal_error

PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
PURGE_INTERVAL = 3600.0
CORS_HEADERS = ["x-api-key", "authorization", "content-type", "x-request-id"]
DEV_TENANT = "dev"
log = logging.getLogger("user_service")


def create_app(settings: Settings) -> Starlette:
    hasher = PasswordHasher(cost=settings.bcrypt_cost, threads=settings.hashing_threads)
    limits = RateLimits(
        storage_url=settings.redis_url,
        login_failures_per_account=settings.login_failures_per_account,
        login_failures_per_address=settings.login_failures_per_address,
        signups_per_address=settings.signups_per_address,
        code_failures_per_account=settings.code_failures_per_account,
    )
    view = GraphQLView(
        build_schema(settings), settings=settings, hasher=hasher, limits=limits
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        prepare_database(settings)
        purging = asyncio.create_task(purge_periodically())
        try:
            yield
        finally:
            purging.cancel()
            limits.close()
            hasher.close()
            close_database()

    def is_public(scope: Scope) -> bool:
        if scope["path"] in PUBLIC_PATHS or scope.get("method") == "OPTIONS":
            return True
        if not settings.graphiql:
            return False
        return is_graphiql_page(scope) or scope["path"].startswith("/graphiql/")

    return Starlette(
        routes=[
            Route("/graphql", view, methods=["GET", "POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
            *graphiql_assets(settings),
        ],
        middleware=[
            *client_address_middleware(settings),
            Middleware(RequestLog),
            Middleware(SecurityHeaders),
            # Outside the key check, so browsers' preflights get their answer.
            Middleware(
                CORSMiddleware,
                allow_origins=settings.cors_origins,
                allow_methods=["GET", "POST"],
                allow_headers=CORS_HEADERS,
                expose_headers=["x-request-id"],
                max_age=600,
            ),
            Middleware(BodyLimit, max_bytes=settings.max_body_bytes),
            Middleware(ApiKeyMiddleware, is_public=is_public),
        ],
        exception_handlers={HTTPException: http_error, Exception: internal_error},
        lifespan=lifespan,
    )


def graphiql_assets(settings: Settings) -> list[Mount]:
    """GraphiQL's scripts and styles, served here so it works offline (dev only)."""
    if not settings.graphiql:
        return []
    return [Mount("/graphiql", StaticFiles(directory=GRAPHIQL_ASSETS), name="graphiql")]


def client_address_middleware(settings: Settings) -> list[Middleware]:
    """X-Forwarded-For counts only when the peer is a trusted proxy."""
    if not settings.trusted_proxies:
        return []
    trusted = list(settings.trusted_proxies)
    return [Middleware(ProxyHeadersMiddleware, trusted_hosts=trusted)]


async def purge_periodically() -> None:
    """Keep the session tables small: ended sessions go after an hour."""
    while True:
        try:
            purge_ended_sessions()
        except Exception:  # a failed purge must not stop the next one
            log.exception("purging ended sessions failed")
        await asyncio.sleep(PURGE_INTERVAL)


def prepare_database(settings: Settings) -> None:
    """Connect, migrate, and in development make sure the dev tenant exists."""
    open_database(settings.database_url, timeout=settings.database_timeout)
    migrate()
    if not settings.is_production:
        ensure_dev_tenant(settings.dev_api_key)


def ensure_dev_tenant(api_key: str) -> None:
    tenant = Tenant.by_name(DEV_TENANT) or _add_tenant_racing(DEV_TENANT)
    if ApiKey.live_by_digest(digest(api_key)) is None:
        # Another worker may add it at the same moment; one row is enough.
        with contextlib.suppress(IntegrityError), database.atomic():
            add_api_key(tenant, api_key)


def _add_tenant_racing(name: str) -> Tenant:
    """Create a tenant that another worker starting at once may create first."""
    try:
        return Tenant.add(name)
    except TenantExists:
        tenant = Tenant.by_name(name)
        assert tenant is not None  # noqa: S101  # it exists: that was the error
        return tenant


def add_api_key(tenant: Tenant, key: str | None = None) -> str:
    key = key or new_api_key()
    ApiKey.create(tenant=tenant, digest=digest(key), prefix=shown_prefix(key))
    return key


def schema_sdl() -> str:
    """The SDL as development serves it: what schema.graphql holds."""
    return str(build_schema(Settings(env="development"))) + "\n"


def app_from_env() -> Starlette:
    """The factory uvicorn's workers call."""
    return create_app(Settings.from_env())


# ---- command line -------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    args = parser().parse_args(argv)
    command = args.command or "serve"
    if command == "export-schema":
        sys.stdout.write(schema_sdl())
        return 0
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if command == "serve":
        return serve(settings, args)
    open_database(settings.database_url, timeout=settings.database_timeout)
    try:
        applied = migrate()
        if command == "migrate":
            print(f"applied {len(applied)} migration(s): {', '.join(applied) or '-'}")
            return 0
        if command == "tenant":
            return create_tenant(settings, args.name, args.admin_email)
        return manage_keys(args)
    finally:
        close_database()


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="server.py", description=__doc__.split("\n")[0])
    commands = root.add_subparsers(dest="command")
    serve = commands.add_parser("serve", help="serve the GraphQL API (the default)")
    for target in (root, serve):
        target.add_argument("--host", help="default 127.0.0.1 (USER_SERVICE_HOST)")
        target.add_argument("--port", type=int, help="default 8000 (USER_SERVICE_PORT)")
        target.add_argument("--workers", type=int, help="worker processes, default 1")
    tenant = commands.add_parser("tenant", help="manage tenants")
    tenant_commands = tenant.add_subparsers(dest="action", required=True)
    create = tenant_commands.add_parser("create", help="create a tenant, print its key")
    create.add_argument("name")
    create.add_argument("--admin-email", help="also create this first ADMIN")
    key = commands.add_parser("key", help="manage a tenant's API keys")
    key_commands = key.add_subparsers(dest="action", required=True)
    key_commands.add_parser("create", help="create a key, print it").add_argument(
        "tenant"
    )
    key_commands.add_parser("list", help="list a tenant's keys").add_argument("tenant")
    key_commands.add_parser("revoke", help="revoke a key").add_argument(
        "key_id", type=int
    )
    commands.add_parser("migrate", help="bring the database schema up to date")
    commands.add_parser("export-schema", help="print the GraphQL SDL")
    return root


def serve(settings: Settings, args: argparse.Namespace) -> int:
    host = args.host or settings.host
    port = args.port or settings.port
    workers = args.workers or settings.workers
    prepare_database(settings)
    close_database()
    if workers > 1:
        share_metrics_between_workers()
    print_banner(settings, host, port)
    uvicorn.run(
        "server:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        server_header=False,
        # Client addresses come from USER_SERVICE_TRUSTED_PROXIES alone; and
        # uvicorn's access log would print query strings, so RequestLog logs.
        proxy_headers=False,
        access_log=False,
        log_level="info",
    )
    return 0


def share_metrics_between_workers() -> None:
    """Point prometheus-client's multiprocess mode at a fresh folder.

    Workers are new processes that read it at import; the folder must start empty.
    """
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(
            prefix="user-service-metrics-"
        )


def print_banner(settings: Settings, host: str, port: int) -> None:
    url = f"http://{host}:{port}/graphql"
    print(f"User service ({settings.env}) on {url}")
    if settings.is_production:
        return
    print(f"  GraphiQL:  open {url} in a browser")
    print(f"  API key:   {settings.dev_api_key}   (tenant '{DEV_TENANT}')")
    print(f'  Headers:   {{"X-API-Key": "{settings.dev_api_key}"}}')
    print("  First query:  { passwordPolicy { minLength maxLength } }")


def create_tenant(settings: Settings, name: str, admin_email: str | None) -> int:
    admin_password = read_admin_password() if admin_email else None
    try:
        key = new_tenant(settings, name, admin_email, admin_password)
    except TenantExists:
        print(f"error: a tenant named {name!r} exists already", file=sys.stderr)
        return 1
    except BadUserInput as error:
        for field, problem in error.fields.items():
            print(f"error: admin {field}: {problem}", file=sys.stderr)
        return 1
    print(
        f"created tenant {name!r}"
        + (f" with ADMIN {admin_email}" if admin_email else "")
    )
    print("API key (shown once, keep it safe):")
    print(key)
    return 0


def new_tenant(
    settings: Settings,
    name: str,
    admin_email: str | None = None,
    admin_password: str | None = None,
) -> str:
    """Create a tenant (and its first ADMIN); return its new API key."""
    with database.atomic():
        tenant = Tenant.add(name)
        if admin_email is not None:
            add_first_admin(settings, tenant, admin_email, admin_password or "")
        return add_api_key(tenant)


def read_admin_password() -> str:
    password = os.environ.get("USER_SERVICE_ADMIN_PASSWORD")
    if password is None:
        password = getpass.getpass("Password for the first ADMIN: ")
    return password


def add_first_admin(
    settings: Settings, tenant: Tenant, email: str, password: str
) -> None:
    email, _ = check_sign_up(email, password, {})
    password_hash = hash_password(password, cost=settings.bcrypt_cost)
    try:
        User.register(tenant, email, password_hash, role=Role.ADMIN.value)
    except DuplicateEmail:  # pragma: no cover  # the tenant is new
        raise BadUserInput({"email": "Email is taken."}) from None


def manage_keys(args: argparse.Namespace) -> int:
    if args.action == "revoke":
        if not ApiKey.revoke(args.key_id):
            print(f"error: no live key with id {args.key_id}", file=sys.stderr)
            return 1
        print(f"revoked key {args.key_id}")
        return 0
    tenant = Tenant.by_name(args.tenant)
    if tenant is None:
        print(f"error: no tenant named {args.tenant!r}", file=sys.stderr)
        return 1
    if args.action == "create":
        print(f"API key for tenant {tenant.name!r} (shown once, keep it safe):")
        print(add_api_key(tenant))
        return 0
    print(
        f"{'id':>6}  {'prefix':<14}{'created (UTC)':<21}{'last used (UTC)':<21}status"
    )
    for api_key in ApiKey.of_tenant(tenant):
        status = "revoked" if api_key.revoked_at else "live"
        created, used = _when(api_key.created_at), _when(api_key.last_used_at)
        prefix = api_key.prefix + "…"
        print(f"{api_key.id:>6}  {prefix:<14}{created:<21}{used:<21}{status}")
    return 0


def _when(moment: object) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "-"  # type: ignore[attr-defined]


if __name__ == "__main__":
    sys.exit(main())
