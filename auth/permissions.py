"""Permissions: the service's own, a tenant's, and what a set of roles adds up to.

Pure functions over names. The base roles ADMIN and USER are built in: ADMIN
holds every service permission, USER none (what users do to their own
account needs no permission).
"""

import re
from collections.abc import Iterable, Sequence

from auth.tokens import Grants

# Every permission the service itself checks (the contract's list).
SERVICE_PERMISSIONS = (
    "users:read",
    "users:write",
    "users:deactivate",
    "roles:manage",
    "sessions:revoke",
    "mfa:reset",
    "audit:read",
    "identity-providers:manage",
)
BASE_ROLE_PERMISSIONS = {"ADMIN": SERVICE_PERMISSIONS, "USER": ()}
BUILT_IN_ROLES = tuple(BASE_ROLE_PERMISSIONS)
# A tenant's own: lowercase letters, digits, "-", ".", exactly one ":".
PERMISSION_NAME = re.compile(r"[a-z0-9.-]+:[a-z0-9.-]+")
# Role and group names: a letter, then letters, digits, "-", "_" or ".".
NAME = re.compile(r"[A-Za-z][A-Za-z0-9._-]{0,63}")
MAX_PERMISSIONS_PER_ROLE = 100


def is_permission_name(name: str) -> bool:
    return len(name) <= 100 and PERMISSION_NAME.fullmatch(name) is not None


def is_name(name: str) -> bool:
    return NAME.fullmatch(name) is not None


def grants_of(
    base_role: str, roles: Iterable[tuple[str, Sequence[str]]] = ()
) -> Grants:
    """The base role and tenant roles held, and every permission they give."""
    held = list(roles)
    permissions = set(BASE_ROLE_PERMISSIONS[base_role])
    for _, role_permissions in held:
        permissions.update(role_permissions)
    return Grants(
        roles=(base_role, *sorted(name for name, _ in held)),
        permissions=tuple(sorted(permissions, key=_service_first)),
    )


def missing_service_permissions(
    wanted: Iterable[str], *, held: Iterable[str]
) -> list[str]:
    """The service's permissions in `wanted` that `held` lacks: no one grants
    what they do not hold (a tenant's own permissions are free to give)."""
    held_set = set(held)
    return sorted(
        name
        for name in set(wanted)
        if name in SERVICE_PERMISSIONS and name not in held_set
    )


def _service_first(name: str) -> tuple[int, str]:
    """The service's permissions in the contract's order, then the tenant's."""
    if name in SERVICE_PERMISSIONS:
        return (SERVICE_PERMISSIONS.index(name), "")
    return (len(SERVICE_PERMISSIONS), name)
