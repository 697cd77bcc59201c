"""WebAuthn ceremonies through py_webauthn: the options a browser needs, and
the verification of what it answers.

Functions over values (the relying party, the challenge, the stored key), no
database. py_webauthn parses the CBOR and the attestation and checks the
challenge, origin, RP ID hash, flags, sign counter and signature: none of it
is written here by hand. Every passkey is discoverable (a resident key) and
every ceremony needs user verification, so a passkey login is a whole login.
"""

import json
import re
from dataclasses import dataclass

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    base64url_to_bytes,
    bytes_to_base64url,
    generate_challenge,
    parse_registration_credential_json,
)
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

# What the browser may take: the challenge itself lives 5 minutes.
CEREMONY_MS = 300_000
# A credential id has at most 1023 bytes: 1364 characters of base64url.
MAX_CREDENTIAL_ID = 1364
BASE64URL = re.compile(f"[A-Za-z0-9_-]{{1,{MAX_CREDENTIAL_ID}}}")


class CeremonyFailed(Exception):
    """The browser's answer does not verify; the message says why (for logs)."""


@dataclass(frozen=True)
class NewCredential:
    credential_id: str  # base64url, like every binary value here
    public_key: str  # COSE
    sign_count: int
    transports: list[str]


def new_challenge() -> str:
    """64 random bytes, base64url."""
    return bytes_to_base64url(generate_challenge())


def registration_options(
    *,
    rp_id: str,
    rp_name: str,
    user_handle: bytes,
    user_name: str,
    challenge: str,
    registered: list[str],
) -> str:
    """The JSON for navigator.credentials.create(); `registered` credential ids
    are excluded, so an authenticator is not registered twice."""
    options = generate_registration_options(
        rp_id=rp_id,
        rp_name=rp_name,
        user_id=user_handle,
        user_name=user_name,
        challenge=base64url_to_bytes(challenge),
        timeout=CEREMONY_MS,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=[
            PublicKeyCredentialDescriptor(id=base64url_to_bytes(credential_id))
            for credential_id in registered
        ],
    )
    return options_to_json(options)


def login_options(*, rp_id: str, challenge: str) -> str:
    """The JSON for navigator.credentials.get().

    No allowCredentials, even for a login with an email: listing the account's
    credentials would tell anyone which emails have accounts with passkeys.
    """
    options = generate_authentication_options(
        rp_id=rp_id,
        challenge=base64url_to_bytes(challenge),
        timeout=CEREMONY_MS,
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    return options_to_json(options)


def verified_registration(
    credential: str, *, challenge: str, rp_id: str, origins: list[str]
) -> NewCredential:
    """The new credential, once its attestation verifies; else CeremonyFailed."""
    try:
        parsed = parse_registration_credential_json(credential)
        verified = verify_registration_response(
            credential=parsed,
            expected_challenge=base64url_to_bytes(challenge),
            expected_rp_id=rp_id,
            expected_origin=origins,
            require_user_verification=True,
        )
    # py_webauthn raises its own errors, but malformed input can surface from
    # the CBOR and key decoders beneath it too: any failure is a refusal.
    except Exception as error:
        raise CeremonyFailed(str(error)) from error
    credential_id = bytes_to_base64url(verified.credential_id)
    if len(credential_id) > MAX_CREDENTIAL_ID:
        raise CeremonyFailed("credential id longer than 1023 bytes")
    return NewCredential(
        credential_id=credential_id,
        public_key=bytes_to_base64url(verified.credential_public_key),
        sign_count=verified.sign_count,
        transports=[transport.value for transport in parsed.response.transports or []],
    )


def credential_id_of(credential: str) -> str | None:
    """The credential id an answer names, to find its passkey by; None when
    it names none that could exist."""
    try:
        answer = json.loads(credential)
    except ValueError:
        return None
    named = answer.get("id") if isinstance(answer, dict) else None
    if not isinstance(named, str) or not BASE64URL.fullmatch(named):
        return None
    return named


def verified_login(
    credential: str,
    *,
    challenge: str,
    rp_id: str,
    origins: list[str],
    public_key: str,
    sign_count: int,
) -> int:
    """The authenticator's new sign count, once the assertion verifies (with
    user verification, and a counter that moved forward); else CeremonyFailed."""
    try:
        verified = verify_authentication_response(
            credential=credential,
            expected_challenge=base64url_to_bytes(challenge),
            expected_rp_id=rp_id,
            expected_origin=origins,
            credential_public_key=base64url_to_bytes(public_key),
            credential_current_sign_count=sign_count,
            require_user_verification=True,
        )
    except Exception as error:  # as in verified_registration
        raise CeremonyFailed(str(error)) from error
    return verified.new_sign_count
