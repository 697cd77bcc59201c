"""auditLog: the tenant's security events, newest first, for its ADMINs."""

from typing import Annotated

import strawberry
from strawberry import Info

from errors import BadUserInput
from models import AuditEvent, User
from resolvers.pagination import check_page_size, cursor_of, key_of
from schema.context import Context
from schema.types import AuditEventConnection, AuditEventEdge, AuditEventType, PageInfo


async def audit_log(
    info: Info[Context, None],
    first: Annotated[int, strawberry.argument(description="Page size, 1 to 100.")] = 50,
    after: Annotated[
        str | None, strawberry.argument(description="endCursor of the previous page.")
    ] = None,
    action: Annotated[
        str | None,
        strawberry.argument(description="Only this action, e.g. LOGIN_FAILED."),
    ] = None,
) -> AuditEventConnection:
    check_page_size(first)
    tenant = info.context.tenant
    after_id = key_of(after, "audit")
    if after_id is not None and not after_id.isdigit():
        raise BadUserInput({"after": "Not a cursor of this list."})
    events = AuditEvent.page(
        tenant,
        first=first + 1,
        after=int(after_id) if after_id else None,
        action=action,
    )
    page, more = events[:first], len(events) > first
    users = users_named(tenant.id, page)
    edges = [
        AuditEventEdge(
            cursor=cursor_of(event.id, "audit"),
            node=AuditEventType.from_row(event, users),
        )
        for event in page
    ]
    end = edges[-1].cursor if edges else None
    return AuditEventConnection(
        edges=edges, page_info=PageInfo(has_next_page=more, end_cursor=end)
    )


def users_named(tenant_id: object, events: list[AuditEvent]) -> dict[str, User]:
    """The accounts the events name, in one query."""
    ids = {event.actor_id for event in events} | {event.target_id for event in events}
    ids.discard(None)
    query = User.select().where((User.tenant == tenant_id) & (User.id.in_(list(ids))))
    return {str(user.id): user for user in query} if ids else {}
