"""Who is calling: the tenant of the API key, and the user the access token names.

Resolved once per request at the HTTP edge (auth/middleware.py); a bad token is
kept as its error and raised only where a resolver needs a user.
"""

from dataclasses import dataclass
from uuid import UUID

from errors import Unauthenticated
from models import Tenant, User


@dataclass(frozen=True)
class Caller:
    tenant: Tenant
    user: User | None = None
    session_id: UUID | None = None
    # Why the request's token names no one; None when it names a user, or when
    # there is no token at all.
    token_error: Unauthenticated | None = None

    def require_user(self) -> User:
        """The caller's account, read afresh for this request, or Unauthenticated."""
        if self.user is None:
            raise self.token_error or Unauthenticated()
        return self.user

    def optional_user(self) -> User | None:
        """The caller's account, or None without a token; a bad token still fails."""
        if self.token_error is not None:
            raise self.token_error
        return self.user
