"""The SDL is a reviewed artifact: schema.graphql must match what the code builds."""

from pathlib import Path

import graphql

from app import schema_sdl
from schema import build_schema
from settings import Settings

SNAPSHOT = Path(__file__).resolve().parent.parent / "schema.graphql"


def test_schema_matches_the_committed_snapshot() -> None:
    assert SNAPSHOT.read_text() == schema_sdl(), (
        "schema.graphql is out of date; regenerate it with: "
        "python server.py export-schema > schema.graphql"
    )


def test_permission_rules_are_visible_in_the_sdl() -> None:
    sdl = schema_sdl()
    assert "me: User! @authenticated" in sdl
    assert (
        "directive @requiresPermission(permission: String!) on FIELD_DEFINITION" in sdl
    )
    assert 'role: Role = USER @permissionToSet(permission: "roles:manage")' in sdl
    assert 'role: Role @permissionToSet(permission: "roles:manage")' in sdl


# The contract's map of administrative operations to the permission each needs.
PERMISSION_MAP = {
    "users": "users:read",
    "roles": "users:read",
    "groups": "users:read",
    "permissions": "users:read",
    "unlockAccount": "users:write",
    "deleteUser": "users:write",
    "setUserActive": "users:deactivate",
    "revokeSessions": "sessions:revoke",
    "resetMfa": "mfa:reset",
    "auditLog": "audit:read",
    "defineRole": "roles:manage",
    "deleteRole": "roles:manage",
    "grantRole": "roles:manage",
    "revokeRole": "roles:manage",
    "defineGroup": "roles:manage",
    "deleteGroup": "roles:manage",
    "addToGroup": "roles:manage",
    "removeFromGroup": "roles:manage",
    "addIdentityProvider": "identity-providers:manage",
    "removeIdentityProvider": "identity-providers:manage",
}


def test_every_administrative_operation_names_its_permission_in_the_sdl() -> None:
    named = {}
    for definition in graphql.parse(schema_sdl()).definitions:
        if getattr(definition, "name", None) is None:
            continue
        if definition.name.value not in ("Query", "Mutation"):  # type: ignore[attr-defined]
            continue
        for field in definition.fields:  # type: ignore[attr-defined]
            for directive in field.directives or ():
                if directive.name.value == "requiresPermission":
                    named[field.name.value] = directive.arguments[0].value.value
    assert named == PERMISSION_MAP


def test_user_type_exposes_no_secret_or_tenant_field() -> None:
    user_type = build_schema(Settings())._schema.type_map["User"]
    fields = set(user_type.fields)  # type: ignore[attr-defined]
    assert fields == {
        "id",
        "email",
        "role",
        "city",
        "organization",
        "designation",
        "mobile",
        "active",
        "emailVerified",
        "mfaEnabled",
        "createdAt",
        "updatedAt",
        "sessions",
        "roles",
        "permissions",
        "groups",
        "passkeys",
        "externalIdentities",
    }


def test_passkey_type_exposes_no_credential_id_or_key() -> None:
    passkey_type = build_schema(Settings())._schema.type_map["Passkey"]
    fields = set(passkey_type.fields)  # type: ignore[attr-defined]
    assert fields == {"id", "name", "createdAt", "lastUsedAt"}
