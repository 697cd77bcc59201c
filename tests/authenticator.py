"""A software WebAuthn authenticator for the API tests: an EC P-256 key, "none"
attestation, and answers in the browser's toJSON() form.

Each answer can be bent the way an attacker would: another origin or RP ID, no
user verification, a chosen sign counter, another challenge.
"""

import hashlib
import json
import os
from base64 import urlsafe_b64decode, urlsafe_b64encode
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

ORIGIN = "https://app.example.com"
RP_ID = "example.com"
USER_PRESENT, USER_VERIFIED, ATTESTED = 0x01, 0x04, 0x40


def b64(data: bytes) -> str:
    return urlsafe_b64encode(data).rstrip(b"=").decode()


class Authenticator:
    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(16)
        self.sign_count = 0
        self.user_handle = b""

    @property
    def id(self) -> str:
        return b64(self.credential_id)

    def create(
        self,
        options: str,
        *,
        origin: str = ORIGIN,
        rp_id: str | None = None,
        verified: bool = True,
    ) -> str:
        """navigator.credentials.create() with these options, as JSON."""
        wanted = json.loads(options)
        self.user_handle = b64_decoded(wanted["user"]["id"])
        client_data = client_data_json("webauthn.create", wanted["challenge"], origin)
        flags = USER_PRESENT | ATTESTED | (USER_VERIFIED if verified else 0)
        data = self.authenticator_data(rp_id or wanted["rp"]["id"], flags, 0)
        data += bytes(16)  # AAGUID: none
        data += len(self.credential_id).to_bytes(2, "big") + self.credential_id
        data += self.cose_key()
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": data})
        response = {
            "clientDataJSON": b64(client_data),
            "attestationObject": b64(attestation),
            "transports": ["internal"],
        }
        return self.credential(response)

    def get(
        self,
        options: str,
        *,
        origin: str = ORIGIN,
        rp_id: str | None = None,
        verified: bool = True,
        sign_count: int | None = None,
        challenge: str | None = None,
    ) -> str:
        """navigator.credentials.get() with these options, as JSON."""
        wanted = json.loads(options)
        self.sign_count = self.sign_count + 1 if sign_count is None else sign_count
        client_data = client_data_json(
            "webauthn.get", challenge or wanted["challenge"], origin
        )
        flags = USER_PRESENT | (USER_VERIFIED if verified else 0)
        data = self.authenticator_data(rp_id or wanted["rpId"], flags, self.sign_count)
        signed = data + hashlib.sha256(client_data).digest()
        signature = self.key.sign(signed, ec.ECDSA(hashes.SHA256()))
        response = {
            "clientDataJSON": b64(client_data),
            "authenticatorData": b64(data),
            "signature": b64(signature),
            "userHandle": b64(self.user_handle),
        }
        return self.credential(response)

    def credential(self, response: dict[str, Any]) -> str:
        return json.dumps(
            {
                "id": self.id,
                "rawId": self.id,
                "type": "public-key",
                "authenticatorAttachment": "platform",
                "clientExtensionResults": {},
                "response": response,
            }
        )

    def authenticator_data(self, rp_id: str, flags: int, sign_count: int) -> bytes:
        rp_id_hash = hashlib.sha256(rp_id.encode()).digest()
        return rp_id_hash + bytes([flags]) + sign_count.to_bytes(4, "big")

    def cose_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps(
            {
                1: 2,  # kty: EC2
                3: -7,  # alg: ES256
                -1: 1,  # crv: P-256
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )


def client_data_json(kind: str, challenge: str, origin: str) -> bytes:
    return json.dumps(
        {"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": False}
    ).encode()


def b64_decoded(text: str) -> bytes:
    return urlsafe_b64decode(text + "=" * (-len(text) % 4))
