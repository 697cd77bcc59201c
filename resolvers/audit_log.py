"""auditLog: the tenant's security events, newest first, for its ADMINs."""

from typing import Annotated

import strawberry
from strawberry import Info

from errors import BadUserInput, Forbidden, Unauthenticated, raises
from models import AuditEvent, User
from models.audit import UnknownEvent
from models.workers import run
from resolvers.pagination import NOT_A_CURSOR, check_page_size, cursor_of, random_id_of
from schema.context import Context
from schema.types import AuditEventConnection, AuditEventEdge, AuditEventType, PageInfo
from validation import check_text


@raises(Unauthenticated, Forbidden, BadUserInput)
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
    check_text(action, field="action", max_length=AuditEvent.action.max_length)
    tenant = info.context.tenant
    after_id = random_id_of(after, "audit")  # BadUserInput
    try:
        events = await run(
            AuditEvent.page, tenant, first=first + 1, after=after_id, action=action
        )
    except UnknownEvent:  # another tenant's, or made up
        raise BadUserInput({"after": NOT_A_CURSOR}) from None
    page, more = events[:first], len(events) > first
    users = await run(users_named, tenant.id, page)
    edges = [
        AuditEventEdge(
            cursor=cursor_of(event.public_id.hex, "audit"),
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
