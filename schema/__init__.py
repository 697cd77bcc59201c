"""The GraphQL schema: Query and Mutation, and `build_schema(settings)`."""

from collections.abc import Callable, Sequence

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from resolvers.audit_log import audit_log
from resolvers.change_password import change_password
from resolvers.delete_account import delete_account, delete_user
from resolvers.email_change import confirm_email_change, request_email_change
from resolvers.external_login import (
    complete_external_login,
    identity_providers,
    start_external_link,
    start_external_login,
    unlink_external_identity,
)
from resolvers.identity_providers import (
    add_identity_provider,
    remove_identity_provider,
)
from resolvers.login import login
from resolvers.me import me, password_policy
from resolvers.mfa import confirm_totp, disable_totp, enroll_totp, reset_mfa, verify_mfa
from resolvers.my_data import my_data
from resolvers.passkeys import (
    finish_passkey_login,
    finish_passkey_registration,
    remove_passkey,
    start_passkey_login,
    start_passkey_registration,
)
from resolvers.recovery import (
    request_email_verification,
    request_password_reset,
    reset_password,
    verify_email,
)
from resolvers.roles import (
    add_to_group,
    define_group,
    define_role,
    delete_group,
    delete_role,
    grant_role,
    groups,
    permissions,
    remove_from_group,
    revoke_role,
    roles,
)
from resolvers.sessions import logout, logout_all, refresh_session, revoke_sessions
from resolvers.sign_up import sign_up
from resolvers.update_profile import update_profile
from resolvers.users import set_user_active, unlock_account, users
from schema.document_limits import document_rules
from schema.documents import Documents
from schema.error_codes import described
from schema.permissions import (
    authenticated,
    guards_input_permissions,
    requires_permission,
)
from schema.types import (
    AuditEventConnection,
    AuthPayload,
    ExternalLoginStart,
    GroupType,
    IdentityProviderType,
    PasskeyChallengeType,
    PasskeyType,
    PasswordPolicyType,
    RoleDefinitionType,
    TotpEnrollment,
    UserConnection,
    UserType,
)
from settings import Settings

__all__ = ["Mutation", "Query", "build_schema"]


@strawberry.type(description="Reads. Every operation needs the X-API-Key header.")
class Query:
    me: UserType = strawberry.field(
        resolver=me,
        description=described(me, "The caller's own account."),
        extensions=authenticated(),
    )
    audit_log: AuditEventConnection = strawberry.field(
        resolver=audit_log,
        description=described(
            audit_log,
            "The tenant's security events (sign-ups, logins, lock-outs, role "
            "and profile changes, session revocations, refusals), newest first.",
        ),
        extensions=requires_permission("audit:read"),
    )
    users: UserConnection = strawberry.field(
        resolver=users,
        description=described(
            users,
            "The tenant's accounts in email order, filtered by email, role or "
            "active state.",
        ),
        extensions=requires_permission("users:read"),
    )
    permissions: list[str] = strawberry.field(
        resolver=permissions,
        description=described(
            permissions, "Every permission the service itself checks."
        ),
        extensions=requires_permission("users:read"),
    )
    roles: list[RoleDefinitionType] = strawberry.field(
        resolver=roles,
        description=described(
            roles, "The tenant's roles, the built-in ADMIN and USER first."
        ),
        extensions=requires_permission("users:read"),
    )
    groups: list[GroupType] = strawberry.field(
        resolver=groups,
        description=described(groups, "The tenant's groups, by name."),
        extensions=requires_permission("users:read"),
    )
    my_data: str = strawberry.field(
        resolver=my_data,
        description=described(
            my_data,
            "Everything stored about the caller, as JSON: profile, sessions, factors, "
            "roles and groups, pending links and audit events. Never a hash, secret "
            "or token.",
        ),
        extensions=authenticated(),
    )
    identity_providers: list[IdentityProviderType] = strawberry.field(
        resolver=identity_providers,
        description=described(
            identity_providers,
            "The tenant's OpenID Connect providers, for the login page's buttons. "
            "Needs only the API key.",
        ),
    )
    password_policy: PasswordPolicyType = strawberry.field(
        resolver=password_policy,
        description=described(
            password_policy,
            "The password rules, for sign-up forms. Needs only the API key.",
        ),
    )


@strawberry.type(description="Changes. Every operation needs the X-API-Key header.")
class Mutation:
    sign_up: UserType = strawberry.field(
        resolver=sign_up,
        description=described(
            sign_up,
            "Create an account in the caller's tenant. A role needs the access token "
            "of an account holding roles:manage.",
        ),
        extensions=guards_input_permissions(),
    )
    login: AuthPayload = strawberry.field(
        resolver=login,
        description=described(
            login, "Exchange email and password for an access token."
        ),
    )
    update_profile: UserType = strawberry.field(
        resolver=update_profile,
        description=described(
            update_profile,
            "Change a profile: anyone their own; another account of the tenant needs "
            "users:write, and a role needs roles:manage.",
        ),
        extensions=[*authenticated(), *guards_input_permissions()],
    )
    refresh_session: AuthPayload = strawberry.field(
        resolver=refresh_session,
        description=described(
            refresh_session,
            "Trade a refresh token for a new pair; the old one is retired. A retired "
            "token used again ends its whole session (after a few seconds' grace, for "
            "tabs refreshing at once).",
        ),
    )
    logout: bool = strawberry.field(
        resolver=logout,
        description=described(
            logout, "End the session of this refresh token, and its access tokens."
        ),
    )
    logout_all: bool = strawberry.field(
        resolver=logout_all,
        description=described(logout_all, "End every session of the caller."),
        extensions=authenticated(),
    )
    change_password: bool = strawberry.field(
        resolver=change_password,
        description=described(
            change_password,
            "Set a new password; every other session of the caller ends.",
        ),
        extensions=authenticated(),
    )
    request_password_reset: bool = strawberry.field(
        resolver=request_password_reset,
        description=described(
            request_password_reset,
            "Mail a password-reset link (valid 1 hour) to the account with this email,"
            " if there is one. Always true: it reveals nothing.",
        ),
    )
    reset_password: bool = strawberry.field(
        resolver=reset_password,
        description=described(
            reset_password,
            "Set a new password with the token of a reset link (single use); every "
            "session of the account ends.",
        ),
    )
    request_email_verification: bool = strawberry.field(
        resolver=request_email_verification,
        description=described(
            request_email_verification,
            "Mail the caller a verification link (valid 24 hours); signUp sends one "
            "too.",
        ),
        extensions=authenticated(),
    )
    verify_email: UserType = strawberry.field(
        resolver=verify_email,
        description=described(
            verify_email,
            "Confirm an email with the token of a verification link (single use).",
        ),
    )
    request_email_change: bool = strawberry.field(
        resolver=request_email_change,
        description=described(
            request_email_change,
            "Ask to move the caller's account to a new email: mails a link (valid 24 "
            "hours, single use) to the new address and a notice to the old one.",
        ),
        extensions=authenticated(),
    )
    confirm_email_change: UserType = strawberry.field(
        resolver=confirm_email_change,
        description=described(
            confirm_email_change,
            "Take the new email with the token of its link; the address is then "
            "verified and every session of the account ends. Needs only the API key.",
        ),
    )
    delete_account: bool = strawberry.field(
        resolver=delete_account,
        description=described(
            delete_account,
            "Delete the caller's own account and everything tied to it; audit events "
            "keep only its id.",
        ),
        extensions=authenticated(),
    )
    delete_user: bool = strawberry.field(
        resolver=delete_user,
        description=described(
            delete_user,
            "Delete an account of the tenant and everything tied to it; the last "
            "holder of roles:manage cannot be deleted.",
        ),
        extensions=requires_permission("users:write"),
    )
    start_external_login: ExternalLoginStart = strawberry.field(
        resolver=start_external_login,
        description=described(
            start_external_login,
            "Begin a sign-in through the tenant's identity provider: send the "
            "browser to authorizationUrl (authorization code flow with PKCE).",
        ),
    )
    start_external_link: ExternalLoginStart = strawberry.field(
        resolver=start_external_link,
        description=described(
            start_external_link,
            "Like startExternalLogin, to link the provider's account to the "
            "caller's; finish with completeExternalLogin and the same access token.",
        ),
        extensions=authenticated(),
    )
    complete_external_login: AuthPayload = strawberry.field(
        resolver=complete_external_login,
        description=described(
            complete_external_login,
            "Finish a sign-in (or link) with the code and state the provider sent "
            "back. The state works once, for 10 minutes. An account with the same "
            "email is linked only when both sides have it verified.",
        ),
    )
    unlink_external_identity: UserType = strawberry.field(
        resolver=unlink_external_identity,
        description=described(
            unlink_external_identity,
            "Unlink the caller's identity of this provider. An account without a "
            "password keeps its last one until it sets a password.",
        ),
        extensions=authenticated(),
    )
    add_identity_provider: IdentityProviderType = strawberry.field(
        resolver=add_identity_provider,
        description=described(
            add_identity_provider,
            "Register an OpenID Connect provider for the tenant's sign-in; its "
            "client secret is sealed at rest and never shown again.",
        ),
        extensions=requires_permission("identity-providers:manage"),
    )
    remove_identity_provider: bool = strawberry.field(
        resolver=remove_identity_provider,
        description=described(
            remove_identity_provider,
            "Remove a provider of the tenant; the identities linked through it go "
            "too (accounts without a password then sign in after a password reset).",
        ),
        extensions=requires_permission("identity-providers:manage"),
    )
    enroll_totp: TotpEnrollment = strawberry.field(
        resolver=enroll_totp,
        description=described(
            enroll_totp,
            "Start two-factor authentication: a new secret for an authenticator app. "
            "Nothing changes until confirmTotp.",
        ),
        extensions=authenticated(),
    )
    confirm_totp: list[str] = strawberry.field(
        resolver=confirm_totp,
        description=described(
            confirm_totp,
            "Turn two-factor on with a code from the app; returns 10 one-time recovery"
            " codes, shown only now.",
        ),
        extensions=authenticated(),
    )
    verify_mfa: AuthPayload = strawberry.field(
        resolver=verify_mfa,
        description=described(
            verify_mfa,
            "Finish a login that answered MFA_REQUIRED: its mfaToken (5 minutes, "
            "single use) and a TOTP or recovery code.",
        ),
    )
    disable_totp: bool = strawberry.field(
        resolver=disable_totp,
        description=described(
            disable_totp,
            "Turn two-factor off with the password and a current code; the other "
            "sessions end.",
        ),
        extensions=authenticated(),
    )
    reset_mfa: bool = strawberry.field(
        resolver=reset_mfa,
        description=described(
            reset_mfa,
            "Turn two-factor off for an account of the tenant (a lost phone); "
            "its sessions end.",
        ),
        extensions=requires_permission("mfa:reset"),
    )
    start_passkey_registration: PasskeyChallengeType = strawberry.field(
        resolver=start_passkey_registration,
        description=described(
            start_passkey_registration,
            "Begin adding a passkey to the caller's account: options for "
            "navigator.credentials.create().",
        ),
        extensions=authenticated(),
    )
    finish_passkey_registration: PasskeyType = strawberry.field(
        resolver=finish_passkey_registration,
        description=described(
            finish_passkey_registration,
            "Store the passkey the browser created, once it verifies.",
        ),
        extensions=authenticated(),
    )
    start_passkey_login: PasskeyChallengeType = strawberry.field(
        resolver=start_passkey_login,
        description=described(
            start_passkey_login,
            "Begin a passkey login, for one account (email) or any (discoverable): "
            "options for navigator.credentials.get(). Needs only the API key.",
        ),
    )
    finish_passkey_login: AuthPayload = strawberry.field(
        resolver=finish_passkey_login,
        description=described(
            finish_passkey_login,
            "Log in with the browser's assertion: a whole login, two-factor "
            "included (no MFA_REQUIRED). Failures count like failed logins.",
        ),
    )
    remove_passkey: bool = strawberry.field(
        resolver=remove_passkey,
        description=described(remove_passkey, "Delete one of the caller's passkeys."),
        extensions=authenticated(),
    )
    set_user_active: UserType = strawberry.field(
        resolver=set_user_active,
        description=described(
            set_user_active,
            "Deactivate (or reactivate) an account of the tenant. A deactivated"
            " account cannot log in and its tokens stop at once; the last active holder"
            " of roles:manage cannot be deactivated.",
        ),
        extensions=requires_permission("users:deactivate"),
    )
    unlock_account: UserType = strawberry.field(
        resolver=unlock_account,
        description=described(
            unlock_account,
            "Lift the lock-out that failed logins put on an account of the "
            "tenant (anyone can lock an account by guessing).",
        ),
        extensions=requires_permission("users:write"),
    )
    revoke_sessions: bool = strawberry.field(
        resolver=revoke_sessions,
        description=described(
            revoke_sessions, "End every session of an account of the tenant."
        ),
        extensions=requires_permission("sessions:revoke"),
    )
    define_role: RoleDefinitionType = strawberry.field(
        resolver=define_role,
        description=described(
            define_role,
            "Create a role, or replace its permissions and description. A service "
            "permission in it must be one the caller holds.",
        ),
        extensions=requires_permission("roles:manage"),
    )
    delete_role: bool = strawberry.field(
        resolver=delete_role,
        description=described(
            delete_role, "Delete a role: its grants and group memberships go too."
        ),
        extensions=requires_permission("roles:manage"),
    )
    grant_role: UserType = strawberry.field(
        resolver=grant_role,
        description=described(
            grant_role,
            "Give an account a role (ADMIN and USER are base roles: updateProfile).",
        ),
        extensions=requires_permission("roles:manage"),
    )
    revoke_role: UserType = strawberry.field(
        resolver=revoke_role,
        description=described(
            revoke_role,
            "Take a role granted directly back; its next request has it no more.",
        ),
        extensions=requires_permission("roles:manage"),
    )
    define_group: GroupType = strawberry.field(
        resolver=define_group,
        description=described(
            define_group, "Create a group, or replace its roles; members stay."
        ),
        extensions=requires_permission("roles:manage"),
    )
    delete_group: bool = strawberry.field(
        resolver=delete_group,
        description=described(delete_group, "Delete a group and its memberships."),
        extensions=requires_permission("roles:manage"),
    )
    add_to_group: GroupType = strawberry.field(
        resolver=add_to_group,
        description=described(add_to_group, "Make an account a member of a group."),
        extensions=requires_permission("roles:manage"),
    )
    remove_from_group: GroupType = strawberry.field(
        resolver=remove_from_group,
        description=described(remove_from_group, "Take an account out of a group."),
        extensions=requires_permission("roles:manage"),
    )


class UserServiceSchema(strawberry.Schema):
    def process_errors(
        self,
        errors: list[GraphQLError],
        execution_context: ExecutionContext | None = None,
    ) -> None:
        """Log nothing here: schema.error_codes logs the unexpected errors, once,
        without the query text or its variables."""


def build_schema(
    settings: Settings, extensions: Sequence[Callable[[], SchemaExtension]] = ()
) -> strawberry.Schema:
    """The schema; `extensions` come after the one that parses and validates."""
    documents = Documents(
        rules=document_rules(
            max_depth=settings.max_depth,
            max_aliases=settings.max_aliases,
            max_directives=settings.max_directives,
        ),
        max_tokens=settings.max_tokens,
        introspection=settings.introspection,
    )
    return UserServiceSchema(
        query=Query,
        mutation=Mutation,
        extensions=[documents.extension, *extensions],
        config=StrawberryConfig(
            disable_field_suggestions=not settings.field_suggestions
        ),
    )
