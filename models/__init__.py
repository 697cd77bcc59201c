"""Peewee tables and the queries that name their intent; no web or GraphQL here."""

from models.audit import Action, AuditEvent
from models.db import database
from models.email_token import EmailToken, Purpose
from models.mfa import MfaChallenge, RecoveryCode
from models.passkey import Ceremony, DuplicateCredential, Passkey, PasskeyChallenge
from models.session import RefreshToken, Session, live_key_and_user
from models.tenant import ApiKey, RelyingParty, Tenant, TenantExists
from models.user import DuplicateEmail, LastAdmin, Role, User

__all__ = [
    "Action",
    "ApiKey",
    "AuditEvent",
    "Ceremony",
    "DuplicateCredential",
    "DuplicateEmail",
    "EmailToken",
    "LastAdmin",
    "MfaChallenge",
    "Passkey",
    "PasskeyChallenge",
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
