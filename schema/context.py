"""The typed GraphQL context: the caller's tenant, and the user its token names."""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID

from auth.hashing import PasswordHasher
from auth.rate_limits import RateLimits
from auth.tokens import bearer_token, read_access_token
from errors import Unauthenticated
from mail import Mailer
from models import Action, AuditEvent, Tenant, User, user_of_live_session
from models.session import EarlyRead
from settings import Settings


@dataclass
class Context:
    tenant: Tenant
    settings: Settings
    hasher: PasswordHasher
    limits: RateLimits
    mailer: Mailer
    # Every Authorization header of the request: more than one is refused.
    authorization: list[str] = field(default_factory=list)
    # The user and session the token names, read with the API key (one query).
    early_read: EarlyRead | None = None
    client_ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
    # Set by schema.root_fields once the document is parsed: for logs and metrics.
    root_fields: str | None = None
    _user: User | None = field(default=None, repr=False)
    session_id: UUID | None = None

    @property
    def has_token(self) -> bool:
        return bool(self.authorization)

    def require_user(self) -> User:
        """The caller's account, read afresh for this request, or Unauthenticated."""
        if self._user is None:
            claims = read_access_token(
                bearer_token(self.authorization),
                tenant_id=self.tenant.id,
                secrets=self._accepted_secrets(),
                now=datetime.now(UTC),
            )
            # Read afresh on every request, with its session: a role change, a
            # logout or a revoked session applies to tokens already issued.
            early = self.early_read
            if early and early.names == (claims.user_id, claims.session_id):
                user = early.user
            else:
                user = user_of_live_session(
                    self.tenant, claims.user_id, claims.session_id
                )
            if user is None:
                raise Unauthenticated("Invalid access token.")
            self._user, self.session_id = user, claims.session_id
        return self._user

    def optional_user(self) -> User | None:
        """The caller's account, or None without a token; a bad token still fails."""
        return self.require_user() if self.has_token else None

    @property
    def address(self) -> str:
        """The client address that per-address limits count against."""
        return self.client_ip or "unknown"

    def audit(
        self,
        action: Action,
        *,
        actor: User | None = None,
        target: User | None = None,
        detail: str | None = None,
    ) -> None:
        AuditEvent.record(
            self.tenant,
            action,
            actor=actor,
            target=target,
            ip=self.client_ip,
            user_agent=self.user_agent,
            request_id=self.request_id,
            detail=detail,
        )

    def _accepted_secrets(self) -> list[str]:
        secrets = [self.settings.jwt_secret, *self.settings.jwt_previous_secrets]
        return [str(secret) for secret in secrets]
