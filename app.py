"""The Starlette app: `create_app(settings)` wires routes, middleware and lifespan.

uvicorn's workers build it with `app_from_env()`; tests build it with their own
settings. The command line lives in server.py.
"""

import asyncio
import contextlib
import gc
import logging
import logging.config
from collections.abc import AsyncIterator
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Scope
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

import tracing
from auth.hashing import PasswordHasher
from auth.key_ring import KeyRing
from auth.middleware import ApiKeyMiddleware
from auth.oidc import OidcClient
from auth.rate_limits import RateLimits
from mail import Mailer
from models.db import close_database, migrate, open_database
from models.session import purge_ended_sessions
from models.webhook import WebhookEvent
from models.workers import run, start_workers, stop_workers
from provisioning import ensure_dev_tenant, retire_dev_tenant
from schema import build_schema
from settings import Settings
from web.body_limit import BodyLimit
from web.cors import Cors
from web.graphiql_off import GraphiQLOff
from web.graphql_view import GRAPHIQL_ASSETS, GraphQLView, is_graphiql_page
from web.health import healthz, readyz
from web.metrics_endpoint import metrics
from web.request_log import RequestLog
from web.responses import http_error, internal_error
from web.well_known import well_known_routes
from webhooks import WebhookSender

# Only these paths need an API key: every other route is public, and a path the
# service does not serve answers 404 to anyone.
KEYED_PATHS = frozenset({"/graphql"})
GET_POST = ["GET", "POST"]
PURGE_INTERVAL = 3600.0
MAIL_DRAIN_SECONDS = 5.0
CORS_HEADERS = ["x-api-key", "authorization", "content-type", "x-request-id"]
log = logging.getLogger("user_service")


def create_app(
    settings: Settings, *, tracer_provider: TracerProvider | None = None
) -> Starlette:
    """The app; with a tracer provider, it traces requests and operations."""
    hasher = PasswordHasher(cost=settings.bcrypt_cost, threads=settings.hashing_threads)
    limits = RateLimits(
        storage_url=settings.redis_url,
        login_failures_per_account=settings.login_failures_per_account,
        login_failures_per_address=settings.login_failures_per_address,
        guesses_per_address=settings.guesses_per_address,
        signups_per_address=settings.signups_per_address,
        code_failures_per_account=settings.code_failures_per_account,
        mail_requests_per_address=settings.mail_requests_per_address,
    )
    mailer = Mailer(
        smtp_url=settings.smtp_url,
        sender=settings.mail_from,
        log_instead=not settings.is_production,
    )
    keys = KeyRing(settings)
    webhooks = WebhookSender(settings)
    view = GraphQLView(
        build_schema(settings, tracing.schema_extensions(tracer_provider)),
        settings=settings,
        hasher=hasher,
        limits=limits,
        mailer=mailer,
        keys=keys,
        oidc=OidcClient(),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        prepare_database(settings, keys)
        close_database()  # the loop's own connection: requests use the threads'
        start_workers(
            threads=settings.database_threads, timeout=settings.database_timeout
        )
        purging = asyncio.create_task(purge_periodically())
        mailing = asyncio.create_task(mailer.deliver_forever())
        # A delivery cut off here is still claimed: it is sent again once its
        # lease runs out, by whichever process is up.
        posting = asyncio.create_task(webhooks.deliver_forever())
        try:
            yield
        finally:
            posting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await posting
            await mailer.drain(timeout=MAIL_DRAIN_SECONDS)
            mailing.cancel()
            purging.cancel()
            limits.close()
            hasher.close()
            stop_workers()
            if tracer_provider is not None:
                tracer_provider.shutdown()  # sends the spans still queued

    def is_public(scope: Scope) -> bool:
        if scope["type"] != "http":
            return False  # every WebSocket handshake passes the key check
        if scope["path"] not in KEYED_PATHS or scope["method"] == "OPTIONS":
            return True
        return is_graphiql_page(scope)  # GraphiQL, or why it is off

    app = Starlette(
        routes=[
            Route("/graphql", graphql_endpoint(view, settings), methods=GET_POST),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz(limits), methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
            *well_known_routes(
                keys,
                issuer=settings.issuer,
                publish_ahead=settings.signing_key_publish_ahead,
            ),
            *graphiql_assets(settings),
        ],
        middleware=[
            *tracing.http_middleware(tracer_provider),
            *client_address_middleware(settings),
            Middleware(RequestLog, deadline=settings.database_timeout),
            Middleware(
                Cors,
                allow_origins=settings.cors_origins,
                allow_methods=["GET", "POST"],
                allow_headers=CORS_HEADERS,
                expose_headers=["x-request-id"],
                max_age=600,
            ),
            Middleware(BodyLimit, max_bytes=settings.max_body_bytes),
            Middleware(
                ApiKeyMiddleware,
                is_public=is_public,
                keys=keys,
                issuer=settings.issuer,
            ),
        ],
        exception_handlers={HTTPException: http_error, Exception: internal_error},
        lifespan=lifespan,
    )
    # /graphql/ is not /graphql: a path the service does not serve is a 404.
    app.router.redirect_slashes = False
    return app


def graphql_endpoint(view: GraphQLView, settings: Settings) -> ASGIApp:
    return view if settings.graphiql else GraphiQLOff(view)


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
    """Keep the session and webhook tables small: ended sessions go after an
    hour, finished webhook events after a day."""
    while True:
        try:
            await run(purge_ended_sessions)
            await run(WebhookEvent.purge_finished)
        except Exception:  # a failed purge must not stop the next one
            log.exception("purging ended sessions or webhook events failed")
        await asyncio.sleep(PURGE_INTERVAL)


def prepare_database(settings: Settings, keys: KeyRing | None = None) -> None:
    """Connect, migrate, make sure a signing key is ready, and give the dev
    tenant its key (development) or none."""
    open_database(
        settings.database_url,
        timeout=settings.database_timeout,
        # The database threads' own, and two for the event loop's and the CLI's.
        connections=settings.database_threads + 2,
    )
    migrate()
    (keys or KeyRing(settings)).ensure()
    if settings.is_production:
        retire_dev_tenant()
    else:
        ensure_dev_tenant(settings.dev_api_key)


def schema_sdl() -> str:
    """The SDL as development serves it: what schema.graphql holds."""
    return str(build_schema(Settings(env="development"))) + "\n"


def app_from_env() -> Starlette:
    """The factory uvicorn's workers call (new processes, when there are several)."""
    configure_logging()
    app = create_app(Settings.from_env(), tracer_provider=tracing.provider_from_env())
    # Modules, the schema and its caches live as long as the process: move them
    # out of the collector's reach, so its full passes stop rescanning them.
    gc.freeze()
    return app


def configure_logging() -> None:
    """Log at INFO (the request log's level) to stderr, one JSON object a line.

    Records skip what no line shows: the caller's source line (a walk up the
    stack on every call), thread and process names (logging's documented
    optimizations)."""
    logging.config.dictConfig(LOG_CONFIG)
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False


def json_lines() -> logging.Formatter:
    """Each record as one JSON object: time, level, logger, message and the
    record's `extra` fields (the request log's are its keys)."""
    return JsonFormatter(
        "{levelname}{name}{message}",
        style="{",
        timestamp="time",
        rename_fields={"levelname": "level", "name": "logger"},
        # uvicorn adds its message again with terminal colours.
        reserved_attrs=[*RESERVED_ATTRS, "color_message"],
    )


# For this process and for uvicorn, whose own loggers pass theirs up to the root.
LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": json_lines}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stderr",
        }
    },
    "root": {"level": "INFO", "handlers": ["stderr"]},
    "loggers": {
        name: {"handlers": [], "propagate": True}
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
    },
}
