"""GraphQL output types, built explicitly from rows so no column leaks by accident."""

from datetime import UTC, datetime
from typing import Annotated, Self
from uuid import UUID

import strawberry
from strawberry import Info

from auth.permissions import grants_of
from auth.tokens import Grants
from models import (
    AuditEvent,
    ExternalIdentity,
    IdentityProvider,
    Passkey,
    Role,
    Session,
    User,
)
from models.grants import Access, UserGroup, access_of
from models.workers import run
from resolvers.pagination import check_page_size, cursor_of, key_of
from schema.context import Context
from schema.permissions import self_or_reader
from validation import PasswordPolicy

strawberry.enum(Role, name="Role", description="What an account may do.")


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC)


@strawberry.type(name="Session", description="One login and the refreshes since.")
class SessionType:
    id: strawberry.ID = strawberry.field(description="Stable and opaque.")
    created_at: datetime = strawberry.field(description="When the login happened.")
    last_used_at: datetime = strawberry.field(description="The last login or refresh.")
    user_agent: str | None = strawberry.field(description="The login's User-Agent.")
    ip: str | None = strawberry.field(description="The login's client address.")
    current: bool = strawberry.field(
        description="True for the session of the access token making this request."
    )

    @classmethod
    def from_row(cls, session: Session, *, current: UUID | None) -> Self:
        return cls(
            id=strawberry.ID(str(session.id)),
            created_at=_utc(session.created_at),
            last_used_at=_utc(session.last_used_at),
            user_agent=session.user_agent,
            ip=session.ip,
            current=session.id == current,
        )


@strawberry.type(name="Passkey", description="A WebAuthn credential of the account.")
class PasskeyType:
    id: strawberry.ID = strawberry.field(description="Pass to removePasskey.")
    name: str | None = strawberry.field(description="What the user called it.")
    created_at: datetime = strawberry.field(description="When it was registered.")
    last_used_at: datetime | None = strawberry.field(
        description="Its last login; null before the first."
    )

    @classmethod
    def from_row(cls, passkey: Passkey) -> Self:
        used = passkey.last_used_at
        return cls(
            id=strawberry.ID(str(passkey.id)),
            name=passkey.name,
            created_at=_utc(passkey.created_at),
            last_used_at=_utc(used) if used else None,
        )


@strawberry.type(
    name="PasskeyChallenge",
    description="A WebAuthn ceremony begun: finish it within 5 minutes.",
)
class PasskeyChallengeType:
    challenge_id: str = strawberry.field(
        description="Pass to the finish mutation; single use."
    )
    options: str = strawberry.field(
        description=(
            "The JSON of the publicKey member for navigator.credentials (WebAuthn "
            "Level 3 JSON form): PublicKeyCredential.parseCreationOptionsFromJSON "
            "or parseRequestOptionsFromJSON reads it."
        )
    )


@strawberry.type(
    name="IdentityProvider",
    description="An OpenID Connect provider the tenant's users may sign in with.",
)
class IdentityProviderType:
    id: strawberry.ID = strawberry.field(
        description="Pass as `provider` to startExternalLogin."
    )
    name: str = strawberry.field(description="For the login page's button.")

    @classmethod
    def from_row(cls, provider: IdentityProvider) -> Self:
        return cls(id=strawberry.ID(str(provider.id)), name=provider.name)


@strawberry.type(name="ExternalIdentity", description="A provider's account, linked.")
class ExternalIdentityType:
    provider: IdentityProviderType = strawberry.field(description="Whose account.")
    subject: str = strawberry.field(description="The provider's id for it (sub).")
    email: str | None = strawberry.field(
        description="The email the provider gave when it was linked."
    )
    linked_at: datetime = strawberry.field(description="When it was linked.")

    @classmethod
    def from_row(cls, identity: ExternalIdentity) -> Self:
        return cls(
            provider=IdentityProviderType.from_row(identity.provider),
            subject=identity.subject,
            email=identity.email,
            linked_at=_utc(identity.linked_at),
        )


@strawberry.type(description="Where to send the browser to sign in.")
class ExternalLoginStart:
    authorization_url: str = strawberry.field(
        description=(
            "The provider's sign-in page; it comes back to redirectUri with `code` "
            "and `state` for completeExternalLogin (within 10 minutes)."
        )
    )


@strawberry.type(name="User", description="An account of the caller's tenant.")
class UserType:
    id: strawberry.ID = strawberry.field(description="Stable and opaque.")
    email: str = strawberry.field(description="The address the account signs in with.")
    role: Role = strawberry.field(description="ADMIN or USER.")
    city: str | None = strawberry.field(description="At most 100 characters.")
    organization: str | None = strawberry.field(description="At most 100 characters.")
    designation: str | None = strawberry.field(description="At most 100 characters.")
    mobile: str | None = strawberry.field(
        description="7 to 15 digits with an optional leading +."
    )
    active: bool = strawberry.field(
        description="False once an ADMIN deactivates it: no login, no token works."
    )
    email_verified: bool = strawberry.field(
        description="True once the account followed a verification (or reset) link."
    )
    mfa_enabled: bool = strawberry.field(
        description="True when login needs a TOTP code too (verifyMfa)."
    )
    created_at: datetime = strawberry.field(description="When the account was made.")
    updated_at: datetime = strawberry.field(description="When it last changed.")
    row: strawberry.Private[User]

    @strawberry.field(  # type: ignore[untyped-decorator]  # with extensions=
        description=(
            "Live sessions, newest first. Only the account itself or an ADMIN of "
            "its tenant may read them; others get FORBIDDEN."
        ),
        extensions=self_or_reader(),
    )
    async def sessions(self, info: Info[Context, None]) -> list[SessionType]:
        current = info.context.session_id
        sessions = await run(Session.live_of, UUID(self.id))
        return [SessionType.from_row(session, current=current) for session in sessions]

    @strawberry.field(  # type: ignore[untyped-decorator]  # with extensions=
        description=(
            "Its passkeys, oldest first. Only the account itself or an ADMIN of "
            "its tenant may read them; others get FORBIDDEN."
        ),
        extensions=self_or_reader(),
    )
    async def passkeys(self) -> list[PasskeyType]:
        return [
            PasskeyType.from_row(row)
            for row in await run(Passkey.of_user, UUID(self.id))
        ]

    @strawberry.field(  # type: ignore[untyped-decorator]  # with extensions=
        description=(
            "The identity providers' accounts linked to it. Only the account itself "
            "or a reader of its tenant's users may read them; others get FORBIDDEN."
        ),
        extensions=self_or_reader(),
    )
    async def external_identities(self) -> list[ExternalIdentityType]:
        identities = await run(ExternalIdentity.of_user, UUID(self.id))
        return [ExternalIdentityType.from_row(identity) for identity in identities]

    @classmethod
    def from_row(cls, user: User) -> Self:
        return cls(
            id=strawberry.ID(str(user.id)),
            email=user.email,
            role=Role(user.role),
            city=user.city,
            organization=user.organization,
            designation=user.designation,
            mobile=user.mobile,
            active=user.active,
            email_verified=user.email_verified,
            mfa_enabled=user.mfa_enabled,
            created_at=_utc(user.created_at),
            updated_at=_utc(user.updated_at),
            row=user,
        )

    @strawberry.field(  # type: ignore[untyped-decorator]  # async, with info
        description=(
            "The base role, then every role held directly or through a group. A "
            "frontend hides what the user may not do with these and permissions."
        )
    )
    async def roles(self, info: Info[Context, None]) -> list[str]:
        return list((await self._grants(info)).roles)

    @strawberry.field(  # type: ignore[untyped-decorator]  # async, with info
        description=(
            "Every permission the roles give: the service's own, then the tenant's."
        )
    )
    async def permissions(self, info: Info[Context, None]) -> list[str]:
        return list((await self._grants(info)).permissions)

    @strawberry.field(  # type: ignore[untyped-decorator]  # async, with info
        description="The groups the account is a member of."
    )
    async def groups(self, info: Info[Context, None]) -> list[str]:
        return (await self._access(info)).groups

    async def _access(self, info: Info[Context, None]) -> Access:
        context = info.context
        if context.caller.user is not None and self.row.id == context.caller.user.id:
            return await context.access()  # one query for the caller's fields
        return await run(access_of, self.row)

    async def _grants(self, info: Info[Context, None]) -> Grants:
        return grants_of(self.row.role, (await self._access(info)).roles)


@strawberry.type(
    name="RoleDefinition", description="A named set of permissions of the tenant."
)
class RoleDefinitionType:
    name: str = strawberry.field(description="Unique in the tenant.")
    description: str | None = strawberry.field(description="What the role is for.")
    permissions: list[str] = strawberry.field(description="What it allows.")
    built_in: bool = strawberry.field(
        description="ADMIN and USER: the base roles, which cannot change."
    )


@strawberry.type(description="What a successful login or refresh returns.")
class AuthPayload:
    access_token: str = strawberry.field(
        description="Send as 'Authorization: Bearer <accessToken>'."
    )
    token_type: str = strawberry.field(description='Always "Bearer".')
    expires_in: int = strawberry.field(description="Seconds the access token lives.")
    refresh_token: str = strawberry.field(
        description="Opaque, single use: trade it with refreshSession for a new pair."
    )
    refresh_expires_in: int = strawberry.field(
        description="Seconds the refresh token lives if unused."
    )
    user: UserType = strawberry.field(description="The account that logged in.")


@strawberry.type(name="PasswordPolicy", description="The rules a new password follows.")
class PasswordPolicyType:
    min_length: int = strawberry.field(description="Fewest characters.")
    max_length: int = strawberry.field(
        description="Most characters; all of them count."
    )
    requires_letter: bool = strawberry.field(description="Needs a letter.")
    requires_digit: bool = strawberry.field(description="Needs a digit.")
    requires_special: bool = strawberry.field(
        description="Needs a character that is neither a letter nor a digit."
    )

    @classmethod
    def from_policy(cls, policy: PasswordPolicy) -> Self:
        return cls(
            min_length=policy.min_length,
            max_length=policy.max_length,
            requires_letter=policy.requires_letter,
            requires_digit=policy.requires_digit,
            requires_special=policy.requires_special,
        )


@strawberry.type(description="A new TOTP secret, to be confirmed with confirmTotp.")
class TotpEnrollment:
    secret: str = strawberry.field(description="Base32, for typing into the app.")
    otpauth_uri: str = strawberry.field(
        name="otpauthUri", description="otpauth:// URI; the issuer is the tenant."
    )
    qr_code_svg: str = strawberry.field(description="The URI as a QR code, in SVG.")


@strawberry.type(description="Where a page ends and whether another follows.")
class PageInfo:
    has_next_page: bool = strawberry.field(description="True when more items follow.")
    end_cursor: str | None = strawberry.field(
        description="Pass as `after` for the next page; null on an empty page."
    )


@strawberry.type(name="AuditEvent", description="A security event of the tenant.")
class AuditEventType:
    id: strawberry.ID = strawberry.field(description="Stable and opaque.")
    at: datetime = strawberry.field(description="When it happened.")
    action: str = strawberry.field(description="What happened, e.g. LOGIN_FAILED.")
    actor: UserType | None = strawberry.field(
        description="Who did it, when known and the account still exists."
    )
    target: UserType | None = strawberry.field(
        description="Whom it concerned, when known and the account still exists."
    )
    ip: str | None = strawberry.field(description="The client address.")
    detail: str | None = strawberry.field(
        description="A short note: which fields or roles changed. Never a secret."
    )

    @classmethod
    def from_row(cls, event: AuditEvent, users: dict[str, User]) -> Self:
        actor, target = (
            users.get(event.actor_id or ""),
            users.get(event.target_id or ""),
        )
        return cls(
            id=strawberry.ID(str(event.public_id)),
            at=_utc(event.at),
            action=event.action,
            actor=UserType.from_row(actor) if actor else None,
            target=UserType.from_row(target) if target else None,
            ip=event.ip,
            detail=event.detail,
        )


@strawberry.type(description="One audit event and its cursor.")
class AuditEventEdge:
    cursor: str = strawberry.field(description="Pass as `after` to start after it.")
    node: AuditEventType = strawberry.field(description="The event.")


@strawberry.type(description="A page of audit events, newest first.")
class AuditEventConnection:
    edges: list[AuditEventEdge] = strawberry.field(description="The events.")
    page_info: PageInfo = strawberry.field(description="Where the page ends.")


@strawberry.type(description="One account and its cursor.")
class UserEdge:
    cursor: str = strawberry.field(description="Pass as `after` to start after it.")
    node: UserType = strawberry.field(description="The account.")


@strawberry.type(description="A page of accounts, in email order.")
class UserConnection:
    edges: list[UserEdge] = strawberry.field(description="The accounts.")
    page_info: PageInfo = strawberry.field(description="Where the page ends.")
    total_count: int = strawberry.field(description="How many accounts match in all.")

    @classmethod
    def of_page(cls, rows: list[User], *, first: int, total: int) -> Self:
        """A page of `first` accounts from `rows`, fetched with one more to tell
        whether another page follows."""
        edges = [
            UserEdge(
                cursor=cursor_of(user.email_key, "user"), node=UserType.from_row(user)
            )
            for user in rows[:first]
        ]
        end = edges[-1].cursor if edges else None
        return cls(
            edges=edges,
            page_info=PageInfo(has_next_page=len(rows) > first, end_cursor=end),
            total_count=total,
        )


@strawberry.type(name="Group", description="Users of the tenant that hold roles.")
class GroupType:
    id: strawberry.ID = strawberry.field(description="Stable and opaque.")
    name: str = strawberry.field(description="Unique in the tenant.")
    roles: list[str] = strawberry.field(description="The roles its members hold.")
    row: strawberry.Private[UserGroup]

    @strawberry.field(description="The members, in email order.")  # type: ignore[untyped-decorator]
    async def members(
        self,
        info: Info[Context, None],
        first: Annotated[
            int | None, strawberry.argument(description="1 to 100 (null: 20).")
        ] = 20,
        after: Annotated[
            str | None, strawberry.argument(description="endCursor of the last page.")
        ] = None,
    ) -> UserConnection:
        first = 20 if first is None else first
        check_page_size(first)
        rows, total = await run(
            self.row.members_page, first=first + 1, after=key_of(after, "user")
        )
        return UserConnection.of_page(rows, first=first, total=total)

    @classmethod
    def from_row(cls, group: UserGroup, *, roles: list[str]) -> Self:
        return cls(
            id=strawberry.ID(str(group.id)), name=group.name, roles=roles, row=group
        )
