"""Peewee tables and the queries that name their intent; no web or GraphQL here."""

from models.db import database
from models.tenant import ApiKey, Tenant, TenantExists
from models.user import DuplicateEmail, LastAdmin, Role, User

__all__ = [
    "ApiKey",
    "DuplicateEmail",
    "LastAdmin",
    "Role",
    "Tenant",
    "TenantExists",
    "User",
    "database",
]
