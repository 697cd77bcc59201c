"""Settings: the only reader of USER_SERVICE_* variables.

`Settings.from_env(environ)` builds one frozen object that is passed down; there is
no module-level instance. A bad value raises `SettingsError` naming the variable.
"""

import contextlib
import math
import os
import secrets
import urllib.parse
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Self, TypeVar
from urllib.parse import urlsplit

import limits
from playhouse import db_url
from starlette.config import Config
from starlette.datastructures import Secret

from mail import SmtpServer

PREFIX = "USER_SERVICE_"
DEFAULT_DATA_DIR = Path(__file__).resolve().parent / "data"
DATABASE_FILE = "users.db"
DEFAULT_DEV_API_KEY = "usk_dev_local_only_not_a_secret"
MAX_PORT = 65535
MIN_SECRET_BYTES = 32
# NIST SP 800-63B asks for at least 64 bits of entropy in session secrets.
MIN_SECRET_BITS = 64
GENERATE_COMMAND = 'python -c "import secrets; print(secrets.token_urlsafe(48))"'
DEV_DATA_KEY_FILE = "data-key"
JWT_ALGORITHMS = ("ES256", "EdDSA", "RS256")

T = TypeVar("T")


class SettingsError(Exception):
    """A setting is missing or wrong; the message names the variable and the fix."""


@dataclass(frozen=True)
class Settings:
    env: Literal["development", "production"] = "development"
    # The contract's sqlite:///data/users.db: the data folder next to server.py,
    # wherever the command runs from (see from_env for USER_SERVICE_DATA_DIR).
    database_url: str = f"sqlite:///{DEFAULT_DATA_DIR / DATABASE_FILE}"
    database_timeout: int = 5
    database_threads: int = 8
    data_dir: Path = DEFAULT_DATA_DIR
    data_key: Secret = field(default=Secret(""), repr=False)
    issuer: str = "http://127.0.0.1:8000"
    jwt_algorithm: str = "ES256"
    signing_key_publish_ahead: int = 600
    access_token_ttl: int = 900
    refresh_token_ttl: int = 30 * 24 * 3600
    refresh_reuse_grace: int = 10
    max_sessions_per_user: int = 100
    dev_api_key: str = field(default=DEFAULT_DEV_API_KEY, repr=False)
    introspection: bool = True
    bcrypt_cost: int = 12
    hashing_threads: int = 2
    redis_url: str | None = None
    login_failures_per_account: str = "5 per 15 minutes"
    login_failures_per_address: str = "100 per 15 minutes"
    guesses_per_address: str = "1000 per 15 minutes"
    signups_per_address: str = "20 per hour"
    code_failures_per_account: str = "5 per 15 minutes"
    smtp_url: str | None = field(default=None, repr=False)
    mail_from: str = "no-reply@localhost"
    reset_url: str = "http://localhost:3000/reset-password?token={token}"
    verify_url: str = "http://localhost:3000/verify-email?token={token}"
    require_verified_email: bool = False
    mail_requests_per_address: str = "10 per hour"
    cors_origins: tuple[str, ...] = ()
    trusted_proxies: tuple[str, ...] = ()
    max_body_bytes: int = 65536
    max_query_length: int = 16384
    max_depth: int = 8
    max_aliases: int = 15
    max_tokens: int = 1000
    max_directives: int = 10
    header_timeout: int = 10
    body_timeout: int = 30
    max_connections: int = 1000
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def graphiql(self) -> bool:
        return not self.is_production

    @property
    def field_suggestions(self) -> bool:
        return not self.is_production

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Self:
        config = Config(environ=environ, env_prefix=PREFIX)
        env = _read(config, "ENV", str, "development")
        if env not in ("development", "production"):
            raise SettingsError(
                f"{PREFIX}ENV={env!r} is not valid: use development or production."
            )
        production = env == "production"
        data_dir = Path(_read(config, "DATA_DIR", str, str(cls.data_dir)))
        default_database = f"sqlite:///{data_dir.absolute() / DATABASE_FILE}"
        settings = cls(
            env=env,  # type: ignore[arg-type]  # checked just above
            database_url=_database_url(config, default_database),
            data_dir=data_dir,
            database_timeout=_positive(config, "DATABASE_TIMEOUT", 5),
            database_threads=_positive(
                config, "DATABASE_THREADS", cls.database_threads
            ),
            data_key=_required_secret(
                config, "DATA_KEY", data_dir, DEV_DATA_KEY_FILE, production=production
            ),
            issuer=_issuer(config),
            jwt_algorithm=_choice(config, "JWT_ALGORITHM", JWT_ALGORITHMS),
            signing_key_publish_ahead=_read(
                config, "SIGNING_KEY_PUBLISH_AHEAD", int, 600
            ),
            access_token_ttl=_positive(config, "ACCESS_TOKEN_TTL", 900),
            refresh_token_ttl=_positive(config, "REFRESH_TOKEN_TTL", 30 * 24 * 3600),
            refresh_reuse_grace=_read(config, "REFRESH_REUSE_GRACE", int, 10),
            max_sessions_per_user=_positive(
                config, "MAX_SESSIONS_PER_USER", cls.max_sessions_per_user
            ),
            dev_api_key=_read(config, "DEV_API_KEY", str, DEFAULT_DEV_API_KEY),
            introspection=_read(config, "INTROSPECTION", bool, not production),
            bcrypt_cost=_read(config, "BCRYPT_COST", int, 12),
            hashing_threads=_positive(
                config, "HASHING_THREADS", max(1, os.cpu_count() or 1)
            ),
            redis_url=_redis_url(config),
            login_failures_per_account=_limit(
                config, "LOGIN_FAILURES_PER_ACCOUNT", cls.login_failures_per_account
            ),
            login_failures_per_address=_limit(
                config, "LOGIN_FAILURES_PER_ADDRESS", cls.login_failures_per_address
            ),
            guesses_per_address=_limit(
                config, "TOKEN_GUESSES_PER_ADDRESS", cls.guesses_per_address
            ),
            signups_per_address=_limit(
                config, "SIGNUPS_PER_ADDRESS", cls.signups_per_address
            ),
            code_failures_per_account=_limit(
                config, "CODE_FAILURES_PER_ACCOUNT", cls.code_failures_per_account
            ),
            smtp_url=_smtp_url(config),
            mail_from=_read(config, "MAIL_FROM", str, cls.mail_from),
            reset_url=_link_template(config, "RESET_URL", cls.reset_url),
            verify_url=_link_template(config, "VERIFY_URL", cls.verify_url),
            require_verified_email=_read(config, "REQUIRE_VERIFIED_EMAIL", bool, False),
            mail_requests_per_address=_limit(
                config, "MAIL_REQUESTS_PER_ADDRESS", cls.mail_requests_per_address
            ),
            cors_origins=_list(config, "CORS_ORIGINS"),
            trusted_proxies=_list(config, "TRUSTED_PROXIES"),
            max_body_bytes=_positive(config, "MAX_BODY_BYTES", cls.max_body_bytes),
            max_query_length=_positive(
                config, "MAX_QUERY_LENGTH", cls.max_query_length
            ),
            max_depth=_positive(config, "MAX_DEPTH", cls.max_depth),
            max_aliases=_positive(config, "MAX_ALIASES", cls.max_aliases),
            max_tokens=_positive(config, "MAX_TOKENS", cls.max_tokens),
            max_directives=_positive(config, "MAX_DIRECTIVES", cls.max_directives),
            header_timeout=_positive(config, "HEADER_TIMEOUT", cls.header_timeout),
            body_timeout=_positive(config, "BODY_TIMEOUT", cls.body_timeout),
            max_connections=_positive(config, "MAX_CONNECTIONS", cls.max_connections),
            host=_read(config, "HOST", str, "127.0.0.1"),
            port=_port(config, "PORT", cls.port),
            workers=_positive(config, "WORKERS", 1),
        )
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse values that are unsafe or cannot work."""
        if not 4 <= self.bcrypt_cost <= 16:
            raise SettingsError(f"{PREFIX}BCRYPT_COST must be between 4 and 16.")
        if self.is_production and self.bcrypt_cost < 10:
            raise SettingsError(
                f"{PREFIX}BCRYPT_COST must be at least 10 in production."
            )
        if self.signing_key_publish_ahead < 0:
            raise SettingsError(f"{PREFIX}SIGNING_KEY_PUBLISH_AHEAD must be 0 or more.")
        if self.refresh_reuse_grace < 0:
            raise SettingsError(f"{PREFIX}REFRESH_REUSE_GRACE must be 0 or more.")
        if not self.dev_api_key.strip() or self.dev_api_key != self.dev_api_key.strip():
            raise SettingsError(f"{PREFIX}DEV_API_KEY must be a non-empty key.")
        if self.is_production:
            self._check_production_secrets()
            if {"*", "null"} & set(self.cors_origins):
                raise SettingsError(
                    f"{PREFIX}CORS_ORIGINS may not hold * or null in production: "
                    "list the origins of your frontends, e.g. https://app.example.com"
                )

    def _check_production_secrets(self) -> None:
        """Refuse a data key that is guessable."""
        if _is_guessable(str(self.data_key)):
            raise SettingsError(
                f"{PREFIX}DATA_KEY is guessable (a short piece repeated, or too "
                f"few different characters); generate one with: {GENERATE_COMMAND}"
            )


def _read(config: Config, name: str, cast: type[T], default: T) -> T:
    try:
        return config(name, cast=cast, default=default)
    except ValueError:
        raise SettingsError(
            f"{PREFIX}{name}={config(name, default='')!r} is not a valid "
            f"{cast.__name__}."
        ) from None


def _positive(config: Config, name: str, default: int) -> int:
    value = _read(config, name, int, default)
    if value < 1:
        raise SettingsError(f"{PREFIX}{name} must be a positive whole number.")
    return value


def _port(config: Config, name: str, default: int) -> int:
    value = _read(config, name, int, default)
    if not is_port(value):
        raise SettingsError(f"{PREFIX}{name} must be a port number, 1 to 65535.")
    return value


def is_port(value: int) -> bool:
    return 1 <= value <= MAX_PORT


def _database_url(config: Config, default: str) -> str:
    """A URL Peewee can open; the value is never echoed: it may hold a password."""
    value = _read(config, "DATABASE_URL", str, default)
    scheme, separator, rest = value.partition("://")
    if not separator or not rest or scheme not in db_url.schemes:
        raise SettingsError(
            f"{PREFIX}DATABASE_URL is not a database URL: write "
            "sqlite:///path/to/users.db or postgresql://user@host:5432/database."
        )
    return value


def _redis_url(config: Config) -> str | None:
    value = _read(config, "REDIS_URL", str, "")
    if not value:
        return None
    parsed = urlsplit(value)
    if parsed.scheme not in ("redis", "rediss") or not parsed.hostname:
        raise SettingsError(
            f"{PREFIX}REDIS_URL is not a Redis URL: write redis://host:6379/0 "
            "(rediss:// for TLS), or leave it unset to count in memory."
        )
    return value


def _limit(config: Config, name: str, default: str) -> str:
    """A rate limit in the `limits` package's notation, e.g. "5 per 15 minutes"."""
    value = _read(config, name, str, default)
    try:
        limits.parse(value)
    except ValueError:
        raise SettingsError(
            f"{PREFIX}{name}={value!r} is not a rate limit; write e.g. "
            '"5 per 15 minutes".'
        ) from None
    return value


def _smtp_url(config: Config) -> str | None:
    value = _read(config, "SMTP_URL", str, "")
    if not value:
        return None
    try:
        SmtpServer.from_url(value)
    except ValueError as error:
        raise SettingsError(f"{PREFIX}SMTP_URL is not valid: {error}.") from None
    return value


def _link_template(config: Config, name: str, default: str) -> str:
    value = _read(config, name, str, default)
    if "{token}" not in value:
        raise SettingsError(f"{PREFIX}{name} must contain {{token}}, e.g. {default}")
    return value


def _choice(config: Config, name: str, choices: tuple[str, ...]) -> str:
    value = _read(config, name, str, choices[0])
    if value not in choices:
        raise SettingsError(
            f"{PREFIX}{name}={value!r} is not supported: use one of "
            f"{', '.join(choices)}."
        )
    return value


def _issuer(config: Config) -> str:
    """The public base URL: every token's `iss`, and where the keys are found."""
    value = _read(config, "ISSUER", str, "http://127.0.0.1:8000").rstrip("/")
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingsError(
            f"{PREFIX}ISSUER={value!r} is not a base URL; write e.g. "
            "https://users.example.com"
        )
    if parts.query or parts.fragment:
        raise SettingsError(
            f"{PREFIX}ISSUER={value!r} is not a base URL; write e.g. "
            "https://users.example.com"
        )
    return value


def _list(config: Config, name: str) -> tuple[str, ...]:
    raw = _read(config, name, str, "")
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _strong_secret(name: str, value: str) -> Secret:
    if len(value.encode()) < MIN_SECRET_BYTES:
        raise SettingsError(
            f"{PREFIX}{name} must be at least {MIN_SECRET_BYTES} bytes; generate one "
            f"with: {GENERATE_COMMAND}"
        )
    return Secret(value)


def _is_guessable(secret: str) -> bool:
    """Whether a secret is plainly weak, whatever its length.

    Weak: one short piece repeated ("x" * 40, "abcd" * 8), or under
    MIN_SECRET_BITS by a generous estimate: its length times the entropy of its
    character frequencies, which ignores their order. Random secrets pass
    easily: 32 hex digits score about 115 bits, token_urlsafe(48) about 330.
    """
    if secret in (secret + secret)[1:-1]:
        return True
    counts = Counter(secret).values()
    bits = -sum(count * math.log2(count / len(secret)) for count in counts)
    return bits < MIN_SECRET_BITS


def _required_secret(
    config: Config, name: str, data_dir: Path, dev_file: str, *, production: bool
) -> Secret:
    """A secret from the environment; in development, generated once into a file."""
    value = _read(config, name, str, "")
    if value:
        return _strong_secret(name, value)
    if production:
        raise SettingsError(
            f"{PREFIX}{name} is required in production (at least "
            f"{MIN_SECRET_BYTES} bytes); generate one with: {GENERATE_COMMAND}"
        )
    try:
        return Secret(_dev_secret(data_dir / dev_file))
    except OSError as error:
        raise SettingsError(
            f"{PREFIX}DATA_DIR: cannot keep the development {name} in {data_dir} "
            f"({error.strerror}); name a folder this user may write to."
        ) from None


def _dev_secret(path: Path) -> str:
    """Read a development secret, creating it (mode 0600) on first use."""
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_urlsafe(48))
        # A hard link appears whole or not at all, and never replaces a secret
        # that another process starting at the same moment wrote first.
        with contextlib.suppress(FileExistsError):
            os.link(draft, path)
        draft.unlink()
    return path.read_text().strip()
