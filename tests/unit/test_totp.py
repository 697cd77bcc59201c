"""TOTP codes: which strings are a code at all (auth/totp.py is pure)."""

from datetime import UTC, datetime

import pytest

from auth.totp import code_at, matching_step, new_secret

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_the_current_code_matches_its_step() -> None:
    secret = new_secret()
    assert matching_step(secret, code_at(secret, NOW), now=NOW) is not None


def test_the_current_code_with_spaces_matches() -> None:
    secret = new_secret()
    code = code_at(secret, NOW)
    assert matching_step(secret, f" {code[:3]} {code[3:]} ", now=NOW) is not None


@pytest.mark.parametrize(
    "code",
    [
        "\u0661\u0662\u0663\u0664\u0665\u0666",
        "\uff11\uff12\uff13\uff14\uff15\uff16",
        "\U0001d7ce" * 6,
        "12345",
        "1234567",
        "12345a",
        "\ud800" * 6,
    ],
    ids=[
        "Arabic-Indic digits",
        "fullwidth digits",
        "mathematical digits",
        "5 digits",
        "7 digits",
        "a letter",
        "lone surrogates",
    ],
)
def test_what_is_not_six_ascii_digits_matches_no_step(code: str) -> None:
    assert matching_step(new_secret(), code, now=NOW) is None
