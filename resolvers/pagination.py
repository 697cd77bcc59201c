"""Opaque cursors for paginated lists: base64 of a row's sort key."""

import base64
import binascii

from errors import BadUserInput

MAX_PAGE = 100


def cursor_of(key: int | str, kind: str) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{key}".encode()).decode()


def key_of(cursor: str | None, kind: str) -> str | None:
    """The sort key a cursor names, or BadUserInput for one we did not make."""
    if cursor is None:
        return None
    try:
        decoded = base64.urlsafe_b64decode(cursor.encode()).decode()
    except (binascii.Error, UnicodeError, ValueError):
        decoded = ""
    prefix, _, key = decoded.partition(":")
    if prefix != kind or not key:
        raise BadUserInput({"after": "Not a cursor of this list."})
    return key


def check_page_size(first: int) -> None:
    if not 1 <= first <= MAX_PAGE:
        raise BadUserInput({"first": f"Must be between 1 and {MAX_PAGE}."})
