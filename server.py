"""The command line: serve, and the operator's tenant, key and audit commands.

python server.py [serve] [--host H] [--port P] [--workers N]
python server.py tenant create NAME [--admin-email E] | tenant list
python server.py tenant add-admin NAME EMAIL
python server.py tenant set NAME --webauthn-rp-id DOMAIN --webauthn-origin ORIGIN …
python server.py key create TENANT | key list TENANT | key revoke KEY_ID
python server.py audit TENANT [--action A] [--limit N]
python server.py role list TENANT | role grant TENANT EMAIL ROLE | role revoke …
python server.py signing-key rotate | signing-key list | signing-key retire KID
python server.py webhook add TENANT URL [--event TYPE …] | webhook list TENANT
python server.py webhook remove ID
python server.py idp add TENANT --name N --issuer URL --client-id ID --redirect-uri U …
python server.py idp list TENANT | idp remove ID
python server.py migrate [--status]
python server.py export-schema
"""

import argparse
import contextlib
import getpass
import logging
import os
import shutil
import socket
import sys
import tempfile
import urllib.parse
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import NoReturn

import uvicorn
from peewee import ImproperlyConfigured, InterfaceError, OperationalError

from app import LOG_CONFIG, configure_logging, prepare_database, schema_sdl
from auth.key_ring import KeyRing
from errors import BadUserInput
from models import (
    Action,
    ApiKey,
    AuditEvent,
    IdentityProvider,
    ProviderExists,
    Tenant,
    TenantExists,
    User,
)
from models.db import close_database, migrate, migration_status, open_database
from models.signing_key import SigningKey
from models.webhook import EVENT_TYPES, WebhookEndpoint
from provisioning import (
    DEV_TENANT,
    RoleRefused,
    add_admin,
    add_api_key,
    add_identity_provider,
    add_webhook,
    grant_role_as_operator,
    new_tenant,
    remove_identity_provider,
    revoke_api_key,
    revoke_role_as_operator,
    roles_with_holders,
    set_relying_party,
)
from settings import PREFIX, Settings, SettingsError, is_port
from validation import check_tenant_name, is_clean_text, url_problem
from web.slow_clients import slow_client_guard

log = logging.getLogger("user_service")
WEBHOOK_URL_LENGTH = 2000
NO_PASSWORD = (
    f"no password for the ADMIN: set {PREFIX}ADMIN_PASSWORD, or run this in a "
    "terminal to type it"
)
NO_CLIENT_SECRET = (
    f"no client secret: set {PREFIX}IDP_CLIENT_SECRET, run this in a terminal to "
    "type it, or register a public client with --public"
)


def main(argv: Sequence[str] | None = None) -> int:
    configure_logging()
    args = parser().parse_args(argv)
    command = args.command or "serve"
    if command == "export-schema":
        sys.stdout.write(schema_sdl())
        return 0
    try:
        settings = Settings.from_env()
        if command == "serve":
            return serve(settings, args)
        return run_command(settings, args)
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Refusal as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


class Refusal(Exception):
    """An operator's command cannot be done; the message says why (exit 1)."""


def run_command(settings: Settings, args: argparse.Namespace) -> int:
    command = args.command
    if creates_for_dev_tenant(settings, args):
        print(
            f"error: the tenant {DEV_TENANT!r} exists only in development; "
            "a production start revokes its keys",
            file=sys.stderr,
        )
        return 1
    try:
        with database_named_in_errors():
            open_database(settings.database_url, timeout=settings.database_timeout)
            if command == "migrate" and args.status:
                return show_migrations()
            applied = migrate()
        if command == "migrate":
            KeyRing(settings).ensure()
            print(f"applied {len(applied)} migration(s): {', '.join(applied) or '-'}")
            return 0
        if command == "tenant":
            return manage_tenants(settings, args)
        if command == "audit":
            return show_audit(args.tenant, action=args.action, limit=args.limit)
        if command == "role":
            return manage_roles(args)
        if command == "signing-key":
            return manage_signing_keys(KeyRing(settings), args)
        if command == "webhook":
            return manage_webhooks(settings, args)
        if command == "idp":
            return manage_identity_providers(settings, args)
        return manage_keys(args)
    finally:
        close_database()


class Parser(argparse.ArgumentParser):
    """argparse, with its refusals on one line like every other error here."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see: python {self.prog} --help)\n")


def parser() -> argparse.ArgumentParser:
    root = Parser(prog="server.py", description=__doc__.split("\n")[0])
    commands = root.add_subparsers(dest="command")
    serve = commands.add_parser("serve", help="serve the GraphQL API (the default)")
    for target in (root, serve):
        target.add_argument("--host", help="default 127.0.0.1 (USER_SERVICE_HOST)")
        target.add_argument(
            "--port", type=port_number, help="default 8000 (USER_SERVICE_PORT)"
        )
        target.add_argument(
            "--workers", type=positive, help="worker processes, default 1"
        )
    tenant = commands.add_parser("tenant", help="manage tenants")
    tenant_commands = tenant.add_subparsers(dest="action", required=True)
    create = tenant_commands.add_parser("create", help="create a tenant, print its key")
    create.add_argument("name")
    create.add_argument("--admin-email", help="also create this first ADMIN")
    tenant_commands.add_parser("list", help="list the tenants")
    add_admin = tenant_commands.add_parser(
        "add-admin", help="give a tenant one more ADMIN account"
    )
    add_admin.add_argument("name")
    add_admin.add_argument("email")
    settings = tenant_commands.add_parser(
        "set", help="change a tenant's settings: its passkeys' relying party"
    )
    settings.add_argument("name")
    settings.add_argument(
        "--webauthn-rp-id", required=True, help="the domain passkeys are bound to"
    )
    settings.add_argument(
        "--webauthn-origin",
        action="append",
        required=True,
        help="a page origin that may use them (repeat for more)",
    )
    key = commands.add_parser("key", help="manage a tenant's API keys")
    key_commands = key.add_subparsers(dest="action", required=True)
    key_commands.add_parser("create", help="create a key, print it").add_argument(
        "tenant"
    )
    key_commands.add_parser("list", help="list a tenant's keys").add_argument("tenant")
    key_commands.add_parser("revoke", help="revoke a key").add_argument(
        "key_id", type=int
    )
    audit = commands.add_parser(
        "audit", help="print a tenant's audit log, newest first"
    )
    audit.add_argument("tenant")
    audit.add_argument(
        "--action", type=audit_action, help="only this action, e.g. LOGIN_FAILED"
    )
    audit.add_argument("--limit", type=positive, default=50, help="at most this many")
    role = commands.add_parser("role", help="see and give a tenant's roles")
    role_commands = role.add_subparsers(dest="action", required=True)
    role_commands.add_parser(
        "list", help="the tenant's roles, their permissions and holders"
    ).add_argument("tenant")
    for action, what in (("grant", "give"), ("revoke", "take back")):
        change = role_commands.add_parser(
            action, help=f"{what} a role (ADMIN and USER: the base role)"
        )
        for name in ("tenant", "email", "role"):
            change.add_argument(name)
    signing = commands.add_parser("signing-key", help="manage token signing keys")
    signing_commands = signing.add_subparsers(dest="action", required=True)
    signing_commands.add_parser(
        "rotate", help="publish a new key now; it signs after the publish-ahead"
    )
    signing_commands.add_parser("list", help="list the keys and their state")
    signing_commands.add_parser(
        "retire", help="stop publishing a key now: its tokens stop working"
    ).add_argument("kid")
    add_webhook_commands(commands)
    add_idp_commands(commands)
    migrate_command = commands.add_parser(
        "migrate", help="bring the database schema up to date"
    )
    migrate_command.add_argument(
        "--status", action="store_true", help="list applied and pending; change nothing"
    )
    commands.add_parser("export-schema", help="print the GraphQL SDL")
    return root


def add_webhook_commands(commands: "argparse._SubParsersAction[Parser]") -> None:
    webhook = commands.add_parser("webhook", help="manage a tenant's webhook endpoints")
    webhook_commands = webhook.add_subparsers(dest="action", required=True)
    add = webhook_commands.add_parser(
        "add", help="register an endpoint, print its signing secret"
    )
    add.add_argument("tenant")
    add.add_argument("url", type=webhook_url)
    add.add_argument(
        "--event",
        type=event_type,
        action="append",
        default=[],
        help="an event type it receives (repeat it; all when none)",
    )
    webhook_commands.add_parser("list", help="list a tenant's endpoints").add_argument(
        "tenant"
    )
    webhook_commands.add_parser("remove", help="remove an endpoint").add_argument(
        "endpoint_id", type=int
    )


def webhook_url(text: str) -> str:
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"{text!r} is not an http:// or https:// URL")
    if len(text) > WEBHOOK_URL_LENGTH:
        raise argparse.ArgumentTypeError(
            f"a URL of at most {WEBHOOK_URL_LENGTH} characters"
        )
    return text


def event_type(text: str) -> str:
    if text not in EVENT_TYPES:
        raise argparse.ArgumentTypeError(
            f"no event type {text!r}; use one of {', '.join(EVENT_TYPES)}"
        )
    return text


def add_idp_commands(commands: "argparse._SubParsersAction[Parser]") -> None:
    idp = commands.add_parser(
        "idp", help="manage a tenant's OpenID Connect identity providers"
    )
    idp_commands = idp.add_subparsers(dest="action", required=True)
    add = idp_commands.add_parser(
        "add",
        help=f"register a provider, print its id (secret: {PREFIX}IDP_CLIENT_SECRET)",
    )
    add.add_argument("tenant")
    add.add_argument("--name", required=True, type=provider_name, help="its button")
    add.add_argument(
        "--issuer", required=True, type=issuer_url, help="the provider's issuer URL"
    )
    add.add_argument("--client-id", required=True, type=client_id)
    add.add_argument(
        "--redirect-uri",
        required=True,
        action="append",
        type=redirect_uri,
        dest="redirect_uris",
        help="a frontend URL the provider may send the browser back to (repeatable)",
    )
    add.add_argument(
        "--allow-sign-up", action="store_true", help="create unknown users (USER)"
    )
    add.add_argument(
        "--public", action="store_true", help="a public client: no secret, PKCE only"
    )
    idp_commands.add_parser("list", help="list a tenant's providers").add_argument(
        "tenant"
    )
    idp_commands.add_parser(
        "remove", help="remove a provider and every identity linked through it"
    ).add_argument("provider_id")


def issuer_url(text: str) -> str:
    problem = url_problem(text, redirect=False)
    if problem:
        raise argparse.ArgumentTypeError(f"issuer {text!r}: {problem}")
    return text


def redirect_uri(text: str) -> str:
    problem = url_problem(text, redirect=True)
    if problem:
        raise argparse.ArgumentTypeError(f"redirect URI {text!r}: {problem}")
    return text


def provider_name(text: str) -> str:
    if not 0 < len(text) <= 64 or text != text.strip() or not is_clean_text(text):
        raise argparse.ArgumentTypeError(
            f"{text!r}: a name is 1 to 64 characters, no spaces at either end"
        )
    return text


def client_id(text: str) -> str:
    if not 0 < len(text) <= 500 or not is_clean_text(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a client id")
    return text


def port_number(text: str) -> int:
    value = positive(text)
    if not is_port(value):
        raise argparse.ArgumentTypeError(f"{text} is not a port number (1 to 65535)")
    return value


def audit_action(text: str) -> str:
    if text.upper() not in Action.__members__:
        raise argparse.ArgumentTypeError(
            f"no action {text!r}; use one of {', '.join(Action)}"
        )
    return text.upper()


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return value


@contextlib.contextmanager
def database_named_in_errors() -> Iterator[None]:
    """A database that cannot be opened is a setting to fix, not a traceback."""
    try:
        yield
    except ImproperlyConfigured as error:  # a driver that is not installed
        raise SettingsError(
            f"{PREFIX}DATABASE_URL: {str(error).rstrip('!')}; use sqlite:// or "
            "postgresql://, whose drivers come with the service."
        ) from None
    except (OperationalError, InterfaceError, OSError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise SettingsError(
            f"{PREFIX}DATABASE_URL: the database cannot be used "
            f"({reason or type(error).__name__}); check that it is running and "
            "that the URL names it."
        ) from None


def creates_for_dev_tenant(settings: Settings, args: argparse.Namespace) -> bool:
    """Production revokes the dev tenant's keys at start: a new one would not last."""
    if not settings.is_production or args.command not in ("tenant", "key"):
        return False
    name = getattr(args, "name", None) or getattr(args, "tenant", None)
    return bool(args.action == "create" and name == DEV_TENANT)


def serve(settings: Settings, args: argparse.Namespace) -> int:
    host = args.host or settings.host
    port = args.port or settings.port
    workers = args.workers or settings.workers
    check_can_listen(host, port)
    with database_named_in_errors():
        prepare_database(settings)
    close_database()
    metrics_folder = share_metrics_between_workers() if workers > 1 else None
    print_banner(settings, host, port)
    if settings.is_production and settings.smtp_url is None:
        log.warning(
            "%sSMTP_URL is not set: password-reset and verification mails are "
            "dropped. Set it to smtp://user:pass@host:587?starttls=true.",
            PREFIX,
        )
    try:
        listen(settings, host=host, port=port, workers=workers)
    finally:
        if metrics_folder is not None:
            shutil.rmtree(metrics_folder, ignore_errors=True)
    return 0


def listen(settings: Settings, *, host: str, port: int, workers: int) -> None:
    # uvicorn bounds neither how long a request may take to arrive nor how many
    # connections a worker holds: this protocol does.
    protocol = slow_client_guard(
        header_timeout=settings.header_timeout,
        body_timeout=settings.body_timeout,
        max_connections=settings.max_connections,
    )
    uvicorn.run(
        "app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        http=protocol,  # type: ignore[arg-type]  # uvicorn calls it like a class
        server_header=False,
        # Client addresses come from USER_SERVICE_TRUSTED_PROXIES alone; and
        # uvicorn's access log would print query strings, so RequestLog logs.
        proxy_headers=False,
        access_log=False,
        log_level="info",
        log_config=LOG_CONFIG,
    )


def check_can_listen(host: str, port: int) -> None:
    """Say so at once, before the banner, when the address is taken or unknown."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        socket.create_server((host, port), family=family).close()
    except OSError as error:
        raise SettingsError(
            f"cannot listen on {host}:{port} ({error.strerror or error}): choose "
            f"another --host or --port ({PREFIX}HOST, {PREFIX}PORT), or stop what "
            "uses it."
        ) from None


def share_metrics_between_workers() -> str | None:
    """Point prometheus-client's multiprocess mode at a fresh folder; return it,
    for removal at the end, unless the operator named one.

    Workers are new processes that read it at import; the folder must start empty.
    """
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return None
    folder = tempfile.mkdtemp(prefix="user-service-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    return folder


def print_banner(settings: Settings, host: str, port: int) -> None:
    url = f"http://{host}:{port}/graphql"
    lines = [f"User service ({settings.env}) on {url}"]
    if not settings.is_production:
        lines += [
            f"  GraphiQL:  open {url} in a browser",
            f"  API key:   {settings.dev_api_key}   (tenant '{DEV_TENANT}')",
            f'  Headers:   {{"X-API-Key": "{settings.dev_api_key}"}}',
            "  First query:  { passwordPolicy { minLength maxLength } }",
        ]
    # Under a pipe (tee, systemd, a container) stdout would hold it in its buffer.
    print("\n".join(lines), flush=True)


def manage_tenants(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "list":
        return list_tenants()
    if args.action == "add-admin":
        return add_tenant_admin(settings, args.name, args.email)
    if args.action == "set":
        return set_tenant(args.name, args.webauthn_rp_id, args.webauthn_origin)
    return create_tenant(settings, args.name, args.admin_email)


def create_tenant(settings: Settings, name: str, admin_email: str | None) -> int:
    check_tenant_name_or_refuse(name)
    admin_password = read_admin_password() if admin_email else None
    try:
        key = new_tenant(settings, name, admin_email, admin_password)
    except TenantExists:
        raise Refusal(f"a tenant named {name!r} exists already") from None
    except BadUserInput as error:
        raise Refusal(admin_problems(error)) from None
    print(
        f"created tenant {name!r}"
        + (f" with ADMIN {admin_email}" if admin_email else "")
    )
    print("API key (shown once, keep it safe):")
    print(key)
    return 0


def list_tenants() -> int:
    print(
        f"{'name':<30}  {'created (UTC)':<19}  {'live keys':>9}  {'users':>6}  admins"
    )
    for tenant in Tenant.in_name_order():
        live_keys = sum(key.revoked_at is None for key in ApiKey.of_tenant(tenant))
        users, admins = User.headcount(tenant)
        print(
            f"{tenant.name:<30}  {_when(tenant.created_at):<19}  {live_keys:>9}  "
            f"{users:>6}  {admins}"
        )
    return 0


def add_tenant_admin(settings: Settings, name: str, email: str) -> int:
    tenant = existing_tenant(name)
    password = read_admin_password()
    try:
        add_admin(settings, tenant, email, password)
    except BadUserInput as error:
        raise Refusal(admin_problems(error)) from None
    print(f"added ADMIN {email} to tenant {name!r}")
    return 0


def set_tenant(name: str, rp_id: str, origins: list[str]) -> int:
    tenant = existing_tenant(name)
    try:
        party = set_relying_party(tenant, rp_id, origins)
    except BadUserInput as error:
        raise Refusal("; ".join(error.fields.values())) from None
    print(
        f"tenant {name!r}: passkeys for RP ID {party.rp_id} from "
        f"{', '.join(party.origins)}"
    )
    return 0


def check_tenant_name_or_refuse(name: str) -> None:
    try:
        check_tenant_name(name)
    except BadUserInput as error:
        raise Refusal(f"tenant name {name!r}: {error.fields['name']}") from None


def admin_problems(error: BadUserInput) -> str:
    return "; ".join(
        f"admin {field}: {problem}" for field, problem in error.fields.items()
    )


def existing_tenant(name: str) -> Tenant:
    tenant = Tenant.by_name(name)
    if tenant is None:
        raise Refusal(f"no tenant named {name!r}; see: python server.py tenant list")
    return tenant


def read_admin_password() -> str:
    """From USER_SERVICE_ADMIN_PASSWORD, else typed at the terminal, not echoed."""
    password = os.environ.get("USER_SERVICE_ADMIN_PASSWORD")
    if password is not None:
        return password
    if not has_terminal():
        raise Refusal(NO_PASSWORD)
    try:
        return getpass.getpass("Password for the ADMIN: ")
    except (EOFError, KeyboardInterrupt):
        raise Refusal(NO_PASSWORD) from None


def has_terminal() -> bool:
    """Whether getpass can ask someone: it reads from the terminal, not stdin."""
    try:
        with open("/dev/tty"):
            return True
    except OSError:
        return False


def manage_keys(args: argparse.Namespace) -> int:
    if args.action == "revoke":
        if revoke_api_key(args.key_id) is None:
            print(f"error: no live key with id {args.key_id}", file=sys.stderr)
            return 1
        print(f"revoked key {args.key_id}")
        return 0
    tenant = existing_tenant(args.tenant)
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


def manage_signing_keys(keys: KeyRing, args: argparse.Namespace) -> int:
    if args.action == "rotate":
        key = keys.add(publish_ahead=keys.publish_ahead)
        starts = _when(key.signs_from)
        print(f"published {key.kid} ({key.algorithm}); it signs from {starts} UTC")
        return 0
    if args.action == "retire":
        if not SigningKey.retire(args.kid):
            print(f"error: no published key with kid {args.kid}", file=sys.stderr)
            return 1
        print(f"retired {args.kid}: its tokens no longer verify")
        return 0
    keys.load()
    schedule = keys.schedule
    now = datetime.now(UTC)
    print(f"{'kid':<44}  {'alg':<6} {'signs from (UTC)':<20} state")
    for row in SigningKey.all_keys():
        stored = next((key for key in schedule.keys if key.kid == row.kid), None)
        state = schedule.state(stored, now) if stored else "retired"
        print(f"{row.kid:<44}  {row.algorithm:<6} {_when(row.signs_from):<20} {state}")
    return 0


def manage_webhooks(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "remove":
        if not WebhookEndpoint.remove(args.endpoint_id):
            print(
                f"error: no webhook endpoint with id {args.endpoint_id}",
                file=sys.stderr,
            )
            return 1
        print(f"removed webhook endpoint {args.endpoint_id}")
        return 0
    tenant = existing_tenant(args.tenant)
    if args.action == "add":
        endpoint, secret = add_webhook(settings, tenant, args.url, args.event)
        print(
            f"webhook endpoint {endpoint.id} for tenant {tenant.name!r}: {endpoint.url}"
        )
        print(f"events: {', '.join(endpoint.event_type_list)}")
        print("signing secret (shown once, keep it safe):")
        print(secret)
        return 0
    print(f"{'id':>6}  {'created (UTC)':<21}url and events")
    for endpoint in WebhookEndpoint.of_tenant(tenant):
        created, events = _when(endpoint.created_at), " ".join(endpoint.event_type_list)
        print(f"{endpoint.id:>6}  {created:<21}{endpoint.url}  {events}")
    return 0


def manage_roles(args: argparse.Namespace) -> int:
    tenant = existing_tenant(args.tenant)
    if args.action == "list":
        for name, permissions, holders in roles_with_holders(tenant):
            print(f"{name}: {', '.join(permissions) or '-'}")
            if holders:
                print(f"  held by: {', '.join(holders)}")
        return 0
    change = (
        grant_role_as_operator if args.action == "grant" else revoke_role_as_operator
    )
    try:
        change(tenant, args.email, args.role)
    except RoleRefused as error:
        raise Refusal(str(error)) from None
    done = "granted" if args.action == "grant" else "revoked"
    print(f"{done} {args.role} {'to' if done == 'granted' else 'from'} {args.email}")
    return 0


def manage_identity_providers(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "remove":
        provider = remove_identity_provider(args.provider_id)
        if provider is None:
            raise Refusal(f"no identity provider with id {args.provider_id}")
        print(f"removed identity provider {provider.name!r} ({provider.id})")
        return 0
    tenant = existing_tenant(args.tenant)
    if args.action == "list":
        return list_identity_providers(tenant)
    secret = None if args.public else read_client_secret()
    try:
        provider = add_identity_provider(
            settings,
            tenant,
            name=args.name,
            issuer=args.issuer,
            client_id=args.client_id,
            client_secret=secret,
            redirect_uris=args.redirect_uris,
            allow_sign_up=args.allow_sign_up,
        )
    except ProviderExists:
        raise Refusal(f"tenant {tenant.name!r} has a provider {args.name!r}") from None
    kind = "public client" if args.public else "confidential client"
    print(f"registered {args.name!r} ({kind}) for tenant {tenant.name!r}; its id:")
    print(provider.id)
    return 0


def list_identity_providers(tenant: Tenant) -> int:
    print(f"{'id':<36}  {'name':<20} {'sign-up':<8} {'client':<13} issuer")
    for provider in IdentityProvider.of_tenant(tenant):
        kind = "confidential" if provider.sealed_client_secret else "public"
        sign_up = "yes" if provider.allow_sign_up else "no"
        print(
            f"{provider.id!s:<36}  {provider.name:<20} {sign_up:<8} {kind:<13} "
            f"{provider.issuer}"
        )
        print(f"{'':<38}redirect URIs: {' '.join(provider.redirect_uri_list)}")
    return 0


def read_client_secret() -> str:
    """From USER_SERVICE_IDP_CLIENT_SECRET, else typed at the terminal, not echoed."""
    secret = os.environ.get(f"{PREFIX}IDP_CLIENT_SECRET")
    if secret is None and has_terminal():
        try:
            secret = getpass.getpass("Client secret: ")
        except (EOFError, KeyboardInterrupt):
            secret = None
    if not secret:
        raise Refusal(NO_CLIENT_SECRET)
    return secret


def show_audit(tenant_name: str, *, action: str | None, limit: int) -> int:
    tenant = existing_tenant(tenant_name)
    events = AuditEvent.page(tenant, first=limit, action=action)
    named = {event.actor_id for event in events} | {event.target_id for event in events}
    emails = User.emails_by_id(tenant, {user_id for user_id in named if user_id})
    for event in events:
        actor, target = _who(event.actor_id, emails), _who(event.target_id, emails)
        print(
            f"{_when(event.at)}  {event.action:<20} actor={actor} target={target}"
            f" ip={event.ip or '-'} request={event.request_id or '-'}"
            f" {event.detail or ''}".rstrip()
        )
    return 0


def show_migrations() -> int:
    for migration in migration_status():
        state = (
            f"applied {_when(migration.applied)}" if migration.applied else "pending"
        )
        if migration.path is None:  # applied by a newer release (a rollback)
            state += ", not in this release"
        print(f"{migration.name:<32}{state}")
    return 0


def _who(user_id: str | None, emails: dict[str, str]) -> str:
    """An account's email; its id once the account is gone."""
    return emails.get(user_id, user_id) if user_id else "-"


def _when(moment: object) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "-"  # type: ignore[attr-defined]


if __name__ == "__main__":
    sys.exit(main())
