"""Time-based one-time passwords (RFC 6238, via pyotp) and recovery codes.

Pure functions: the secret, the code and "now" are parameters. A code is valid
for its 30-second step and one step either side; the caller remembers the last
step used, so each code works once.
"""

import hmac
import secrets
from datetime import datetime

import pyotp
import segno

STEP_SECONDS = 30
DRIFT_STEPS = 1
RECOVERY_CODES = 10
# 16 base32 characters: 80 random bits, so a plain SHA-256 digest stores them safely.
RECOVERY_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, *, account: str, issuer: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=issuer)


def qr_code_svg(uri: str) -> str:
    return str(segno.make(uri, error="m").svg_inline(scale=4))


def code_at(secret: str, moment: datetime) -> str:
    return str(pyotp.TOTP(secret).at(moment))


def matching_step(secret: str, code: str, *, now: datetime) -> int | None:
    """The time step whose code this is (allowing one step of drift), or None."""
    code = code.strip().replace(" ", "")
    # ASCII digits only: isdigit() also takes "١٢٣٤٥٦" or fullwidth digits, which
    # no app shows and hmac.compare_digest refuses with a TypeError.
    if not (len(code) == 6 and code.isascii() and code.isdigit()):
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def new_recovery_codes() -> list[str]:
    codes = [
        "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(16))
        for _ in range(RECOVERY_CODES)
    ]
    return ["-".join(code[i : i + 4] for i in range(0, 16, 4)) for code in codes]


def normalize_recovery_code(code: str) -> str:
    """Forgive case, spaces and dashes: what users get wrong when typing it."""
    return "".join(char for char in code.upper() if char.isalnum())


def looks_like_recovery_code(code: str) -> bool:
    return len(normalize_recovery_code(code)) == 16
