"""The errors a client may see, one class per contract error code.

Raise them anywhere; the GraphQL layer and the HTTP edge format them once.
Each resolver declares, with `@raises`, the errors its operation answers: the
schema's descriptions list them from there, and a test holds the code to them.

    ServiceError
    ├── InvalidApiKey          INVALID_API_KEY (HTTP 401)
    ├── Unauthenticated        UNAUTHENTICATED (reason TOKEN_EXPIRED when expired)
    ├── Forbidden              FORBIDDEN
    ├── BadUserInput           BAD_USER_INPUT (with fields)
    ├── EmailTaken             EMAIL_TAKEN
    ├── NotFound               NOT_FOUND
    ├── RateLimited            RATE_LIMITED (with retryAfter)
    ├── MfaRequired            MFA_REQUIRED (with mfaToken)
    ├── EmailNotVerified       EMAIL_NOT_VERIFIED
    ├── ServiceUnavailable     SERVICE_UNAVAILABLE
    ├── BadRequest             BAD_REQUEST
    └── InternalServerError    INTERNAL_SERVER_ERROR
"""

from collections.abc import Callable
from typing import ClassVar, TypeVar

F = TypeVar("F", bound=Callable[..., object])


class ServiceError(Exception):
    """An error the client may see; `code` is the contract's extensions.code."""

    code: ClassVar[str]
    default_message: ClassVar[str]

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message)
        self.message = message or self.default_message

    @property
    def extensions(self) -> dict[str, object]:
        return {"code": self.code}


class InvalidApiKey(ServiceError):
    """The X-API-Key header is missing, unknown or revoked."""

    code = "INVALID_API_KEY"
    default_message = "A valid X-API-Key header is required."


class Unauthenticated(ServiceError):
    """No usable access token, or wrong credentials."""

    code = "UNAUTHENTICATED"
    default_message = "Authentication required."

    def __init__(self, message: str | None = None, *, reason: str | None = None):
        super().__init__(message)
        self.reason = reason

    @property
    def extensions(self) -> dict[str, object]:
        if self.reason is None:
            return {"code": self.code}
        return {"code": self.code, "reason": self.reason}


class Forbidden(ServiceError):
    """Authenticated, but the role or ownership does not allow it."""

    code = "FORBIDDEN"
    default_message = "You are not allowed to do this."


class BadUserInput(ServiceError):
    """Validation failed; `fields` maps each input field to its message."""

    code = "BAD_USER_INPUT"
    default_message = "The input is not valid."

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__()
        self.fields = fields

    @property
    def extensions(self) -> dict[str, object]:
        return {"code": self.code, "fields": self.fields}


class EmailTaken(ServiceError):
    """The tenant already has an account with this email."""

    code = "EMAIL_TAKEN"
    default_message = "An account with this email already exists."


class NotFound(ServiceError):
    """The target does not exist in this tenant."""

    code = "NOT_FOUND"
    default_message = "Not found."


class RateLimited(ServiceError):
    """Too many attempts; retry after `retry_after` seconds."""

    code = "RATE_LIMITED"
    default_message = "Too many attempts. Try again later."

    def __init__(self, retry_after: int) -> None:
        super().__init__()
        self.retry_after = retry_after

    @property
    def extensions(self) -> dict[str, object]:
        return {"code": self.code, "retryAfter": self.retry_after}


class MfaRequired(ServiceError):
    """The password was right; finish the login with verifyMfa and this token."""

    code = "MFA_REQUIRED"
    default_message = "Enter the code from your authenticator app (verifyMfa)."

    def __init__(self, mfa_token: str) -> None:
        super().__init__()
        self.mfa_token = mfa_token

    @property
    def extensions(self) -> dict[str, object]:
        return {"code": self.code, "mfaToken": self.mfa_token}


class EmailNotVerified(ServiceError):
    """Login is refused until the account's email is verified."""

    code = "EMAIL_NOT_VERIFIED"
    default_message = "Confirm your email first: follow the link we sent you."


class ServiceUnavailable(ServiceError):
    """The database does not answer."""

    code = "SERVICE_UNAVAILABLE"
    default_message = "The service is temporarily unavailable."


class BadRequest(ServiceError):
    """The HTTP request itself is malformed."""

    code = "BAD_REQUEST"
    default_message = "Bad request."


class InternalServerError(ServiceError):
    """Anything unexpected; the details stay in the server log."""

    code = "INTERNAL_SERVER_ERROR"
    default_message = "Internal server error."


# An error an operation answers, with when it does so if the code alone does not say.
Declared = tuple[type[ServiceError], str | None]
_DECLARED: dict[Callable[..., object], tuple[Declared, ...]] = {}


def raises(*errors: type[ServiceError] | Declared) -> Callable[[F], F]:
    """Declare the errors of an operation, on its resolver; each may come with
    when it happens: `@raises(Forbidden, (Unauthenticated, "wrong password"))`.

    Errors any operation may answer (SERVICE_UNAVAILABLE, INTERNAL_SERVER_ERROR,
    and INVALID_API_KEY before any) are not declared.
    """

    def declare(resolver: F) -> F:
        _DECLARED[resolver] = tuple(
            error if isinstance(error, tuple) else (error, None) for error in errors
        )
        return resolver

    return declare


def declared_errors(resolver: Callable[..., object]) -> tuple[Declared, ...] | None:
    """What `@raises` declared for this resolver; None when it declared nothing."""
    return _DECLARED.get(resolver)
