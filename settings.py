"""Settings: the only reader of USER_SERVICE_* variables.

`Settings.from_env(environ)` builds one frozen object that is passed down; there is
no module-level instance. Defaults are written once, on the dataclass, and every
Settings is checked in `__post_init__`, however it was made: a bad value raises
`SettingsError` naming the variable.
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

# Fields whose variable is not their name in capitals.
ENV_NAMES = {"guesses_per_address": "TOKEN_GUESSES_PER_ADDRESS"}
POSITIVE = (
    "database_timeout",
    "database_threads",
    "access_token_ttl",
    "refresh_token_ttl",
    "max_sessions_per_user",
    "hashing_threads",
    "max_body_bytes",
    "max_query_length",
    "max_depth",
    "max_aliases",
    "max_tokens",
    "max_directives",
    "header_timeout",
    "body_timeout",
    "max_connections",
    "workers",
)
RATE_LIMITS = (
    "login_failures_per_account",
    "login_failures_per_address",
    "guesses_per_address",
    "signups_per_address",
    "code_failures_per_account",
    "mail_requests_per_address",
)
LINK_TEMPLATES = ("reset_url", "verify_url", "email_change_url")
# The contract's webhook retries: about 1 s, 5 s, 30 s, 2 min, 10 min, then
# hourly for 24 hours; seconds after each failed attempt.
WEBHOOK_RETRY_DELAYS = (1.0, 5.0, 30.0, 120.0, 600.0, *(3600.0,) * 24)

T = TypeVar("T")


def cpu_count() -> int:
    return max(1, os.cpu_count() or 1)


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
    hashing_threads: int = field(default_factory=cpu_count)
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
    email_change_url: str = "http://localhost:3000/confirm-email-change?token={token}"
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
    webhook_timeout: float = 10.0
    # How long a claimed delivery stays its sender's: longer than a send may take.
    webhook_lease: float = 60.0
    webhook_poll_interval: float = 1.0
    webhook_retry_delays: tuple[float, ...] = WEBHOOK_RETRY_DELAYS

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
            database_url=_read(config, "DATABASE_URL", str, default_database),
            data_dir=data_dir,
            database_timeout=_read(
                config, "DATABASE_TIMEOUT", int, cls.database_timeout
            ),
            database_threads=_read(
                config, "DATABASE_THREADS", int, cls.database_threads
            ),
            data_key=_required_secret(
                config, "DATA_KEY", data_dir, DEV_DATA_KEY_FILE, production=production
            ),
            issuer=_read(config, "ISSUER", str, cls.issuer).rstrip("/"),
            jwt_algorithm=_read(config, "JWT_ALGORITHM", str, cls.jwt_algorithm),
            signing_key_publish_ahead=_read(
                config, "SIGNING_KEY_PUBLISH_AHEAD", int, cls.signing_key_publish_ahead
            ),
            access_token_ttl=_read(
                config, "ACCESS_TOKEN_TTL", int, cls.access_token_ttl
            ),
            refresh_token_ttl=_read(
                config, "REFRESH_TOKEN_TTL", int, cls.refresh_token_ttl
            ),
            refresh_reuse_grace=_read(
                config, "REFRESH_REUSE_GRACE", int, cls.refresh_reuse_grace
            ),
            max_sessions_per_user=_read(
                config, "MAX_SESSIONS_PER_USER", int, cls.max_sessions_per_user
            ),
            dev_api_key=_read(config, "DEV_API_KEY", str, cls.dev_api_key),
            introspection=_read(config, "INTROSPECTION", bool, not production),
            bcrypt_cost=_read(config, "BCRYPT_COST", int, cls.bcrypt_cost),
            hashing_threads=_read(config, "HASHING_THREADS", int, cpu_count()),
            redis_url=_read(config, "REDIS_URL", str, "") or None,
            login_failures_per_account=_read(
                config,
                "LOGIN_FAILURES_PER_ACCOUNT",
                str,
                cls.login_failures_per_account,
            ),
            login_failures_per_address=_read(
                config,
                "LOGIN_FAILURES_PER_ADDRESS",
                str,
                cls.login_failures_per_address,
            ),
            guesses_per_address=_read(
                config, "TOKEN_GUESSES_PER_ADDRESS", str, cls.guesses_per_address
            ),
            signups_per_address=_read(
                config, "SIGNUPS_PER_ADDRESS", str, cls.signups_per_address
            ),
            code_failures_per_account=_read(
                config, "CODE_FAILURES_PER_ACCOUNT", str, cls.code_failures_per_account
            ),
            smtp_url=_read(config, "SMTP_URL", str, "") or None,
            mail_from=_read(config, "MAIL_FROM", str, cls.mail_from),
            reset_url=_read(config, "RESET_URL", str, cls.reset_url),
            verify_url=_read(config, "VERIFY_URL", str, cls.verify_url),
            email_change_url=_read(
                config, "EMAIL_CHANGE_URL", str, cls.email_change_url
            ),
            require_verified_email=_read(
                config, "REQUIRE_VERIFIED_EMAIL", bool, cls.require_verified_email
            ),
            mail_requests_per_address=_read(
                config, "MAIL_REQUESTS_PER_ADDRESS", str, cls.mail_requests_per_address
            ),
            cors_origins=_list(config, "CORS_ORIGINS"),
            trusted_proxies=_list(config, "TRUSTED_PROXIES"),
            max_body_bytes=_read(config, "MAX_BODY_BYTES", int, cls.max_body_bytes),
            max_query_length=_read(
                config, "MAX_QUERY_LENGTH", int, cls.max_query_length
            ),
            max_depth=_read(config, "MAX_DEPTH", int, cls.max_depth),
            max_aliases=_read(config, "MAX_ALIASES", int, cls.max_aliases),
            max_tokens=_read(config, "MAX_TOKENS", int, cls.max_tokens),
            max_directives=_read(config, "MAX_DIRECTIVES", int, cls.max_directives),
            header_timeout=_read(config, "HEADER_TIMEOUT", int, cls.header_timeout),
            body_timeout=_read(config, "BODY_TIMEOUT", int, cls.body_timeout),
            max_connections=_read(config, "MAX_CONNECTIONS", int, cls.max_connections),
            host=_read(config, "HOST", str, cls.host),
            port=_read(config, "PORT", int, cls.port),
            workers=_read(config, "WORKERS", int, cls.workers),
            webhook_timeout=_read(
                config, "WEBHOOK_TIMEOUT", float, cls.webhook_timeout
            ),
            webhook_lease=_read(config, "WEBHOOK_LEASE", float, cls.webhook_lease),
            webhook_poll_interval=_read(
                config, "WEBHOOK_POLL_INTERVAL", float, cls.webhook_poll_interval
            ),
            webhook_retry_delays=_seconds(config, "WEBHOOK_RETRY_DELAYS")
            or cls.webhook_retry_delays,
        )
        return settings

    def __post_init__(self) -> None:
        """Every Settings is checked, however it was made: from the environment,
        by hand, or with dataclasses.replace."""
        for name in POSITIVE:
            if getattr(self, name) < 1:
                raise SettingsError(
                    f"{env_name(name)} must be a positive whole number."
                )
        if not is_port(self.port):
            raise SettingsError(f"{PREFIX}PORT must be a port number, 1 to {MAX_PORT}.")
        for name in RATE_LIMITS:
            _check_limit(name, getattr(self, name))
        for name in LINK_TEMPLATES:
            if "{token}" not in getattr(self, name):
                raise SettingsError(f"{env_name(name)} must contain {{token}}.")
        _check_database_url(self.database_url)
        _check_redis_url(self.redis_url)
        _check_smtp_url(self.smtp_url)
        self.check()

    def check(self) -> None:
        """Refuse values that are unsafe or cannot work together."""
        if not 4 <= self.bcrypt_cost <= 16:
            raise SettingsError(f"{PREFIX}BCRYPT_COST must be between 4 and 16.")
        if self.is_production and self.bcrypt_cost < 10:
            raise SettingsError(
                f"{PREFIX}BCRYPT_COST must be at least 10 in production."
            )
        if self.jwt_algorithm not in JWT_ALGORITHMS:
            raise SettingsError(
                f"{PREFIX}JWT_ALGORITHM={self.jwt_algorithm!r} is not supported: use "
                f"one of {', '.join(JWT_ALGORITHMS)}."
            )
        _check_issuer(self.issuer)
        if self.signing_key_publish_ahead < 0:
            raise SettingsError(f"{PREFIX}SIGNING_KEY_PUBLISH_AHEAD must be 0 or more.")
        if self.refresh_reuse_grace < 0:
            raise SettingsError(f"{PREFIX}REFRESH_REUSE_GRACE must be 0 or more.")
        for name in ("webhook_timeout", "webhook_poll_interval"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{env_name(name)} must be a positive number.")
        if self.webhook_lease <= self.webhook_timeout:
            raise SettingsError(
                f"{PREFIX}WEBHOOK_LEASE must be longer than {PREFIX}WEBHOOK_TIMEOUT: "
                "a claimed delivery must stay its sender's while it is sent."
            )
        if any(delay < 0 for delay in self.webhook_retry_delays):
            raise SettingsError(f"{PREFIX}WEBHOOK_RETRY_DELAYS must be 0 or more.")
        if not self.dev_api_key.strip() or self.dev_api_key != self.dev_api_key.strip():
            raise SettingsError(f"{PREFIX}DEV_API_KEY must be a non-empty key.")
        self._check_secret_lengths()
        if self.is_production:
            self._check_production_secrets()
            if {"*", "null"} & set(self.cors_origins):
                raise SettingsError(
                    f"{PREFIX}CORS_ORIGINS may not hold * or null in production: "
                    "list the origins of your frontends, e.g. https://app.example.com"
                )

    def _check_secret_lengths(self) -> None:
        """A given key is long enough; only a Settings made by hand has none."""
        if str(self.data_key):
            _check_secret_length("DATA_KEY", str(self.data_key))

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


def env_name(field_name: str) -> str:
    """The variable that sets a field of Settings."""
    return PREFIX + ENV_NAMES.get(field_name, field_name.upper())


def is_port(value: int) -> bool:
    return 1 <= value <= MAX_PORT


def _check_limit(field_name: str, value: str) -> None:
    """A rate limit in the `limits` package's notation, e.g. "5 per 15 minutes"."""
    try:
        limits.parse(value)
    except ValueError:
        raise SettingsError(
            f"{env_name(field_name)}={value!r} is not a rate limit; write e.g. "
            '"5 per 15 minutes".'
        ) from None


def _check_database_url(value: str) -> None:
    """A URL Peewee can open; the value is never echoed: it may hold a password."""
    scheme, separator, rest = value.partition("://")
    if not separator or not rest or scheme not in db_url.schemes:
        raise SettingsError(
            f"{PREFIX}DATABASE_URL is not a database URL: write "
            "sqlite:///path/to/users.db or postgresql://user@host:5432/database."
        )


def _check_redis_url(value: str | None) -> None:
    parsed = urlsplit(value or "")
    if value is not None and (
        parsed.scheme not in ("redis", "rediss") or not parsed.hostname
    ):
        raise SettingsError(
            f"{PREFIX}REDIS_URL is not a Redis URL: write redis://host:6379/0 "
            "(rediss:// for TLS), or leave it unset to count in memory."
        )


def _check_smtp_url(value: str | None) -> None:
    if value is None:
        return
    try:
        SmtpServer.from_url(value)
    except ValueError as error:
        raise SettingsError(f"{PREFIX}SMTP_URL is not valid: {error}.") from None


def _check_issuer(value: str) -> None:
    """The public base URL: every token's `iss`, and where the keys are found."""
    parts = urllib.parse.urlsplit(value)
    if (
        parts.scheme not in ("http", "https")
        or not parts.netloc
        or parts.query
        or parts.fragment
        or value.endswith("/")
    ):
        raise SettingsError(
            f"{PREFIX}ISSUER={value!r} is not a base URL; write e.g. "
            "https://users.example.com"
        )


def _list(config: Config, name: str) -> tuple[str, ...]:
    raw = _read(config, name, str, "")
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _seconds(config: Config, name: str) -> tuple[float, ...]:
    """A comma-separated list of seconds, e.g. "1,5,30"."""
    try:
        return tuple(float(part) for part in _list(config, name))
    except ValueError:
        raise SettingsError(
            f"{PREFIX}{name} is not a list of seconds; write e.g. 1,5,30,120"
        ) from None


def _check_secret_length(name: str, value: str) -> None:
    if len(value.encode()) < MIN_SECRET_BYTES:
        raise SettingsError(
            f"{PREFIX}{name} must be at least {MIN_SECRET_BYTES} bytes; generate one "
            f"with: {GENERATE_COMMAND}"
        )


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
        _check_secret_length(name, value)  # before any other variable is read
        return Secret(value)
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
