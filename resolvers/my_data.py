"""myData: everything stored about the caller, as JSON.

Built field by field from the rows, never from a whole row: no password hash,
TOTP secret, token or digest can slip in when a column is added.
"""

import json
from datetime import datetime
from typing import Any

from strawberry import Info

from errors import Unauthenticated, raises
from models import (
    AuditEvent,
    EmailToken,
    ExternalIdentity,
    Passkey,
    RecoveryCode,
    Session,
    User,
)
from models.workers import run
from schema.context import Context


@raises(Unauthenticated)
async def my_data(info: Info[Context, None]) -> str:
    context = info.context
    user = context.require_user()
    grants = await context.grants()
    access = await context.access()
    data = await run(stored_about, user)
    data["access"] = {
        "roles": list(grants.roles),
        "permissions": list(grants.permissions),
        "groups": access.groups,
    }
    return json.dumps(data, indent=2)


def stored_about(user: User) -> dict[str, Any]:
    events = [
        event_of(event, user)
        for event in AuditEvent.of_account(user.tenant_id, user.id)
    ]
    return {
        "profile": profile_of(user),
        "sessions": [session_of(session) for session in Session.all_of(user)],
        "factors": {
            "password": user.has_password,
            "totp": {
                "enabled": user.mfa_enabled,
                "enabledAt": totp_since(user, events),
            },
            "recoveryCodesLeft": RecoveryCode.unused_count(user),
            "passkeys": [passkey_of(passkey) for passkey in Passkey.of_user(user.id)],
        },
        "externalIdentities": [
            identity_of(identity) for identity in ExternalIdentity.of_user(user)
        ],
        "pendingLinks": [link_of(link) for link in EmailToken.pending_of(user)],
        "auditEvents": events,
    }


def totp_since(user: User, events: list[dict[str, Any]]) -> str | None:
    """When two-factor was last turned on, from the account's events."""
    enabled = [event["at"] for event in events if event["action"] == "MFA_ENABLED"]
    return enabled[-1] if user.mfa_enabled and enabled else None


def profile_of(user: User) -> dict[str, Any]:
    return {
        "id": str(user.id),
        "email": user.email,
        "emailVerified": user.email_verified,
        "role": user.role,
        "city": user.city,
        "organization": user.organization,
        "designation": user.designation,
        "mobile": user.mobile,
        "active": user.active,
        "createdAt": stamp(user.created_at),
        "updatedAt": stamp(user.updated_at),
    }


def session_of(session: Session) -> dict[str, Any]:
    return {
        "id": str(session.id),
        "createdAt": stamp(session.created_at),
        "lastUsedAt": stamp(session.last_used_at),
        "expiresAt": stamp(session.expires_at),
        "endedAt": stamp(session.revoked_at),
        "userAgent": session.user_agent,
        "ip": session.ip,
    }


def passkey_of(passkey: Passkey) -> dict[str, Any]:
    """Its name and dates: never the credential id or key."""
    return {
        "id": str(passkey.id),
        "name": passkey.name,
        "createdAt": stamp(passkey.created_at),
        "lastUsedAt": stamp(passkey.last_used_at),
    }


def identity_of(identity: ExternalIdentity) -> dict[str, Any]:
    return {
        "provider": identity.provider.name,
        "subject": identity.subject,
        "email": identity.email,
        "linkedAt": stamp(identity.linked_at),
    }


def link_of(link: EmailToken) -> dict[str, Any]:
    return {
        "purpose": link.purpose,
        "newEmail": link.new_email,
        "expiresAt": stamp(link.expires_at),
    }


def event_of(event: AuditEvent, user: User) -> dict[str, Any]:
    by_self = event.actor_id in (None, str(user.id))
    return {
        "id": str(event.public_id),
        "at": stamp(event.at),
        "action": event.action,
        "actorId": event.actor_id,
        "targetId": event.target_id,
        # Another account's request: its address and browser are not the caller's.
        "ip": event.ip if by_self else None,
        "userAgent": event.user_agent if by_self else None,
        "detail": event.detail,
    }


def stamp(moment: datetime | None) -> str | None:
    return f"{moment.isoformat()}Z" if moment else None
