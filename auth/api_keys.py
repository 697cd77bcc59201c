"""API keys: opaque tokens with a recognisable prefix, shown once."""

from auth.opaque import new_token

KEY_PREFIX = "usk_"
SHOWN_PREFIX_LENGTH = 12


def new_api_key() -> str:
    return new_token(KEY_PREFIX)


def shown_prefix(key: str) -> str:
    """The start of a key, kept so `key list` can tell keys apart."""
    return key[:SHOWN_PREFIX_LENGTH]
