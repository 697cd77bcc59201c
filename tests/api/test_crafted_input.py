"""Crafted input that once answered INTERNAL_SERVER_ERROR answers BAD_USER_INPUT
naming the argument, or the same error as any wrong value (review issue 12,
item 9). tests/api/test_fuzz.py looks for more of it in every operation."""

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from auth.totp import code_at
from tests.conftest import Api, Result

BOSS = "boss@acme.io"
ARABIC_INDIC_DIGITS = "\u0661\u0662\u0663\u0664\u0665\u0666"  # 123456
FULLWIDTH_DIGITS = "\uff11\uff12\uff13\uff14\uff15\uff16"  # 123456
USERS = (
    "query($search: String, $after: String) {"
    " users(search: $search, after: $after) { totalCount } }"
)
AUDIT_LOG = (
    "query($action: String, $after: String) {"
    " auditLog(action: $action, after: $after) { edges { cursor } } }"
)
ENROLL = "mutation { enrollTotp { secret } }"
CONFIRM = "mutation($code: String!) { confirmTotp(code: $code) }"
VERIFY = (
    "mutation($token: String!, $code: String!) {"
    " verifyMfa(mfaToken: $token, code: $code) { accessToken } }"
)


def post_raw(api: Api, query: str, variables: dict[str, Any], token: str) -> Result:
    """POST as bytes: json.dumps escapes a lone surrogate, httpx would refuse it."""
    response = api.client.post(
        "/graphql",
        content=json.dumps({"query": query, "variables": variables}).encode(),
        headers={
            "X-API-Key": api.api_key,
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
        },
    )
    return Result(response.status_code, response.json(), response.headers)


def assert_bad_input(result: Result, field: str) -> None:
    assert result.status == 200
    assert result.error_code == "BAD_USER_INPUT", result.body
    assert set(result.extensions["fields"]) == {field}
    assert result.data is None


def cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.fixture
def boss(admin_api: Api) -> str:
    return admin_api.token(BOSS)


# ---- TOTP codes in digits of other scripts --------------------------------------


@pytest.mark.parametrize(
    "code", [ARABIC_INDIC_DIGITS, FULLWIDTH_DIGITS], ids=["Arabic-Indic", "fullwidth"]
)
def test_confirm_totp_with_digits_of_another_script_is_bad_input(
    admin_api: Api, boss: str, code: str
) -> None:
    admin_api.gql(ENROLL, token=boss).ok()
    assert_bad_input(post_raw(admin_api, CONFIRM, {"code": code}, boss), "code")


@pytest.mark.parametrize(
    "code", [ARABIC_INDIC_DIGITS, FULLWIDTH_DIGITS], ids=["Arabic-Indic", "fullwidth"]
)
def test_verify_mfa_with_digits_of_another_script_is_a_wrong_code(
    admin_api: Api, boss: str, code: str
) -> None:
    secret = admin_api.gql(ENROLL, token=boss).ok()["enrollTotp"]["secret"]
    now = datetime.now(UTC)
    admin_api.gql(CONFIRM, {"code": code_at(secret, now)}, token=boss).ok()
    mfa_token = admin_api.login(BOSS).extensions["mfaToken"]
    result = post_raw(admin_api, VERIFY, {"token": mfa_token, "code": code}, boss)
    assert result.error_code == "UNAUTHENTICATED"
    assert result.data is None


# ---- users(search:, after:) -------------------------------------------------------


@pytest.mark.parametrize(
    "search",
    ["ann\ud800", "a" * 50_000, "ann\x00", "a" * 255],
    ids=["lone surrogate", "50,000 characters", "NUL", "longer than any email"],
)
def test_users_search_no_email_can_match_is_bad_input(
    admin_api: Api, boss: str, search: str
) -> None:
    result = post_raw(admin_api, USERS, {"search": search}, boss)
    assert_bad_input(result, "search")


def test_users_search_of_254_characters_is_a_search(admin_api: Api, boss: str) -> None:
    result = post_raw(admin_api, USERS, {"search": "a" * 254}, boss)
    assert result.ok() == {"users": {"totalCount": 0}}


@pytest.mark.parametrize(
    "after",
    [cursor("user:ann\x00"), cursor("user:" + "a" * 2000)],
    ids=["NUL in its key", "too long"],
)
def test_users_cursor_no_page_can_have_is_bad_input(
    admin_api: Api, boss: str, after: str
) -> None:
    assert_bad_input(post_raw(admin_api, USERS, {"after": after}, boss), "after")


# ---- auditLog(action:, after:) ----------------------------------------------------


@pytest.mark.parametrize(
    "action",
    ["LOGIN\ud800", "LOGIN\x00", "A" * 41, "A" * 50_000],
    ids=["lone surrogate", "NUL", "longer than any action", "50,000 characters"],
)
def test_audit_log_action_no_event_can_have_is_bad_input(
    admin_api: Api, boss: str, action: str
) -> None:
    result = post_raw(admin_api, AUDIT_LOG, {"action": action}, boss)
    assert_bad_input(result, "action")


@pytest.mark.parametrize(
    "number", ["9" * 40, "9223372036854775808", ARABIC_INDIC_DIGITS, "-1"]
)
def test_audit_cursor_holding_a_number_is_bad_input(
    admin_api: Api, boss: str, number: str
) -> None:
    after = cursor(f"audit:{number}")
    assert_bad_input(post_raw(admin_api, AUDIT_LOG, {"after": after}, boss), "after")
