"""Tokens that are signed right but hold garbage: every claim with every JSON
type, nested payloads, payloads that are not UTF-8. Each is one more invalid
token: UNAUTHENTICATED (INVALID_API_KEY with a bad key), one log line, never a
500, and the connection stays usable. The tests read the service's signing
key from its database, so they sign.
"""

import base64
import json
import logging
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jwt.algorithms import get_default_algorithms

from tests.conftest import Api, service_signing_key

ME = "{ me { email } }"
NOW = 1_790_000_000
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def app_header() -> dict[str, Any]:
    key = service_signing_key()
    return {"alg": key.algorithm, "typ": "at+jwt", "kid": key.kid}


def signed(payload: bytes, header: dict[str, Any] | None = None) -> str:
    """A token whose signature is right for whatever bytes its payload holds."""
    key = service_signing_key()
    header_part = b64url(json.dumps(header or app_header()).encode())
    signing_input = f"{header_part}.{b64url(payload)}"
    algorithm = get_default_algorithms()[key.algorithm]
    signature = algorithm.sign(signing_input.encode(), key.private_key)
    return f"{signing_input}.{b64url(signature)}"


def claims(**changes: Any) -> bytes:
    """Claims of a real-looking token of the dev tenant, with `changes`."""
    base: dict[str, Any] = {
        "iss": "http://127.0.0.1:8000",
        "aud": str(uuid4()),
        "sub": str(uuid4()),
        "sid": str(uuid4()),
        "iat": NOW,
        "exp": NOW + 900,
        "jti": "j",
    }
    return json.dumps(base | changes).encode()


def deeply_nested(levels: int) -> str:
    return "[" * levels + "]" * levels


GARBAGE = {
    "sub a number": claims(sub=42),
    "sub a list": claims(sub=["a"]),
    "sub an object": claims(sub={"id": 1}),
    "sub null": claims(sub=None),
    "sid a list": claims(sid=[str(uuid4())]),
    "sid not a uuid": claims(sid="x"),
    "aud a list": claims(aud=[str(uuid4())]),
    "iat a string": claims(iat="yesterday"),
    "iat a bool": claims(iat=True),
    "exp a float": claims(exp=1.5e9),
    "exp past the calendar": claims(exp=10**30),
    "exp before it": claims(exp=-(10**15)),
    "jti an object": claims(jti={}),
    "payload a list": b"[1, 2]",
    "payload a string": b'"x"',
    "payload not utf-8": b'{"sub": "\xff\xfe"}',
    "payload deeply nested": claims(sub=None).replace(
        b'"sub": null', b'"sub": ' + deeply_nested(100_000).encode()
    ),
    "payload not json": b"{{{",
}


@pytest.mark.parametrize("payload", GARBAGE.values(), ids=GARBAGE.keys())
def test_signed_garbage_is_unauthenticated_with_one_log_line(
    api: Api, payload: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    token = signed(payload)
    with caplog.at_level(logging.INFO):
        result = api.gql(ME, token=token)
    assert result.status == 200
    assert result.error_code == "UNAUTHENTICATED"
    records = [r for r in caplog.records if r.name.startswith("user_service")]
    assert [r.name for r in records] == ["user_service.requests"]
    # The same connection serves the next request.
    assert api.gql("{ __typename }").ok() == {"__typename": "Query"}


@pytest.mark.parametrize("payload", GARBAGE.values(), ids=GARBAGE.keys())
def test_signed_garbage_with_a_bad_key_is_invalid_api_key(
    api: Api, payload: bytes
) -> None:
    bad_key = Api(api.client, "not-a-key", api.settings)
    result = bad_key.gql(ME, token=signed(payload))
    assert result.status == 401
    assert result.error_code == "INVALID_API_KEY"


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    payload=st.dictionaries(
        st.sampled_from(["iss", "aud", "sub", "sid", "iat", "exp", "nbf", "jti", "x"]),
        json_values,
        max_size=8,
    ),
    header=st.dictionaries(
        st.sampled_from(["alg", "typ", "kid", "jku", "x"]), json_values, max_size=4
    ),
)
def test_any_payload_and_header_is_refused_without_a_500(
    api: Api, payload: dict[str, Any], header: dict[str, Any]
) -> None:
    body = json.dumps(payload).encode()
    for token in (signed(body), signed(body, {**app_header(), **header})):
        result = api.gql(ME, token=token)
        assert result.status < 500, result.body
        assert result.error_code == "UNAUTHENTICATED", result.body


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
# What a header can carry: latin-1 without control characters.
@given(
    st.text(
        st.characters(
            min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"
        ),
        max_size=300,
    )
)
def test_any_authorization_header_is_refused_without_a_500(
    api: Api, value: str
) -> None:
    sendable = value.strip().encode("latin-1")
    response = api.client.post(
        "/graphql",
        json={"query": ME},
        headers={b"X-API-Key": api.api_key.encode(), b"Authorization": sendable},
    )
    assert response.status_code < 500
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
