"""Encryption at rest for secrets the service must read back (TOTP secrets).

Fernet (AES-128-CBC with HMAC-SHA256, from the `cryptography` package) under a
key derived from USER_SERVICE_DATA_KEY; earlier keys still open old values.
"""

import base64
import hashlib
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


def _fernet(key: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest()))


def seal(plain: str, *, key: str) -> str:
    return _fernet(key).encrypt(plain.encode()).decode()


def unseal(sealed: str, *, keys: Sequence[str]) -> str:
    """Decrypt with the current key or an earlier one; ValueError if none fits."""
    try:
        return (
            MultiFernet([_fernet(key) for key in keys])
            .decrypt(sealed.encode())
            .decode()
        )
    except InvalidToken:
        raise ValueError("sealed with an unknown key") from None
