"""Peewee tables and the queries that name their intent; no web or GraphQL here."""

from models.audit import Action, AuditEvent
from models.db import database
from models.email_token import EmailToken, Purpose
from models.identity import (
    AlreadyLinked,
    ExternalIdentity,
    IdentityProvider,
    LastWayIn,
    LoginState,
    ProviderExists,
)
from models.mfa import MfaChallenge, RecoveryCode
from models.passkey import Ceremony, DuplicateCredential, Passkey, PasskeyChallenge
from models.session import RefreshToken, Session, live_key_and_user
from models.tenant import ApiKey, RelyingParty, Tenant, TenantExists
from models.user import NO_PASSWORD, DuplicateEmail, LastAdmin, Role, User

__all__ = [
    "NO_PASSWORD",
    "Action",
    "AlreadyLinked",
    "ApiKey",
    "AuditEvent",
    "Ceremony",
    "DuplicateCredential",
    "DuplicateEmail",
    "EmailToken",
    "ExternalIdentity",
    "IdentityProvider",
    "LastAdmin",
    "LastWayIn",
    "LoginState",
    "MfaChallenge",
    "Passkey",
    "PasskeyChallenge",
    "ProviderExists",
    "Purpose",
    "RecoveryCode",
    "RefreshToken",
    "RelyingParty",
    "Role",
    "Session",
    "Tenant",
    "TenantExists",
    "User",
    "database",
    "live_key_and_user",
]
