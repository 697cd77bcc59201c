"""Tenants, API keys and first admins, as operators and start-up create them."""

import contextlib
import functools
from collections.abc import Callable

from peewee import IntegrityError

from auth.api_keys import new_api_key, shown_prefix
from auth.opaque import digest
from auth.passwords import hash_password
from auth.permissions import BASE_ROLE_PERMISSIONS
from auth.sealing import seal
from errors import BadUserInput
from models import (
    Action,
    ApiKey,
    AuditEvent,
    DuplicateEmail,
    IdentityProvider,
    RelyingParty,
    Role,
    Tenant,
    TenantExists,
    User,
    database,
    live_key_and_user,
)
from models.grants import RoleDefinition, RoleGrant, guarded_change
from models.user import LastAdmin
from models.webhook import EVENT_TYPES, WebhookEndpoint
from settings import Settings
from validation import check_sign_up, check_tenant_name, normalize_email
from validation.relying_party import check_relying_party
from webhooks.signing import new_secret

DEV_TENANT = "dev"
# Records an audit event: called as audit(action, detail=...).
Audit = Callable[..., object]


def ensure_dev_tenant(api_key: str) -> None:
    tenant = Tenant.by_name(DEV_TENANT) or _add_tenant_racing(DEV_TENANT)
    if live_key_and_user(digest(api_key))[0] is not None:
        return
    if _restore_dev_key(tenant, api_key):
        return
    # Another worker may add it at the same moment; one row is enough.
    with contextlib.suppress(IntegrityError), database.atomic():
        add_api_key(tenant, api_key)


def retire_dev_tenant() -> None:
    """Revoke every live key of the dev tenant, each audited.

    Production serves no dev tenant, whatever the database was used for before:
    its key is published, so a database that once served development must not
    keep it working.
    """
    tenant = Tenant.by_name(DEV_TENANT)
    if tenant is None:
        return
    for api_key in ApiKey.of_tenant(tenant):
        if api_key.revoked_at is None:
            revoke_api_key(api_key.id)


def _restore_dev_key(tenant: Tenant, api_key: str) -> bool:
    """Bring back the dev key that a production start revoked (digests are unique)."""
    with database.atomic():
        restored = (
            ApiKey.update(revoked_at=None)
            .where(
                (ApiKey.tenant == tenant)
                & (ApiKey.digest == digest(api_key))
                & ApiKey.revoked_at.is_null(False)
            )
            .execute()
        )
        if restored:
            detail = f"{shown_prefix(api_key)} restored for development"
            AuditEvent.record(tenant, Action.API_KEY_CREATED, detail=detail)
    return bool(restored)


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
    with database.atomic():
        ApiKey.create(tenant=tenant, digest=digest(key), prefix=shown_prefix(key))
        AuditEvent.record(tenant, Action.API_KEY_CREATED, detail=shown_prefix(key))
    return key


def revoke_api_key(key_id: int) -> ApiKey | None:
    with database.atomic():
        api_key = ApiKey.revoke(key_id)
        if api_key is not None:
            # The prefix only: the row id counts every tenant's keys.
            detail = f"key {api_key.prefix}"
            AuditEvent.record(api_key.tenant_id, Action.API_KEY_REVOKED, detail=detail)
    return api_key


def new_tenant(
    settings: Settings,
    name: str,
    admin_email: str | None = None,
    admin_password: str | None = None,
) -> str:
    """Create a tenant (and its first ADMIN); return its new API key."""
    check_tenant_name(name)
    with database.atomic():
        tenant = Tenant.add(name)
        if admin_email is not None:
            add_first_admin(settings, tenant, admin_email, admin_password or "")
        return add_api_key(tenant)


def add_first_admin(
    settings: Settings, tenant: Tenant, email: str, password: str
) -> User:
    email, _ = check_sign_up(email, password, {})
    password_hash = hash_password(password, cost=settings.bcrypt_cost)
    try:
        # The operator vouches for the address, so its login never waits on a mail.
        return User.register(
            tenant, email, password_hash, role=Role.ADMIN.value, email_verified=True
        )
    except DuplicateEmail:
        raise BadUserInput({"email": "Email is taken."}) from None


def add_admin(settings: Settings, tenant: Tenant, email: str, password: str) -> None:
    """An operator gives an existing tenant one more ADMIN (audited)."""
    with database.atomic():
        admin = add_first_admin(settings, tenant, email, password)
        AuditEvent.record(
            tenant, Action.SIGNED_UP, target=admin, detail="ADMIN added by an operator"
        )


def add_webhook(
    settings: Settings, tenant: Tenant, url: str, event_types: list[str]
) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint for `event_types` (all when none); return it and
    its signing secret, which is stored sealed under the data key."""
    secret = new_secret()
    sealed = seal(secret, key=str(settings.data_key))
    wanted = list(dict.fromkeys(event_types)) or list(EVENT_TYPES)
    return WebhookEndpoint.add(tenant, url, wanted, sealed), secret


def set_relying_party(tenant: Tenant, rp_id: str, origins: list[str]) -> RelyingParty:
    """`tenant set`: the domain the tenant's passkeys are bound to and the page
    origins that may use them (audited). Raises BadUserInput."""
    rp_id, origins = check_relying_party(rp_id, origins)
    party = RelyingParty(rp_id=rp_id, origins=origins)
    with database.atomic():
        tenant.set_relying_party(party)
        detail = f"RP ID {rp_id}, origins {' '.join(origins)} (command line)"
        AuditEvent.record(tenant, Action.PASSKEY_SETTINGS_CHANGED, detail=detail)
    return party


class RoleRefused(Exception):
    """An operator's role change cannot be done; the message says why."""


def grant_role_as_operator(tenant: Tenant, email: str, role: str) -> None:
    """`role grant`: ADMIN or USER set the base role; another role is granted."""
    user = _account(tenant, email)
    if role in (Role.ADMIN, Role.USER):
        _set_base_role(tenant, user, Role(role))
        return
    found = _tenant_role(tenant, role)
    with database.atomic():
        if RoleGrant.grant(user, found):
            AuditEvent.record(
                tenant,
                Action.ROLE_GRANTED,
                target=user,
                detail=f"{role} (command line)",
            )


def revoke_role_as_operator(tenant: Tenant, email: str, role: str) -> None:
    """`role revoke`: ADMIN makes the account a USER; another role is revoked."""
    user = _account(tenant, email)
    if role == Role.USER:
        raise RoleRefused("USER is the base role of every account that is no ADMIN")
    if role == Role.ADMIN:
        _set_base_role(tenant, user, Role.USER)
        return
    found = _tenant_role(tenant, role)
    try:
        with guarded_change(tenant.id):
            if RoleGrant.revoke(user, found):
                AuditEvent.record(
                    tenant,
                    Action.ROLE_REVOKED,
                    target=user,
                    detail=f"{role} (command line)",
                )
    except LastAdmin:
        raise RoleRefused(KEEP_MANAGER) from None


def roles_with_holders(tenant: Tenant) -> list[tuple[str, list[str], list[str]]]:
    """Each role of the tenant, built-in first: its permissions and its direct
    holders' emails (USER: every account that is no ADMIN, not listed)."""
    admins = User.select().where((User.tenant == tenant) & (User.role == Role.ADMIN))
    listed = [
        ("ADMIN", list(BASE_ROLE_PERMISSIONS["ADMIN"]), [u.email for u in admins]),
        ("USER", [], []),
    ]
    for role in RoleDefinition.of_tenant(tenant.id):
        holders = [user.email for user in RoleGrant.holders(role)]
        listed.append((role.name, role.permission_list, holders))
    return listed


KEEP_MANAGER = "the tenant must keep an active account holding roles:manage"


def _set_base_role(tenant: Tenant, user: User, role: Role) -> None:
    if user.role == role:
        return
    try:
        with database.atomic():
            changed = user.apply_changes({"role": role.value})
            AuditEvent.record(
                tenant,
                Action.ROLE_CHANGED,
                target=changed,
                detail=f"{user.role} -> {role.value} (command line)",
            )
    except LastAdmin:
        raise RoleRefused(KEEP_MANAGER) from None


def _account(tenant: Tenant, email: str) -> User:
    try:
        user = User.by_email(tenant, normalize_email(email))
    except BadUserInput:
        user = None
    if user is None:
        raise RoleRefused(f"no account {email!r} in tenant {tenant.name!r}")
    return user


def _tenant_role(tenant: Tenant, name: str) -> RoleDefinition:
    role = RoleDefinition.by_name(tenant.id, name)
    if role is None:
        raise RoleRefused(
            f"no role {name!r} in tenant {tenant.name!r}; see: python server.py "
            f"role list {tenant.name}"
        )
    return role


def add_identity_provider(
    settings: Settings,
    tenant: Tenant,
    *,
    name: str,
    issuer: str,
    client_id: str,
    client_secret: str | None,
    redirect_uris: list[str],
    allow_sign_up: bool,
    audit: Audit | None = None,
) -> IdentityProvider:
    """Register a tenant's OpenID Connect provider; its secret is sealed at rest.
    `audit` records the event in the same transaction (by default with no
    actor: an operator's command).

    Raises ProviderExists when the tenant has one of this name already.
    """
    record = audit or functools.partial(AuditEvent.record, tenant)
    sealed = seal(client_secret, key=str(settings.data_key)) if client_secret else None
    with database.atomic():
        provider = IdentityProvider.add(
            tenant,
            name=name,
            issuer=issuer,
            client_id=client_id,
            sealed_client_secret=sealed,
            redirect_uris=redirect_uris,
            allow_sign_up=allow_sign_up,
        )
        record(Action.IDENTITY_PROVIDER_ADDED, detail=f"{name} ({issuer})")
    return provider


def remove_identity_provider(
    provider_id: str, *, tenant: Tenant | None = None, audit: Audit | None = None
) -> IdentityProvider | None:
    """Remove a provider (of `tenant` only, when given); its pending logins and
    linked identities go with it. None when there is no such provider."""
    with database.atomic():
        provider = IdentityProvider.remove(provider_id, tenant=tenant)
        if provider is not None:
            record = audit or functools.partial(AuditEvent.record, provider.tenant_id)
            record(
                Action.IDENTITY_PROVIDER_REMOVED,
                detail=f"{provider.name} ({provider.issuer})",
            )
    return provider
