"""Settings.from_env: the contract's defaults, production's refusals, and errors
that name the variable to fix."""

import dataclasses
import os
import re
import stat
from pathlib import Path
from typing import Any

import pytest
from starlette.datastructures import Secret

from settings import DEFAULT_DEV_API_KEY, Settings, SettingsError

# 32 bytes, as random as production needs: no piece repeats.
DATA_KEY = "Wd3Rz8NcYq5Lp2Xv7Gm4Tj9Hb6Ks1Fe0"


def settings_from(tmp_path: Path, **env: str) -> Settings:
    """Settings for `env`, given without the USER_SERVICE_ prefix."""
    environ = {"USER_SERVICE_DATA_DIR": str(tmp_path)}
    environ.update({f"USER_SERVICE_{name}": value for name, value in env.items()})
    return Settings.from_env(environ)


def production_from(tmp_path: Path, **env: str) -> Settings:
    environ = {"ENV": "production", "DATA_KEY": DATA_KEY, **env}
    return settings_from(tmp_path, **environ)


def refusal(tmp_path: Path, **env: str) -> str:
    with pytest.raises(SettingsError) as error:
        settings_from(tmp_path, **env)
    return str(error.value)


def test_defaults_follow_the_contract(tmp_path: Path) -> None:
    settings = settings_from(tmp_path)
    assert settings.env == "development"
    assert settings.database_url == f"sqlite:///{tmp_path}/users.db"
    assert settings.access_token_ttl == 900
    assert settings.refresh_token_ttl == 30 * 24 * 3600
    assert settings.refresh_reuse_grace == 10
    assert settings.dev_api_key == DEFAULT_DEV_API_KEY
    assert settings.issuer == "http://127.0.0.1:8000"
    assert settings.jwt_algorithm == "ES256"
    assert settings.signing_key_publish_ahead == 600
    assert settings.max_body_bytes == 65536
    assert (settings.host, settings.port, settings.workers) == ("127.0.0.1", 8000, 1)
    assert settings.bcrypt_cost == 12


def test_default_data_folder_is_next_to_server_py_wherever_it_runs_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    given = {"DATA_KEY": DATA_KEY}  # nothing to write
    settings = Settings.from_env({f"USER_SERVICE_{k}": v for k, v in given.items()})
    data = Path(__file__).resolve().parent.parent.parent / "data"
    assert settings.data_dir == data
    assert settings.database_url == f"sqlite:///{data}/users.db"
    assert Settings().database_url == settings.database_url


def test_data_folder_holds_the_sqlite_file_unless_a_url_is_given(
    tmp_path: Path,
) -> None:
    assert settings_from(tmp_path).database_url == f"sqlite:///{tmp_path}/users.db"
    given = settings_from(tmp_path, DATABASE_URL="sqlite:////elsewhere/x.db")
    assert given.database_url == "sqlite:////elsewhere/x.db"


def test_default_rate_limits_follow_the_contract(tmp_path: Path) -> None:
    settings = settings_from(tmp_path)
    assert settings.login_failures_per_account == "5 per 15 minutes"
    assert settings.login_failures_per_address == "100 per 15 minutes"
    assert settings.signups_per_address == "20 per hour"
    assert settings.code_failures_per_account == "5 per 15 minutes"


def test_development_keeps_graphiql_introspection_and_suggestions(
    tmp_path: Path,
) -> None:
    settings = settings_from(tmp_path)
    assert not settings.is_production
    assert (settings.graphiql, settings.introspection, settings.field_suggestions) == (
        True,
        True,
        True,
    )


def test_production_turns_off_graphiql_introspection_and_suggestions(
    tmp_path: Path,
) -> None:
    settings = production_from(tmp_path)
    assert settings.is_production
    assert (settings.graphiql, settings.introspection, settings.field_suggestions) == (
        False,
        False,
        False,
    )


def test_introspection_setting_in_production_turns_on_introspection_only(
    tmp_path: Path,
) -> None:
    settings = production_from(tmp_path, INTROSPECTION="true")
    assert (settings.graphiql, settings.introspection, settings.field_suggestions) == (
        False,
        True,
        False,
    )


def test_slow_client_bounds_have_defaults_and_come_from_the_environment(
    tmp_path: Path,
) -> None:
    defaults = settings_from(tmp_path)
    assert (
        defaults.header_timeout,
        defaults.body_timeout,
        defaults.max_connections,
    ) == (10, 30, 1000)
    given = settings_from(
        tmp_path, HEADER_TIMEOUT="2", BODY_TIMEOUT="5", MAX_CONNECTIONS="50"
    )
    assert (given.header_timeout, given.body_timeout, given.max_connections) == (
        2,
        5,
        50,
    )


def test_introspection_setting_in_development_can_turn_it_off(tmp_path: Path) -> None:
    assert settings_from(tmp_path, INTROSPECTION="false").introspection is False


def test_values_from_the_environment_are_cast(tmp_path: Path) -> None:
    settings = settings_from(
        tmp_path,
        ACCESS_TOKEN_TTL="60",
        PORT="9000",
        DATABASE_URL="postgresql://db/users",
        CORS_ORIGINS=" https://a.example , https://b.example,",
    )
    assert settings.access_token_ttl == 60
    assert settings.port == 9000
    assert settings.database_url == "postgresql://db/users"
    assert settings.cors_origins == ("https://a.example", "https://b.example")


def test_unknown_env_is_refused_naming_the_variable(tmp_path: Path) -> None:
    assert "USER_SERVICE_ENV" in refusal(tmp_path, ENV="staging")


# ---- the data key (it seals TOTP secrets and the private signing keys) -----------


def test_production_without_data_key_is_refused_naming_the_variable(
    tmp_path: Path,
) -> None:
    message = refusal(tmp_path, ENV="production")
    assert "USER_SERVICE_DATA_KEY" in message
    assert "required in production" in message
    assert "32 bytes" in message


@pytest.mark.parametrize(
    "secret",
    ["s" * 31, "é" * 15 + "s"],
    ids=["31 ASCII bytes", "31 UTF-8 bytes in 16 characters"],
)
def test_production_with_a_short_data_key_is_refused(
    tmp_path: Path, secret: str
) -> None:
    message = refusal(tmp_path, ENV="production", DATA_KEY=secret)
    assert "USER_SERVICE_DATA_KEY" in message
    assert secret not in message


@pytest.mark.parametrize(
    "secret",
    [DATA_KEY, "éèêëàâäî0123456789abcdef"],
    ids=["32 ASCII bytes", "32 UTF-8 bytes"],
)
def test_production_accepts_a_32_byte_data_key(tmp_path: Path, secret: str) -> None:
    assert str(production_from(tmp_path, DATA_KEY=secret).data_key) == secret


def test_production_needs_no_jwt_secret_any_more(tmp_path: Path) -> None:
    assert production_from(tmp_path).env == "production"


def test_short_data_key_is_refused_in_development_too(tmp_path: Path) -> None:
    assert "USER_SERVICE_DATA_KEY" in refusal(tmp_path, DATA_KEY="s" * 31)


def test_production_never_writes_a_secret_file(tmp_path: Path) -> None:
    production_from(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_development_creates_a_private_data_key_and_reuses_it(tmp_path: Path) -> None:
    first = settings_from(tmp_path)
    key_file = tmp_path / "data-key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(str(first.data_key).encode()) >= 32
    assert str(first.data_key) == key_file.read_text().strip()
    assert str(settings_from(tmp_path).data_key) == str(first.data_key)
    assert [path.name for path in tmp_path.iterdir()] == ["data-key"]


def test_development_with_a_given_data_key_writes_no_file(tmp_path: Path) -> None:
    settings = settings_from(tmp_path, DATA_KEY=DATA_KEY)
    assert str(settings.data_key) == DATA_KEY
    assert list(tmp_path.iterdir()) == []


# ---- token signing ----------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["ES256", "EdDSA", "RS256"])
def test_each_signing_algorithm_is_accepted(tmp_path: Path, algorithm: str) -> None:
    assert settings_from(tmp_path, JWT_ALGORITHM=algorithm).jwt_algorithm == algorithm


@pytest.mark.parametrize("algorithm", ["HS256", "none", "es256", "PS256"])
def test_other_signing_algorithms_are_refused(tmp_path: Path, algorithm: str) -> None:
    message = refusal(tmp_path, JWT_ALGORITHM=algorithm)
    assert "USER_SERVICE_JWT_ALGORITHM" in message
    assert "ES256, EdDSA, RS256" in message


def test_issuer_loses_a_trailing_slash(tmp_path: Path) -> None:
    settings = settings_from(tmp_path, ISSUER="https://users.example.com/")
    assert settings.issuer == "https://users.example.com"


@pytest.mark.parametrize(
    "issuer",
    ["users.example.com", "ftp://users.example.com", "https://", "https://a.io/?x=1"],
)
def test_issuer_that_is_no_base_url_is_refused(tmp_path: Path, issuer: str) -> None:
    assert "USER_SERVICE_ISSUER" in refusal(tmp_path, ISSUER=issuer)


def test_negative_publish_ahead_is_refused(tmp_path: Path) -> None:
    message = refusal(tmp_path, SIGNING_KEY_PUBLISH_AHEAD="-1")
    assert "USER_SERVICE_SIGNING_KEY_PUBLISH_AHEAD" in message


def test_repr_shows_no_secret(tmp_path: Path) -> None:
    settings = settings_from(tmp_path, DATA_KEY=DATA_KEY)
    text = repr(settings)
    assert DATA_KEY not in text
    assert DEFAULT_DEV_API_KEY not in text


def test_settings_are_frozen(tmp_path: Path) -> None:
    settings = settings_from(tmp_path)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.env = "production"  # type: ignore[misc]


# ---- bad values name the variable -------------------------------------------

BAD_VALUES = {
    "ACCESS_TOKEN_TTL word": ("ACCESS_TOKEN_TTL", "abc"),
    "ACCESS_TOKEN_TTL zero": ("ACCESS_TOKEN_TTL", "0"),
    "ACCESS_TOKEN_TTL negative": ("ACCESS_TOKEN_TTL", "-5"),
    "ACCESS_TOKEN_TTL fraction": ("ACCESS_TOKEN_TTL", "1.5"),
    "REFRESH_TOKEN_TTL word": ("REFRESH_TOKEN_TTL", "30d"),
    "REFRESH_REUSE_GRACE negative": ("REFRESH_REUSE_GRACE", "-1"),
    "PORT word": ("PORT", "http"),
    "PORT above 65535": ("PORT", "70000"),
    "PORT zero": ("PORT", "0"),
    "DATABASE_URL without scheme": ("DATABASE_URL", "postgres//oops"),
    "DATABASE_URL unknown scheme": ("DATABASE_URL", "bogus://x"),
    "DATABASE_URL scheme alone": ("DATABASE_URL", "sqlite://"),
    "REDIS_URL other scheme": ("REDIS_URL", "bogus://x"),
    "REDIS_URL no host": ("REDIS_URL", "redis:///0"),
    "WORKERS zero": ("WORKERS", "0"),
    "BCRYPT_COST word": ("BCRYPT_COST", "high"),
    "BCRYPT_COST too low": ("BCRYPT_COST", "3"),
    "BCRYPT_COST too high": ("BCRYPT_COST", "17"),
    "INTROSPECTION word": ("INTROSPECTION", "maybe"),
    "MAX_BODY_BYTES zero": ("MAX_BODY_BYTES", "0"),
    "LOGIN_FAILURES_PER_ACCOUNT prose": ("LOGIN_FAILURES_PER_ACCOUNT", "lots"),
    "DEV_API_KEY blank": ("DEV_API_KEY", "  "),
    "DEV_API_KEY padded": ("DEV_API_KEY", " usk_padded "),
    "HEADER_TIMEOUT zero": ("HEADER_TIMEOUT", "0"),
    "BODY_TIMEOUT word": ("BODY_TIMEOUT", "slow"),
    "MAX_CONNECTIONS negative": ("MAX_CONNECTIONS", "-1"),
}


@pytest.mark.parametrize(
    ("name", "value"), list(BAD_VALUES.values()), ids=list(BAD_VALUES)
)
def test_bad_value_is_refused_naming_the_variable(
    tmp_path: Path, name: str, value: str
) -> None:
    message = refusal(tmp_path, **{name: value})
    assert re.search(rf"\bUSER_SERVICE_{name}\b", message), message


def test_production_bcrypt_cost_below_10_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="USER_SERVICE_BCRYPT_COST"):
        production_from(tmp_path, BCRYPT_COST="9")


def test_production_accepts_bcrypt_cost_10(tmp_path: Path) -> None:
    assert production_from(tmp_path, BCRYPT_COST="10").bcrypt_cost == 10


# ---- production refuses guessable secrets and open CORS --------------------------

GUESSABLE = {
    "one character repeated": "x" * 48,
    "a short piece repeated": "abcd" * 12,
    "a long piece repeated": "0123456789abcdef" * 3,
    "almost one character": "a" * 47 + "b",
}


@pytest.mark.parametrize("secret", list(GUESSABLE.values()), ids=list(GUESSABLE))
def test_production_refuses_a_guessable_data_key(tmp_path: Path, secret: str) -> None:
    with pytest.raises(SettingsError) as error:
        production_from(tmp_path, DATA_KEY=secret)
    message = str(error.value)
    assert "USER_SERVICE_DATA_KEY is guessable" in message
    assert secret not in message


@pytest.mark.parametrize(
    "secret",
    [
        "9f86d081884c7d659a2feaa0c55ad015",  # 32 hex digits
        "Zx3_hV9-qLw2Tr8Yb5Nc1Jk7Mf4Gd6Sa0Pe2Ui8Oy3Ht5Rl9Bw1Cq4Dv7Ej6Fn0A",
        "test-secret-" + "x" * 40,  # the suite's own, of about 70 bits
    ],
    ids=["hex", "token_urlsafe(48)", "mostly one character, still 64 bits"],
)
def test_production_accepts_a_secret_of_64_bits_or_more(
    tmp_path: Path, secret: str
) -> None:
    assert str(production_from(tmp_path, DATA_KEY=secret).data_key) == secret


def test_development_does_not_judge_a_given_secret(tmp_path: Path) -> None:
    assert str(settings_from(tmp_path, DATA_KEY="x" * 32).data_key) == "x" * 32


@pytest.mark.parametrize(
    "origins", ["*", "null", "https://app.example, *"], ids=["*", "null", "* in a list"]
)
def test_production_refuses_cors_for_every_origin(tmp_path: Path, origins: str) -> None:
    with pytest.raises(SettingsError, match=r"\bUSER_SERVICE_CORS_ORIGINS\b"):
        production_from(tmp_path, CORS_ORIGINS=origins)


def test_production_accepts_listed_cors_origins(tmp_path: Path) -> None:
    settings = production_from(tmp_path, CORS_ORIGINS="https://app.example")
    assert settings.cors_origins == ("https://app.example",)


def test_development_allows_cors_for_every_origin(tmp_path: Path) -> None:
    assert settings_from(tmp_path, CORS_ORIGINS="*").cors_origins == ("*",)


# ---- one source of defaults, every Settings checked ---------------------------

SECRET_FIELDS = {"data_key"}


def test_from_env_with_nothing_set_gives_the_dataclass_defaults(tmp_path: Path) -> None:
    from_env = settings_from(tmp_path, DATA_KEY=DATA_KEY)
    by_hand = Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path}/users.db")
    for field in dataclasses.fields(Settings):
        if field.name not in SECRET_FIELDS:
            assert getattr(from_env, field.name) == getattr(by_hand, field.name), field


def test_hashing_threads_default_to_the_number_of_cpus(tmp_path: Path) -> None:
    assert Settings().hashing_threads == max(1, os.cpu_count() or 1)
    assert settings_from(tmp_path).hashing_threads == Settings().hashing_threads


HAND_MADE = {
    "port above 65535": ({"port": 70000}, "USER_SERVICE_PORT"),
    "no workers": ({"workers": 0}, "USER_SERVICE_WORKERS"),
    "rate limit in prose": (
        {"guesses_per_address": "lots"},
        "USER_SERVICE_TOKEN_GUESSES_PER_ADDRESS",
    ),
    "link without a token": ({"reset_url": "https://x"}, "USER_SERVICE_RESET_URL"),
    "email-change link without a token": (
        {"email_change_url": "https://x"},
        "USER_SERVICE_EMAIL_CHANGE_URL",
    ),
    "database URL": ({"database_url": "postgres//x"}, "USER_SERVICE_DATABASE_URL"),
    "Redis URL": ({"redis_url": "bogus://x"}, "USER_SERVICE_REDIS_URL"),
    "SMTP URL": ({"smtp_url": "http://x"}, "USER_SERVICE_SMTP_URL"),
    "short data key": ({"data_key": Secret("short")}, "USER_SERVICE_DATA_KEY"),
    "production without a data key": ({"env": "production"}, "USER_SERVICE_DATA_KEY"),
    "signing algorithm": ({"jwt_algorithm": "HS256"}, "USER_SERVICE_JWT_ALGORITHM"),
    "issuer": ({"issuer": "users.example.com"}, "USER_SERVICE_ISSUER"),
    "webhook lease within the timeout": (
        {"webhook_lease": 10.0},
        "USER_SERVICE_WEBHOOK_LEASE",
    ),
    "webhook timeout of 0": ({"webhook_timeout": 0.0}, "USER_SERVICE_WEBHOOK_TIMEOUT"),
    "negative webhook retry": (
        {"webhook_retry_delays": (1.0, -5.0)},
        "USER_SERVICE_WEBHOOK_RETRY_DELAYS",
    ),
}


@pytest.mark.parametrize(
    ("values", "variable"), list(HAND_MADE.values()), ids=list(HAND_MADE)
)
def test_settings_made_by_hand_are_checked_too(
    values: dict[str, Any], variable: str
) -> None:
    with pytest.raises(SettingsError, match=rf"^{variable}\b"):
        Settings(**values)


def test_settings_changed_with_replace_are_checked_too(tmp_path: Path) -> None:
    settings = settings_from(tmp_path)
    with pytest.raises(SettingsError, match=r"^USER_SERVICE_MAX_DEPTH\b"):
        dataclasses.replace(settings, max_depth=0)


def test_webhook_retry_delays_are_seconds_after_each_failure(tmp_path: Path) -> None:
    assert Settings().webhook_retry_delays == (1, 5, 30, 120, 600, *[3600] * 24)
    settings = settings_from(tmp_path, WEBHOOK_RETRY_DELAYS="0.5, 2,10")
    assert settings.webhook_retry_delays == (0.5, 2.0, 10.0)
    with pytest.raises(SettingsError, match=r"^USER_SERVICE_WEBHOOK_RETRY_DELAYS\b"):
        settings_from(tmp_path, WEBHOOK_RETRY_DELAYS="1,soon")
