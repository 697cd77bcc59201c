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

# 32 bytes each, as random as production needs: no piece repeats.
SECRET = "k7Qp2VxZ9mLr4TbN8wEy6HsJ3dFg5CuA"
OTHER_SECRET = "o" * 40
DATA_KEY = "Wd3Rz8NcYq5Lp2Xv7Gm4Tj9Hb6Ks1Fe0"


def settings_from(tmp_path: Path, **env: str) -> Settings:
    """Settings for `env`, given without the USER_SERVICE_ prefix."""
    environ = {"USER_SERVICE_DATA_DIR": str(tmp_path)}
    environ.update({f"USER_SERVICE_{name}": value for name, value in env.items()})
    return Settings.from_env(environ)


def production_from(tmp_path: Path, **env: str) -> Settings:
    environ = {"ENV": "production", "JWT_SECRET": SECRET, "DATA_KEY": DATA_KEY, **env}
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
    assert settings.jwt_previous_secrets == ()
    assert settings.max_body_bytes == 65536
    assert (settings.host, settings.port, settings.workers) == ("127.0.0.1", 8000, 1)
    assert settings.bcrypt_cost == 12


def test_default_data_folder_is_next_to_server_py_wherever_it_runs_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    given = {"JWT_SECRET": SECRET, "DATA_KEY": DATA_KEY}  # nothing to write
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


# ---- the JWT secret -------------------------------------------------------------


def test_production_without_jwt_secret_is_refused_naming_the_variable(
    tmp_path: Path,
) -> None:
    message = refusal(tmp_path, ENV="production")
    assert "USER_SERVICE_JWT_SECRET" in message
    assert "32 bytes" in message


@pytest.mark.parametrize(
    "secret",
    ["s" * 31, "é" * 15 + "s", ""],
    ids=["31 ASCII bytes", "31 UTF-8 bytes in 16 characters", "empty"],
)
def test_production_with_weak_jwt_secret_is_refused(
    tmp_path: Path, secret: str
) -> None:
    message = refusal(tmp_path, ENV="production", JWT_SECRET=secret)
    assert "USER_SERVICE_JWT_SECRET" in message
    if secret:
        assert secret not in message


@pytest.mark.parametrize(
    "secret",
    [SECRET, "éèêëàâäî0123456789abcdef"],
    ids=["32 ASCII bytes", "32 UTF-8 bytes"],
)
def test_production_accepts_a_32_byte_jwt_secret(tmp_path: Path, secret: str) -> None:
    settings = production_from(tmp_path, JWT_SECRET=secret)
    assert str(settings.jwt_secret) == secret


def test_short_jwt_secret_is_refused_in_development_too(tmp_path: Path) -> None:
    assert "USER_SERVICE_JWT_SECRET" in refusal(tmp_path, JWT_SECRET="s" * 31)


def test_production_never_writes_a_secret_file(tmp_path: Path) -> None:
    production_from(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_development_creates_a_private_secret_file_and_reuses_it(
    tmp_path: Path,
) -> None:
    first = settings_from(tmp_path)
    secret_file = tmp_path / "jwt-secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert len(str(first.jwt_secret).encode()) >= 32
    assert str(first.jwt_secret) == secret_file.read_text().strip()
    assert str(settings_from(tmp_path).jwt_secret) == str(first.jwt_secret)
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "data-key",
        "jwt-secret",
    ]


def test_development_creates_a_private_data_key_and_reuses_it(tmp_path: Path) -> None:
    first = settings_from(tmp_path)
    key_file = tmp_path / "data-key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert str(first.data_key) == key_file.read_text().strip()
    assert str(settings_from(tmp_path).data_key) == str(first.data_key)
    assert str(first.data_key) != str(first.jwt_secret)


def test_development_with_given_secrets_writes_no_file(tmp_path: Path) -> None:
    settings = settings_from(tmp_path, JWT_SECRET=SECRET, DATA_KEY=DATA_KEY)
    assert str(settings.jwt_secret) == SECRET
    assert list(tmp_path.iterdir()) == []


def test_production_without_data_key_is_refused_naming_the_variable(
    tmp_path: Path,
) -> None:
    message = refusal(tmp_path, ENV="production", JWT_SECRET=SECRET)
    assert "USER_SERVICE_DATA_KEY" in message
    assert "required in production" in message


def test_production_with_a_weak_data_key_is_refused(tmp_path: Path) -> None:
    message = refusal(tmp_path, ENV="production", JWT_SECRET=SECRET, DATA_KEY="k" * 31)
    assert "USER_SERVICE_DATA_KEY" in message


def test_previous_secrets_are_split_on_commas_and_trimmed(tmp_path: Path) -> None:
    settings = settings_from(
        tmp_path,
        JWT_SECRET=SECRET,
        JWT_PREVIOUS_SECRETS=f" {OTHER_SECRET} ,, {'p' * 32},",
    )
    assert [str(secret) for secret in settings.jwt_previous_secrets] == [
        OTHER_SECRET,
        "p" * 32,
    ]


def test_blank_previous_secrets_are_none(tmp_path: Path) -> None:
    settings = settings_from(tmp_path, JWT_SECRET=SECRET, JWT_PREVIOUS_SECRETS=" , ")
    assert settings.jwt_previous_secrets == ()


def test_short_previous_secret_is_refused_naming_the_variable(tmp_path: Path) -> None:
    message = refusal(
        tmp_path,
        JWT_SECRET=SECRET,
        JWT_PREVIOUS_SECRETS=f"{OTHER_SECRET},{'p' * 31}",
    )
    assert "USER_SERVICE_JWT_PREVIOUS_SECRETS" in message
    assert "p" * 31 not in message


def test_repr_shows_no_secret(tmp_path: Path) -> None:
    settings = settings_from(
        tmp_path, JWT_SECRET=SECRET, JWT_PREVIOUS_SECRETS=OTHER_SECRET
    )
    text = repr(settings)
    assert SECRET not in text
    assert OTHER_SECRET not in text
    assert DEFAULT_DEV_API_KEY not in text


def test_settings_are_frozen(tmp_path: Path) -> None:
    settings = settings_from(tmp_path, JWT_SECRET=SECRET)
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
    message = refusal(tmp_path, JWT_SECRET=SECRET, **{name: value})
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
@pytest.mark.parametrize("name", ["JWT_SECRET", "DATA_KEY", "JWT_PREVIOUS_SECRETS"])
def test_production_refuses_a_guessable_secret_naming_the_variable(
    tmp_path: Path, name: str, secret: str
) -> None:
    with pytest.raises(SettingsError) as error:
        production_from(tmp_path, **{name: secret})
    message = str(error.value)
    assert re.search(rf"\bUSER_SERVICE_{name} is guessable\b", message), message
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
    assert str(production_from(tmp_path, JWT_SECRET=secret).jwt_secret) == secret


def test_development_does_not_judge_a_given_secret(tmp_path: Path) -> None:
    assert str(settings_from(tmp_path, JWT_SECRET="x" * 32).jwt_secret) == "x" * 32


def test_production_refuses_a_data_key_equal_to_the_jwt_secret(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as error:
        production_from(tmp_path, DATA_KEY=SECRET)
    message = str(error.value)
    assert "USER_SERVICE_DATA_KEY must differ from USER_SERVICE_JWT_SECRET" in message
    assert SECRET not in message


def test_production_refuses_a_previous_secret_equal_to_the_data_key(
    tmp_path: Path,
) -> None:
    with pytest.raises(SettingsError) as error:
        production_from(tmp_path, JWT_PREVIOUS_SECRETS=DATA_KEY)
    message = str(error.value)
    assert "USER_SERVICE_JWT_PREVIOUS_SECRETS must not hold" in message
    assert DATA_KEY not in message


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

SECRET_FIELDS = {"jwt_secret", "data_key", "jwt_previous_secrets"}


def test_from_env_with_nothing_set_gives_the_dataclass_defaults(tmp_path: Path) -> None:
    from_env = settings_from(tmp_path, JWT_SECRET=SECRET, DATA_KEY=DATA_KEY)
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
    "database URL": ({"database_url": "postgres//x"}, "USER_SERVICE_DATABASE_URL"),
    "Redis URL": ({"redis_url": "bogus://x"}, "USER_SERVICE_REDIS_URL"),
    "SMTP URL": ({"smtp_url": "http://x"}, "USER_SERVICE_SMTP_URL"),
    "short secret": ({"jwt_secret": Secret("short")}, "USER_SERVICE_JWT_SECRET"),
    "production without secrets": (
        {"env": "production"},
        "USER_SERVICE_JWT_SECRET",
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
