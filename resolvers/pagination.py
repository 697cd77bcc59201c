"""Opaque cursors for paginated lists: base64 of a row's sort key or random id."""

import base64
import binascii
import re
from uuid import UUID

from errors import BadUserInput
from validation import is_clean_text

MAX_PAGE = 100
# Far longer than any cursor we make (their keys are at most an email key).
MAX_CURSOR_LENGTH = 1024
RANDOM_ID = re.compile(r"[0-9a-f]{32}")
NOT_A_CURSOR = "Not a cursor of this list."


def cursor_of(key: str, kind: str) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{key}".encode()).decode()


def key_of(cursor: str | None, kind: str) -> str | None:
    """The sort key a cursor names, or BadUserInput for one we did not make."""
    if cursor is None:
        return None
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise BadUserInput({"after": NOT_A_CURSOR})
    try:
        decoded = base64.urlsafe_b64decode(cursor.encode()).decode()
    except (binascii.Error, UnicodeError, ValueError):
        decoded = ""
    prefix, _, key = decoded.partition(":")
    # A key is compared with stored text, which never holds NUL and the like.
    if prefix != kind or not key or not is_clean_text(key):
        raise BadUserInput({"after": NOT_A_CURSOR})
    return key


def random_id_of(cursor: str | None, kind: str) -> UUID | None:
    """The random id a cursor names, or BadUserInput for one we did not make."""
    key = key_of(cursor, kind)
    if key is None:
        return None
    if not RANDOM_ID.fullmatch(key):
        raise BadUserInput({"after": NOT_A_CURSOR})
    return UUID(hex=key)


def check_page_size(first: int) -> None:
    if not 1 <= first <= MAX_PAGE:
        raise BadUserInput({"first": f"Must be between 1 and {MAX_PAGE}."})
