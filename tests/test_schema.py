"""The SDL is a reviewed artifact: schema.graphql must match what the code builds."""

from pathlib import Path

from server import schema_sdl

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


def test_no_secret_column_is_exposed() -> None:
    user_type = schema_sdl().split("type User {")[1].split("}")[0].lower()
    assert "password" not in user_type
    assert "tenant" not in user_type
