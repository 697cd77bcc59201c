"""updateProfile: a USER edits their own profile; an ADMIN any of the tenant."""

from typing import Annotated, Any
from uuid import UUID

import strawberry
from strawberry import UNSET, Info

from errors import BadUserInput, Forbidden, NotFound, Unauthenticated, raises
from models import Action, LastAdmin, User
from models.user import PROFILE_FIELDS
from models.workers import run
from schema.context import Context
from schema.inputs import UpdateProfileInput
from schema.types import UserType
from validation import clean_profile, normalize_email


@raises(Unauthenticated, Forbidden, NotFound, BadUserInput)
async def update_profile(
    info: Info[Context, None],
    input: Annotated[
        UpdateProfileInput, strawberry.argument(description="Whose profile and what.")
    ],
) -> UserType:
    context = info.context
    actor = context.require_user()
    changes = profile_changes(input)  # BadUserInput
    updated = await run(edit, context, actor, input.email, changes)
    return UserType.from_row(updated)


def edit(context: Context, actor: User, email: str, changes: dict[str, Any]) -> User:
    target = find_editable(context, actor, email)  # Forbidden, NotFound
    try:
        updated = target.apply_changes(changes)
    except LastAdmin:
        context.audit(
            Action.ACCESS_DENIED, actor=actor, target=target, detail="last admin"
        )
        raise Forbidden("A tenant must keep at least one ADMIN.") from None
    audit_changes(context, actor, before=target, after=updated)
    return updated


def audit_changes(context: Context, actor: User, *, before: User, after: User) -> None:
    if before.role != after.role:
        detail = f"{before.role} -> {after.role}"
        context.audit(Action.ROLE_CHANGED, actor=actor, target=after, detail=detail)
    changed = [
        name for name in PROFILE_FIELDS if getattr(before, name) != getattr(after, name)
    ]
    if changed:
        detail = ", ".join(changed)  # which fields, never their values
        context.audit(Action.PROFILE_CHANGED, actor=actor, target=after, detail=detail)


def find_editable(context: Context, actor: User, email: str) -> User:
    """The account to edit. A USER may name only themselves, existing or not,
    so other accounts' existence is not revealed to them."""
    try:
        names_actor = actor.is_named_by(normalize_email(email))
    except BadUserInput:
        names_actor = False
    if not actor.is_admin and not names_actor:
        context.audit(
            Action.ACCESS_DENIED, actor=actor, detail="updateProfile of another"
        )
        raise Forbidden("You may edit only your own profile.")
    if names_actor:
        return actor  # read afresh for this request already
    return find_in_tenant(actor.tenant_id, email)


def find_in_tenant(tenant_id: UUID, email: str) -> User:
    """The account with this email in the tenant, or NotFound."""
    try:
        target = User.by_email(tenant_id, normalize_email(email))
    except BadUserInput:
        target = None
    if target is None:
        raise NotFound("No account with this email in your tenant.")
    return target


def profile_changes(input: UpdateProfileInput) -> dict[str, Any]:
    """The fields the input sets; a left-out field is not a change."""
    given = {
        name: getattr(input, name)
        for name in PROFILE_FIELDS
        if getattr(input, name) is not UNSET
    }
    changes: dict[str, Any] = clean_profile(given)
    if input.role is None:
        raise BadUserInput({"role": "Role cannot be null."})
    if input.role is not UNSET:
        changes["role"] = input.role.value
    return changes
