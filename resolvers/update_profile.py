"""updateProfile: a USER edits their own profile; an ADMIN any of the tenant."""

from typing import Annotated, Any
from uuid import UUID

import strawberry
from strawberry import UNSET, Info

from auth.permissions import SERVICE_PERMISSIONS, missing_service_permissions
from errors import BadUserInput, Forbidden, NotFound, Unauthenticated, raises
from models import Action, LastAdmin, Role, User
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
    if changes.get("role") == Role.ADMIN:
        await ensure_may_give_admin(context)  # Forbidden
    may_edit_others = await context.holds("users:write")
    updated = await run(edit, context, actor, input.email, changes, may_edit_others)
    return UserType.from_row(updated)


async def ensure_may_give_admin(context: Context) -> None:
    """ADMIN holds every service permission: only who holds them all gives it."""
    held = (await context.grants()).permissions
    if missing_service_permissions(SERVICE_PERMISSIONS, held=held):
        await context.record(
            Action.ACCESS_DENIED, actor=context.require_user(), detail="give ADMIN"
        )
        raise Forbidden("Only an account holding every permission may make an ADMIN.")


def edit(
    context: Context,
    actor: User,
    email: str,
    changes: dict[str, Any],
    may_edit_others: bool,
) -> User:
    target = find_editable(context, actor, email, may_edit_others)
    try:
        updated = target.apply_changes(changes)
    except LastAdmin:
        context.audit(
            Action.ACCESS_DENIED, actor=actor, target=target, detail="last admin"
        )
        raise Forbidden(
            "A tenant must keep an active account holding roles:manage."
        ) from None
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


def find_editable(
    context: Context, actor: User, email: str, may_edit_others: bool
) -> User:
    """The account to edit. Without users:write one may name only oneself,
    existing or not, so other accounts' existence is not revealed."""
    try:
        names_actor = actor.is_named_by(normalize_email(email))
    except BadUserInput:
        names_actor = False
    if not may_edit_others and not names_actor:
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
