"""API keys: random, shown once, stored only as a SHA-256 digest.

A key carries 256 random bits, so a fast digest is enough: there is nothing to
brute-force that a slow hash would protect.
"""

import hashlib
import secrets

KEY_PREFIX = "usk_"
SHOWN_PREFIX_LENGTH = 12


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def shown_prefix(key: str) -> str:
    """The start of a key, kept so `key list` can tell keys apart."""
    return key[:SHOWN_PREFIX_LENGTH]
