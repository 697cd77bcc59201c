"""Sessions: refresh-token rotation and reuse detection, logout, password change."""

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from app import create_app
from models import RefreshToken, Session
from models.db import utcnow
from models.session import purge_ended_sessions
from settings import Settings
from tests.conftest import PASSWORD, Api, make_environ

REFRESH = """mutation($token: String!) { refreshSession(refreshToken: $token) {
  accessToken refreshToken expiresIn refreshExpiresIn tokenType user { email } } }"""
LOGOUT = "mutation($token: String!) { logout(refreshToken: $token) }"


def login_pair(api: Api, email: str, password: str = PASSWORD) -> tuple[str, str]:
    payload = api.login(email, password).ok()["login"]
    return payload["accessToken"], payload["refreshToken"]


def refresh(api: Api, token: str) -> dict[str, Any]:
    result = api.gql(REFRESH, {"token": token})
    return result.data["refreshSession"] if result.data else result.errors[0]


def works(api: Api, access_token: str) -> bool:
    result = api.me(access_token)
    return not result.errors


def test_login_returns_a_refresh_token_and_its_lifetime(api: Api) -> None:
    api.sign_up("ann@x.io").ok()
    payload = api.login("ann@x.io").ok()["login"]
    assert len(payload["refreshToken"]) >= 43  # 256 bits, base64url
    assert payload["refreshExpiresIn"] == 30 * 24 * 3600


def test_refresh_rotates_the_pair(api: Api) -> None:
    api.sign_up("ann@x.io").ok()
    _, refresh_token = login_pair(api, "ann@x.io")
    pair = refresh(api, refresh_token)
    assert pair["refreshToken"] != refresh_token
    assert pair["tokenType"] == "Bearer"
    assert pair["user"] == {"email": "ann@x.io"}
    assert works(api, pair["accessToken"])
    assert refresh(api, pair["refreshToken"])["refreshToken"]


def test_retired_token_within_the_grace_window_gets_a_fresh_pair(api: Api) -> None:
    api.sign_up("ann@x.io").ok()
    _, refresh_token = login_pair(api, "ann@x.io")
    first = refresh(api, refresh_token)
    second = refresh(api, refresh_token)  # the other tab, a moment later
    assert works(api, first["accessToken"])
    assert works(api, second["accessToken"])
    assert refresh(api, first["refreshToken"])["refreshToken"]
    assert refresh(api, second["refreshToken"])["refreshToken"]


def test_concurrent_refreshes_of_one_token_all_get_working_pairs(api: Api) -> None:
    api.sign_up("ann@x.io").ok()
    _, refresh_token = login_pair(api, "ann@x.io")
    with ThreadPoolExecutor(max_workers=5) as pool:
        pairs = list(pool.map(lambda _: refresh(api, refresh_token), range(5)))
    assert all("refreshToken" in pair for pair in pairs), pairs
    assert all(works(api, pair["accessToken"]) for pair in pairs)


@pytest.fixture
def no_grace_api(tmp_path: Path) -> Iterator[Api]:
    environ = make_environ(tmp_path, USER_SERVICE_REFRESH_REUSE_GRACE="0")
    settings = Settings.from_env(environ)
    with TestClient(create_app(settings)) as client:
        yield Api(client, settings.dev_api_key, settings)


def test_reuse_after_the_grace_window_ends_the_whole_family(no_grace_api: Api) -> None:
    api = no_grace_api
    api.sign_up("ann@x.io").ok()
    old_access, old_refresh = login_pair(api, "ann@x.io")
    newest = refresh(api, old_refresh)
    other_access, _ = login_pair(api, "ann@x.io")  # another device

    reused = refresh(api, old_refresh)

    assert reused["extensions"]["code"] == "UNAUTHENTICATED"
    assert "reason" not in reused["extensions"]
    assert (
        refresh(api, newest["refreshToken"])["extensions"]["code"] == "UNAUTHENTICATED"
    )
    assert not works(api, newest["accessToken"])
    assert not works(api, old_access)
    assert works(api, other_access)


def test_logout_ends_one_session_and_its_access_tokens(api: Api) -> None:
    api.sign_up("ann@x.io").ok()
    access, refresh_token = login_pair(api, "ann@x.io")
    other_access, _ = login_pair(api, "ann@x.io")
    assert api.gql(LOGOUT, {"token": refresh_token}).ok() == {"logout": True}
    assert api.me(access).error_code == "UNAUTHENTICATED"
    assert refresh(api, refresh_token)["extensions"]["code"] == "UNAUTHENTICATED"
    assert works(api, other_access)


def test_logout_all_ends_every_session(api: Api) -> None:
    api.sign_up("ann@x.io").ok()
    first, _ = login_pair(api, "ann@x.io")
    second, second_refresh = login_pair(api, "ann@x.io")
    assert api.gql("mutation { logoutAll }", token=first).ok() == {"logoutAll": True}
    assert api.me(first).error_code == "UNAUTHENTICATED"
    assert api.me(second).error_code == "UNAUTHENTICATED"
    assert refresh(api, second_refresh)["extensions"]["code"] == "UNAUTHENTICATED"


CHANGE = """mutation($current: String!, $new: String!) {
  changePassword(currentPassword: $current, newPassword: $new) }"""


def test_change_password_ends_the_other_sessions(api: Api) -> None:
    api.sign_up("ann@x.io").ok()
    current, _ = login_pair(api, "ann@x.io")
    other, other_refresh = login_pair(api, "ann@x.io")
    variables = {"current": PASSWORD, "new": "n3w-Secret!"}
    assert api.gql(CHANGE, variables, token=current).ok() == {"changePassword": True}
    assert works(api, current)
    assert api.me(other).error_code == "UNAUTHENTICATED"
    assert refresh(api, other_refresh)["extensions"]["code"] == "UNAUTHENTICATED"
    assert api.login("ann@x.io", PASSWORD).error_code == "UNAUTHENTICATED"
    assert api.login("ann@x.io", "n3w-Secret!").ok()


def test_change_password_needs_the_current_password(api: Api) -> None:
    token = api.user("ann@x.io")
    result = api.gql(
        CHANGE, {"current": "wr0ng-Pass!", "new": "n3w-Secret!"}, token=token
    )
    assert result.error_code == "UNAUTHENTICATED"
    assert api.login("ann@x.io", PASSWORD).ok()


def test_change_password_applies_the_policy(api: Api) -> None:
    token = api.user("ann@x.io")
    result = api.gql(CHANGE, {"current": PASSWORD, "new": "Password1!"}, token=token)
    assert result.error_code == "BAD_USER_INPUT"
    assert result.extensions["fields"] == {"newPassword": "Password is too common."}


REVOKE = 'mutation { revokeSessions(email: "ann@acme.io") }'


def test_admin_revokes_a_users_sessions(admin_api: Api) -> None:
    ann = admin_api.user("ann@acme.io")
    boss = admin_api.token("boss@acme.io")
    assert admin_api.gql(REVOKE, token=boss).ok() == {"revokeSessions": True}
    assert admin_api.me(ann).error_code == "UNAUTHENTICATED"
    assert works(admin_api, boss)


def test_user_cannot_revoke_sessions(admin_api: Api) -> None:
    ann = admin_api.user("ann@acme.io")
    assert admin_api.gql(REVOKE, token=ann).error_code == "FORBIDDEN"
    assert works(admin_api, ann)


def test_admin_cannot_revoke_sessions_in_another_tenant(
    api: Api, admin_api: Api
) -> None:
    ann = api.user("ann@acme.io")  # in the dev tenant
    boss = admin_api.token("boss@acme.io")
    assert admin_api.gql(REVOKE, token=boss).error_code == "NOT_FOUND"
    assert works(api, ann)


def test_refresh_and_logout_with_another_tenants_key_are_refused(
    api: Api, admin_api: Api
) -> None:
    api.sign_up("ann@x.io").ok()
    access, refresh_token = login_pair(api, "ann@x.io")
    assert refresh(admin_api, refresh_token)["extensions"]["code"] == "UNAUTHENTICATED"
    assert (
        admin_api.gql(LOGOUT, {"token": refresh_token}).error_code == "UNAUTHENTICATED"
    )
    assert works(api, access)
    assert refresh(api, refresh_token)["refreshToken"]


@pytest.mark.parametrize(
    "token", ["", "x" * 5000, "not-a-token"], ids=["empty", "huge", "unknown"]
)
def test_junk_refresh_tokens_are_unauthenticated(api: Api, token: str) -> None:
    assert api.gql(REFRESH, {"token": token}).error_code == "UNAUTHENTICATED"


SESSIONS = "{ me { sessions { id current userAgent ip createdAt lastUsedAt } } }"


def test_me_lists_live_sessions_and_marks_the_current_one(api: Api) -> None:
    api.sign_up("ann@x.io").ok()
    first, _ = login_pair(api, "ann@x.io")
    _, second_refresh = login_pair(api, "ann@x.io")
    api.gql(LOGOUT, {"token": second_refresh}).ok()
    login_pair(api, "ann@x.io")
    sessions = api.gql(SESSIONS, token=first).ok()["me"]["sessions"]
    assert [session["current"] for session in sessions] == [False, True]
    assert {session["userAgent"] for session in sessions} == {"testclient"}
    assert {session["ip"] for session in sessions} == {"testclient"}


def test_purge_deletes_ended_sessions_but_keeps_live_ones(api: Api) -> None:
    api.sign_up("ann@x.io").ok()
    _, ended = login_pair(api, "ann@x.io")
    live, _ = login_pair(api, "ann@x.io")
    api.gql(LOGOUT, {"token": ended}).ok()
    Session.update(revoked_at=utcnow().replace(year=2000)).where(
        Session.revoked_at.is_null(False)
    ).execute()
    assert purge_ended_sessions() == 1
    assert Session.select().count() == 1
    assert RefreshToken.select().count() == 1  # the ended one went with its session
    assert works(api, live)
