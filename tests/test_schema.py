"""The SDL is a reviewed artifact: schema.graphql must match what the code builds."""

from pathlib import Path

from app import schema_sdl
from schema import build_schema
from settings import Settings

SNAPSHOT = Path(__file__).resolve().parent.parent / "schema.graphql"


def test_schema_matches_the_committed_snapshot() -> None:
    assert SNAPSHOT.read_text() == schema_sdl(), (
        "schema.graphql is out of date; regenerate it with: "
        "python server.py export-schema > schema.graphql"
    )


def test_role_rules_are_visible_in_the_sdl() -> None:
    sdl = schema_sdl()
    assert "me: User! @authenticated" in sdl
    assert "role: Role = USER @requiresRole(role: ADMIN)" in sdl
    assert "role: Role @requiresRole(role: ADMIN)" in sdl


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
    }
