"""Opaque tokens (API keys, refresh tokens): 256 random bits, stored as a digest.

With 256 random bits there is nothing to brute-force, so a fast SHA-256 digest
is enough to keep a stolen database from yielding usable tokens.
"""

import hashlib
import secrets

# Longer than any token we issue; refuses junk before hashing it.
MAX_LENGTH = 200


def new_token(prefix: str = "") -> str:
    return prefix + secrets.token_urlsafe(32)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def is_plausible(token: str) -> bool:
    return 0 < len(token) <= MAX_LENGTH
