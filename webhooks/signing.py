"""Webhook secrets and signatures, per the Standard Webhooks specification.

The `standardwebhooks` package signs, so receivers' copies of it agree with us
to the byte; nothing here frames an HMAC by hand.
"""

import base64
import math
import secrets
from datetime import datetime

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105  # the prefix of every secret, not one
SECRET_BYTES = 32


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def signed_headers(
    secret: str, *, message_id: str, body: str, now: datetime
) -> dict[str, str]:
    """The headers of one attempt: its own timestamp, the event's id."""
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(math.floor(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, now, body),
    }
