"""Password hashing: bcrypt over an HMAC-SHA256 pre-hash, so every character counts.

bcrypt reads at most 72 bytes (and bcrypt 5 raises beyond them) and stops at a NUL
byte. Hashing the UTF-8 password first with HMAC-SHA256 and base64-encoding the
digest gives bcrypt 44 NUL-free bytes that depend on every byte of the password.
The HMAC key is a fixed label, not a secret: it only keeps these digests apart
from plain SHA-256 digests of the same passwords found in leaked tables.
"""

import base64
import hashlib
import hmac
import secrets

import bcrypt

PREHASH_KEY = b"user-service/password-prehash/v1"


def _prehash(password: str) -> bytes:
    digest = hmac.new(PREHASH_KEY, password.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest)


def hash_password(password: str, *, cost: int) -> str:
    """Hash for storage: a standard `$2b$<cost>$` bcrypt string."""
    return bcrypt.hashpw(_prehash(password), bcrypt.gensalt(rounds=cost)).decode()


def password_matches(password: str, password_hash: str) -> bool:
    return bcrypt.checkpw(_prehash(password), password_hash.encode())


def dummy_hash(*, cost: int) -> str:
    """A hash no password matches, to check unknown emails against.

    Checking it costs what checking a real hash of the same cost costs, so a
    login for an unknown email takes as long as one with a wrong password.
    """
    return hash_password(secrets.token_urlsafe(32), cost=cost)
