"""The typed GraphQL context: the caller (tenant, user, session) and the tools
resolvers use. Database work goes through `run`, off the event loop."""

import asyncio
from dataclasses import dataclass
from uuid import UUID

from auth.caller import Caller
from auth.hashing import PasswordHasher
from auth.key_ring import KeyRing
from auth.oidc import OidcClient
from auth.permissions import grants_of
from auth.rate_limits import RateLimits
from auth.tokens import Grants
from mail import Mailer
from models import Action, AuditEvent, Tenant, User
from models.grants import Access, access_of
from models.workers import run
from settings import Settings


@dataclass
class Context:
    caller: Caller
    settings: Settings
    hasher: PasswordHasher
    limits: RateLimits
    mailer: Mailer
    keys: KeyRing
    oidc: OidcClient
    client_ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
    # Set by schema.documents once the document is parsed: for logs and metrics.
    root_fields: str | None = None
    _access: "asyncio.Future[Access] | None" = None

    @property
    def tenant(self) -> Tenant:
        return self.caller.tenant

    @property
    def session_id(self) -> UUID | None:
        return self.caller.session_id

    def require_user(self) -> User:
        """The caller's account, read afresh for this request, or Unauthenticated."""
        return self.caller.require_user()

    async def access(self) -> Access:
        """The caller's roles and groups, read once for this request."""
        if self._access is None:  # fields resolved side by side share one read
            self._access = asyncio.ensure_future(run(access_of, self.require_user()))
        return await self._access

    async def grants(self) -> Grants:
        """The caller's roles and permissions (read afresh for each request)."""
        return grants_of(self.require_user().role, (await self.access()).roles)

    async def holds(self, permission: str) -> bool:
        return permission in (await self.grants()).permissions

    def optional_user(self) -> User | None:
        """The caller's account, or None without a token; a bad token still fails."""
        return self.caller.optional_user()

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
        """Record an event; database work, so only inside `run`."""
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

    async def record(
        self,
        action: Action,
        *,
        actor: User | None = None,
        target: User | None = None,
        detail: str | None = None,
    ) -> None:
        """Record an event in a database call of its own."""
        await run(self.audit, action, actor=actor, target=target, detail=detail)
