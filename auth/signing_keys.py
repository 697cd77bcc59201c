"""Asymmetric signing keys for access tokens, and which of them is in use when.

Pure functions over values: keys come in as `StoredKey` records (the database's
rows, private halves still sealed) and "now" is a parameter. The `cryptography`
package makes the keys and PyJWT turns their public halves into JWKs.
"""

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    PrivateKeyTypes,
    PublicKeyTypes,
)
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

ALGORITHMS = ("ES256", "EdDSA", "RS256")
RSA_BITS = 3072  # NIST SP 800-57: 2048 bits protects only until 2030
# RFC 7638: the members of each key type that its thumbprint covers.
THUMBPRINT_MEMBERS = {"EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x")}
THUMBPRINT_MEMBERS["RSA"] = ("e", "kty", "n")


@dataclass(frozen=True)
class StoredKey:
    """A signing key as stored: the public JWK, the private half sealed."""

    kid: str
    algorithm: str
    public_jwk: Mapping[str, str]
    sealed_private_key: str = field(repr=False)
    signs_from: datetime
    retired_at: datetime | None = None


def generate_key(algorithm: str) -> tuple[str, dict[str, str]]:
    """A new key pair: its private half as PEM, its public half as a JWK."""
    private = _new_private_key(algorithm)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return pem, public_jwk(private.public_key(), algorithm)


def public_jwk(public_key: PublicKeyTypes, algorithm: str) -> dict[str, str]:
    """The RFC 7517 JWK of a public key, named by its RFC 7638 thumbprint in hex
    (base64url could start with "-", which a command line takes for an option)."""
    codec = {"ES256": ECAlgorithm, "EdDSA": OKPAlgorithm, "RS256": RSAAlgorithm}
    jwk: dict[str, str] = codec[algorithm].to_jwk(public_key, as_dict=True)  # type: ignore[attr-defined]
    jwk = {name: value for name, value in jwk.items() if name != "key_ops"}
    return {**jwk, "kid": thumbprint(jwk).hex(), "alg": algorithm, "use": "sig"}


def thumbprint(jwk: Mapping[str, str]) -> bytes:
    """RFC 7638: SHA-256 of the key's required members, as compact sorted JSON."""
    members = {name: jwk[name] for name in THUMBPRINT_MEMBERS[jwk["kty"]]}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True)
    return hashlib.sha256(canonical.encode()).digest()


def load_public_key(jwk: Mapping[str, str]) -> PublicKeyTypes:
    codec = {"EC": ECAlgorithm, "OKP": OKPAlgorithm, "RSA": RSAAlgorithm}
    key: PublicKeyTypes = codec[jwk["kty"]].from_jwk(dict(jwk))  # type: ignore[attr-defined]
    return key


def load_private_key(pem: str) -> PrivateKeyTypes:
    return serialization.load_pem_private_key(pem.encode(), password=None)


def _new_private_key(
    algorithm: str,
) -> ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey:
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    raise ValueError(f"unsupported signing algorithm {algorithm!r}")


@dataclass(frozen=True)
class KeySchedule:
    """Which keys sign and which are published at a moment.

    A rotation adds a key that is published at once and signs from its
    `signs_from` (the publish-ahead), so verifiers' caches hold it before its
    first token. The key it replaces stays published until the last token it
    signed has expired; a retired key is neither published nor trusted.
    """

    keys: tuple[StoredKey, ...]  # not retired, oldest `signs_from` first
    token_ttl: timedelta

    @classmethod
    def of(cls, keys: Iterable[StoredKey], *, token_ttl: timedelta) -> "KeySchedule":
        live = sorted(
            (key for key in keys if key.retired_at is None),
            key=lambda key: (key.signs_from, key.kid),
        )
        return cls(keys=tuple(live), token_ttl=token_ttl)

    def signing_key(self, now: datetime) -> StoredKey | None:
        """The newest key whose time has come, else the next one to come."""
        started = [key for key in self.keys if key.signs_from <= now]
        if started:
            return started[-1]
        return self.keys[0] if self.keys else None

    def published(self, now: datetime) -> list[StoredKey]:
        signer = self.signing_key(now)
        return [key for key in self.keys if self.state(key, now, signer) != "expired"]

    def state(
        self, key: StoredKey, now: datetime, signer: StoredKey | None = None
    ) -> str:
        """signing, next, published (replaced, its tokens still live) or expired."""
        signer = signer or self.signing_key(now)
        if key == signer:
            return "signing"
        if signer is None or key.signs_from > signer.signs_from:
            return "next"
        replaced_at = min(
            (
                later.signs_from
                for later in self.keys
                if later.signs_from > key.signs_from
            ),
            default=now,
        )
        # A token signed just before the replacement lives one TTL more.
        if replaced_at + self.token_ttl > now:
            return "published"
        return "expired"

    def jwks(self, now: datetime) -> dict[str, Any]:
        return {"keys": [dict(key.public_jwk) for key in self.published(now)]}
