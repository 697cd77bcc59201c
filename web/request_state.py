"""What one request learns on its way through the app, in one typed object: who
calls, what it asked and how it ended, for the log, metrics and errors."""

import uuid
from dataclasses import dataclass

from starlette.types import Scope

from auth.caller import Caller

KEY = "user_service"


@dataclass
class RequestState:
    request_id: str
    caller: Caller | None = None  # set by the API-key check
    operation: str | None = None  # its root fields, once parsed
    operation_name: str | None = None  # as the client named it
    outcome: str | None = None  # the first error's code


def state_of(scope: Scope) -> RequestState:
    """The request's state; the request log makes it first, or else this does."""
    states = scope.setdefault("state", {})
    state = states.get(KEY)
    if state is None:
        state = states[KEY] = RequestState(request_id=uuid.uuid4().hex)
    return state  # type: ignore[no-any-return]
