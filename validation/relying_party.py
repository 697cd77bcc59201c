"""A tenant's passkey settings: the RP ID (a domain) and the page origins.

WebAuthn binds every passkey to the RP ID, and browsers allow an RP ID only on
pages of that domain or its subdomains, over HTTPS (plain HTTP on localhost).
"""

import re
from urllib.parse import urlsplit

from errors import BadUserInput

LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
DOMAIN = re.compile(rf"(?=.{{1,253}}$){LABEL}(?:\.{LABEL})*")
DEFAULT_PORTS = {"https": 443, "http": 80}
RP_ID_RULE = "A domain name in lower case, such as example.com (no scheme or port)."
ORIGIN_RULE = (
    "An origin such as https://app.example.com, on the RP ID's domain or a "
    "subdomain of it; http:// only for localhost."
)


def check_relying_party(rp_id: str, origins: list[str]) -> tuple[str, list[str]]:
    """The RP ID and the origins as browsers write them (no default port)."""
    if not DOMAIN.fullmatch(rp_id) or rp_id.replace(".", "").isdigit():
        raise BadUserInput({"webauthnRpId": RP_ID_RULE})
    if not origins:
        raise BadUserInput({"webauthnOrigin": "At least one origin is needed."})
    return rp_id, [origin_of(origin, rp_id) for origin in origins]


def origin_of(text: str, rp_id: str) -> str:
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise BadUserInput({"webauthnOrigin": ORIGIN_RULE}) from None
    host = parts.hostname or ""
    secure = parts.scheme == "https" or (parts.scheme == "http" and host == "localhost")
    on_domain = host == rp_id or host.endswith(f".{rp_id}")
    bare = parts.path in ("", "/") and not (parts.query or parts.fragment)
    if not (secure and on_domain and bare) or parts.username or parts.password:
        raise BadUserInput({"webauthnOrigin": ORIGIN_RULE})
    if port is None or port == DEFAULT_PORTS[parts.scheme]:
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"
