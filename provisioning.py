"""Tenants, API keys and first admins, as operators and start-up create them."""

import contextlib

from peewee import IntegrityError

from auth.api_keys import new_api_key, shown_prefix
from auth.opaque import digest
from auth.passwords import hash_password
from errors import BadUserInput
from models import (
    Action,
    ApiKey,
    AuditEvent,
    DuplicateEmail,
    Role,
    Tenant,
    TenantExists,
    User,
    database,
    live_key_and_user,
)
from settings import Settings
from validation import check_sign_up, check_tenant_name

DEV_TENANT = "dev"


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
