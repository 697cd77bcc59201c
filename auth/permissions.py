"""The service's own permissions, and what the base roles hold."""

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


def grants_of_role(role: str) -> Grants:
    """What a token carries for an account with this base role."""
    return Grants(roles=(role,), permissions=BASE_ROLE_PERMISSIONS[role])
