"""Input rules of the contract: email, password and profile fields.

Pure functions over values; each raises BadUserInput naming the input field.
"""

import gzip
import ipaddress
import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email

from errors import BadUserInput

MAX_EMAIL_LENGTH = 254
MAX_PROFILE_LENGTH = 100
MAX_TENANT_NAME = 100
TENANT_NAME_RULE = (
    f"A tenant name is 1 to {MAX_TENANT_NAME} characters of plain text, "
    "without spaces at either end."
)
MOBILE = re.compile(r"\+?[0-9]{7,15}")
COMMON_PASSWORDS = Path(__file__).with_name("common-passwords.txt.gz")


@dataclass(frozen=True)
class PasswordPolicy:
    min_length: int = 8
    max_length: int = 128
    requires_letter: bool = True
    requires_digit: bool = True
    requires_special: bool = True


POLICY = PasswordPolicy()


def is_clean_text(value: str) -> bool:
    """True when `value` is storable text: valid Unicode, no control characters.

    JSON can carry lone surrogates ("\\ud800"), which cannot be encoded, and NUL,
    which PostgreSQL cannot store in text.
    """
    return is_valid_unicode(value) and not any(
        unicodedata.category(char) == "Cc" for char in value
    )


def check_tenant_name(name: str) -> None:
    """A tenant's name: 1 to 100 characters of plain text, no spaces at the ends."""
    if not name or len(name) > MAX_TENANT_NAME or name != name.strip():
        raise BadUserInput({"name": TENANT_NAME_RULE})
    if not is_clean_text(name):
        raise BadUserInput({"name": TENANT_NAME_RULE})


def email_key(email: str) -> str:
    """What uniqueness and look-ups compare: NFKC, then full case folding.

    Capital, final and medial sigma fold to one key, and so do fullwidth
    letters and their ASCII twins, or "ß" and "ss".
    NFKC once more after folding makes canonically equal folds one key too.
    """
    folded = unicodedata.normalize("NFKC", email).casefold()
    return unicodedata.normalize("NFKC", folded)


def normalize_email(raw: str, *, field: str = "email") -> str:
    """The trimmed, normalized email, or BadUserInput for `field`."""
    email = raw.strip()
    if not email:
        raise BadUserInput({field: "Email is required."})
    if len(email) > MAX_EMAIL_LENGTH or not is_clean_text(email):
        raise BadUserInput({field: "Email is not a valid address."})
    try:
        return validate_email(email, check_deliverability=False).normalized
    except EmailNotValidError:
        raise BadUserInput({field: "Email is not a valid address."}) from None


def check_text(value: str | None, *, field: str, max_length: int) -> None:
    """Refuse text that no stored value can match: longer than `max_length`,
    or not storable (see is_clean_text). For filters that a query compares
    with what the database holds; None (no filter) passes."""
    if value is not None and (len(value) > max_length or not is_clean_text(value)):
        raise BadUserInput(
            {field: f"Must be plain text of at most {max_length} characters."}
        )


def password_problem(password: str, *, email: str) -> str | None:
    """What is wrong with a new password, or None when the policy accepts it."""
    if not is_valid_unicode(password):
        return "Password contains characters that are not valid text."
    if not POLICY.min_length <= len(password) <= POLICY.max_length:
        return (
            f"Password must be {POLICY.min_length} to {POLICY.max_length} "
            "characters long."
        )
    if not any(char.isalpha() for char in password):
        return "Password must contain a letter."
    if not any(char.isdigit() for char in password):
        return "Password must contain a digit."
    if all(char.isalnum() for char in password):
        return "Password must contain a character other than a letter or digit."
    if password.casefold() == email.casefold():
        return "Password must not be the email address."
    if password.casefold() in common_passwords():
        return "Password is too common."
    return None


def check_sign_up(
    email: str, password: str, profile: dict[str, str | None]
) -> tuple[str, dict[str, str | None]]:
    """The normalized email and cleaned profile; every problem at once if any."""
    problems: dict[str, str] = {}
    try:
        email = normalize_email(email)
    except BadUserInput as error:
        problems |= error.fields
    else:
        # Compatibility characters may unfold into more (one "ﷺ" into 18): the
        # key must fit where the address fits.
        if len(email_key(email)) > MAX_EMAIL_LENGTH:
            problems["email"] = "Email is not a valid address."
    if problem := password_problem(password, email=email):
        problems["password"] = problem
    try:
        profile = clean_profile(profile)
    except BadUserInput as error:
        problems |= error.fields
    if problems:
        raise BadUserInput(problems)
    return email, profile


def check_new_password(password: str, *, email: str, field: str) -> None:
    if problem := password_problem(password, email=email):
        raise BadUserInput({field: problem})


def check_login_password(password: str, *, field: str = "password") -> None:
    """A password no account can have is bad input, not a failed login."""
    if not is_valid_unicode(password) or len(password) > POLICY.max_length:
        raise BadUserInput({field: "Password is not valid."})


def is_valid_unicode(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def profile_problem(name: str, value: str) -> str | None:
    """What is wrong with a profile field's value, or None."""
    if not is_clean_text(value):
        return "Must be plain text without control characters."
    if name == "mobile":
        if not MOBILE.fullmatch(value):
            return "Must be 7 to 15 digits with an optional leading +."
    elif len(value) > MAX_PROFILE_LENGTH:
        return f"Must be at most {MAX_PROFILE_LENGTH} characters."
    return None


def clean_profile(values: dict[str, str | None]) -> dict[str, str | None]:
    """Trim and check profile fields; None (or blank) clears a field."""
    cleaned: dict[str, str | None] = {}
    problems: dict[str, str] = {}
    for name, value in values.items():
        text = value.strip() if value is not None else ""
        problem = profile_problem(name, text) if text else None
        if problem:
            problems[name] = problem
        cleaned[name] = text or None
    if problems:
        raise BadUserInput(problems)
    return cleaned


@cache
def common_passwords() -> frozenset[str]:
    with gzip.open(COMMON_PASSWORDS, "rt", encoding="utf-8") as file:
        return frozenset(line.strip().casefold() for line in file if line.strip())


def url_problem(url: str, *, redirect: bool) -> str | None:
    """What is wrong with an issuer (or, with `redirect`, a redirect URI).

    https only; http is allowed for loopback hosts alone (development, tests).
    An issuer carries no query, fragment or credentials (OpenID Connect
    Discovery); a redirect URI no fragment (RFC 6749 3.1.2).
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018  # raises ValueError for a bad port
    except ValueError:
        return "not a URL"
    if not is_clean_text(url) or " " in url or not host or len(url) > 500:
        return "not a URL"
    if parts.scheme != "https" and not (parts.scheme == "http" and is_loopback(host)):
        return "must be https:// (http:// only for a loopback host)"
    if parts.fragment or "#" in url or parts.username or parts.password:
        return "must have no #fragment or user:password@"
    if parts.query and not redirect:
        return "must have no ?query"
    return None


def is_internal(host: str) -> bool:
    """A loopback name, or an address of this host, a private network or a
    link-local one: where a remote party's URL must never send the service."""
    if is_loopback(host):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_private or address.is_link_local or address.is_unspecified


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
