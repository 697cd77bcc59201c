"""The audit log through HTTP: which events are recorded, with which actor and
target, who may read them, and how they page (CONTRACT.md "Administration";
SECURITY.md E9, H)."""

import base64
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from starlette.testclient import TestClient

from app import create_app
from auth.api_keys import shown_prefix
from models import ApiKey, Tenant
from models.db import close_database
from provisioning import add_api_key, new_tenant, revoke_api_key
from settings import Settings
from tests.conftest import PASSWORD, Api, Result, make_environ

AUDIT_LOG = """query($first: Int, $after: String, $action: String) {
  auditLog(first: $first, after: $after, action: $action) {
    edges { cursor node { action actor { email } target { email } ip detail at } }
    pageInfo { hasNextPage endCursor } } }"""
REFRESH = (
    "mutation($token: String!) { refreshSession(refreshToken: $token)"
    " { refreshToken } }"
)
LOGOUT = "mutation($token: String!) { logout(refreshToken: $token) }"
BOSS = "boss@acme.io"
ANN = "ann@acme.io"
WRONG = "wrong-Pw1!"
NEW_PASSWORD = "n3w-Secret!"
# (action, actor email, target email, detail)
Event = tuple[str, str | None, str | None, str | None]


def audit_log(api: Api, token: str | None, **variables: Any) -> Result:
    return api.gql(AUDIT_LOG, variables, token=token)


def nodes(api: Api, token: str, action: str | None = None) -> list[dict[str, Any]]:
    page = audit_log(api, token, first=100, action=action).ok()["auditLog"]
    assert page["pageInfo"]["hasNextPage"] is False
    return [edge["node"] for edge in page["edges"]]


def event_of(node: dict[str, Any]) -> Event:
    actor, target = node["actor"] or {}, node["target"] or {}
    return node["action"], actor.get("email"), target.get("email"), node["detail"]


def events(api: Api, token: str, action: str | None = None) -> list[Event]:
    """The tenant's events, newest first."""
    return [event_of(node) for node in nodes(api, token, action)]


@pytest.fixture
def boss(admin_api: Api) -> str:
    """The access token of acme's first ADMIN (its login is the first event)."""
    return admin_api.token(BOSS)


@pytest.fixture
def ann(admin_api: Api, boss: str) -> str:
    """The access token of a USER of acme."""
    return admin_api.user(ANN)


# ---- what is recorded, by whom, about whom ------------------------------------------


def test_sign_up_is_recorded_for_the_new_account_without_an_actor(
    admin_api: Api, boss: str
) -> None:
    admin_api.sign_up(ANN).ok()
    assert events(admin_api, boss, "SIGNED_UP") == [("SIGNED_UP", None, ANN, None)]


def test_sign_up_of_an_admin_is_recorded_with_the_admin_as_actor(
    admin_api: Api, boss: str
) -> None:
    admin_api.sign_up("eve@acme.io", token=boss, role="ADMIN").ok()
    assert events(admin_api, boss, "SIGNED_UP") == [
        ("SIGNED_UP", BOSS, "eve@acme.io", None)
    ]


def test_successful_logins_are_recorded_with_the_user_as_actor_and_target(
    admin_api: Api, boss: str, ann: str
) -> None:
    assert events(admin_api, boss, "LOGIN_SUCCEEDED") == [
        ("LOGIN_SUCCEEDED", ANN, ANN, None),
        ("LOGIN_SUCCEEDED", BOSS, BOSS, None),
    ]


def test_failed_login_is_recorded_against_the_account_without_an_actor(
    admin_api: Api, boss: str, ann: str
) -> None:
    assert admin_api.login(ANN, WRONG).error_code == "UNAUTHENTICATED"
    assert admin_api.login("nobody@acme.io", WRONG).error_code == "UNAUTHENTICATED"
    assert events(admin_api, boss, "LOGIN_FAILED") == [
        ("LOGIN_FAILED", None, None, None),
        ("LOGIN_FAILED", None, ANN, None),
    ]


def test_fifth_failed_login_is_recorded_as_account_locked_once(
    admin_api: Api, boss: str, ann: str
) -> None:
    for _ in range(5):
        assert admin_api.login(ANN, WRONG).error_code == "UNAUTHENTICATED"
    assert admin_api.login(ANN, PASSWORD).error_code == "RATE_LIMITED"
    recorded = events(admin_api, boss)
    assert recorded[:2] == [
        ("ACCOUNT_LOCKED", None, ANN, None),
        ("LOGIN_FAILED", None, ANN, None),
    ]
    assert [event[0] for event in recorded].count("LOGIN_FAILED") == 5
    assert [event[0] for event in recorded].count("ACCOUNT_LOCKED") == 1


def test_role_change_is_recorded_with_the_old_and_new_role(
    admin_api: Api, boss: str, ann: str
) -> None:
    admin_api.update_profile(boss, email=ANN, role="ADMIN").ok()
    assert events(admin_api, boss, "ROLE_CHANGED") == [
        ("ROLE_CHANGED", BOSS, ANN, "USER -> ADMIN")
    ]


def test_profile_change_lists_the_changed_fields_never_their_values(
    admin_api: Api, boss: str, ann: str
) -> None:
    admin_api.update_profile(ann, email=ANN, city="Pune", mobile="+919876543210").ok()
    admin_api.update_profile(ann, email=ANN, city="Pune").ok()  # no change
    assert events(admin_api, boss, "PROFILE_CHANGED") == [
        ("PROFILE_CHANGED", ANN, ANN, "city, mobile")
    ]
    body = str(audit_log(admin_api, boss, first=100).body)
    assert "Pune" not in body
    assert "9876543210" not in body


def test_logout_is_recorded_as_session_ended_for_its_user(
    admin_api: Api, boss: str
) -> None:
    admin_api.sign_up(ANN).ok()
    payload = admin_api.login(ANN).ok()["login"]
    sessions = admin_api.gql(
        "{ me { sessions { id } } }", token=payload["accessToken"]
    ).ok()["me"]["sessions"]
    admin_api.gql(LOGOUT, {"token": payload["refreshToken"]}).ok()
    assert events(admin_api, boss, "SESSION_ENDED") == [
        ("SESSION_ENDED", ANN, ANN, f"session {sessions[0]['id']}")
    ]


def test_logout_all_is_recorded_as_sessions_revoked_by_the_user(
    admin_api: Api, boss: str, ann: str
) -> None:
    admin_api.gql("mutation { logoutAll }", token=ann).ok()
    assert events(admin_api, boss, "SESSIONS_REVOKED") == [
        ("SESSIONS_REVOKED", ANN, ANN, None)
    ]


def test_revoke_sessions_is_recorded_with_the_admin_as_actor(
    admin_api: Api, boss: str, ann: str
) -> None:
    admin_api.gql(
        "mutation($email: String!) { revokeSessions(email: $email) }",
        {"email": ANN},
        token=boss,
    ).ok()
    assert events(admin_api, boss, "SESSIONS_REVOKED") == [
        ("SESSIONS_REVOKED", BOSS, ANN, None)
    ]


def test_change_password_is_recorded_as_password_changed(
    admin_api: Api, boss: str, ann: str
) -> None:
    admin_api.gql(
        "mutation($old: String!, $new: String!) {"
        " changePassword(currentPassword: $old, newPassword: $new) }",
        {"old": PASSWORD, "new": NEW_PASSWORD},
        token=ann,
    ).ok()
    assert events(admin_api, boss, "PASSWORD_CHANGED") == [
        ("PASSWORD_CHANGED", ANN, ANN, None)
    ]
    assert NEW_PASSWORD not in str(audit_log(admin_api, boss, first=100).body)


@pytest.fixture
def no_grace_admin_api(tmp_path: Path) -> Iterator[Api]:
    environ = make_environ(tmp_path, USER_SERVICE_REFRESH_REUSE_GRACE="0")
    settings = Settings.from_env(environ)
    with TestClient(create_app(settings)) as client:
        key = new_tenant(settings, "acme", BOSS, PASSWORD)
        yield Api(client, key, settings)
    close_database()


def test_refresh_token_reuse_is_recorded_against_its_user(
    no_grace_admin_api: Api,
) -> None:
    api = no_grace_admin_api
    boss = api.token(BOSS)
    api.sign_up(ANN).ok()
    first = api.login(ANN).ok()["login"]["refreshToken"]
    api.gql(REFRESH, {"token": first}).ok()
    assert api.gql(REFRESH, {"token": first}).error_code == "UNAUTHENTICATED"
    assert events(api, boss, "REFRESH_TOKEN_REUSED") == [
        ("REFRESH_TOKEN_REUSED", None, ANN, None)
    ]


# ---- refusals (SECURITY.md E9)


def test_user_reading_the_audit_log_is_forbidden_and_recorded(
    admin_api: Api, boss: str, ann: str
) -> None:
    result = audit_log(admin_api, ann)
    assert result.data is None
    assert result.error_code == "FORBIDDEN"
    assert events(admin_api, boss, "ACCESS_DENIED") == [
        ("ACCESS_DENIED", ANN, None, "auditLog")
    ]


def test_audit_log_without_a_token_is_unauthenticated(admin_api: Api) -> None:
    result = audit_log(admin_api, None)
    assert result.data is None
    assert result.error_code == "UNAUTHENTICATED"


def test_user_editing_another_profile_is_recorded_as_access_denied(
    admin_api: Api, boss: str, ann: str
) -> None:
    assert admin_api.update_profile(ann, email=BOSS, city="X").error_code == (
        "FORBIDDEN"
    )
    assert events(admin_api, boss, "ACCESS_DENIED") == [
        ("ACCESS_DENIED", ANN, None, "updateProfile of another")
    ]


def test_sign_up_as_admin_without_a_token_is_recorded_as_access_denied(
    admin_api: Api, boss: str
) -> None:
    assert admin_api.sign_up("eve@acme.io", role="ADMIN").error_code == "FORBIDDEN"
    assert events(admin_api, boss, "ACCESS_DENIED") == [
        ("ACCESS_DENIED", None, None, "signUp")
    ]


def test_user_revoking_sessions_is_recorded_as_access_denied(
    admin_api: Api, boss: str, ann: str
) -> None:
    result = admin_api.gql(
        "mutation($email: String!) { revokeSessions(email: $email) }",
        {"email": BOSS},
        token=ann,
    )
    assert result.error_code == "FORBIDDEN"
    assert events(admin_api, boss, "ACCESS_DENIED") == [
        ("ACCESS_DENIED", ANN, None, "revokeSessions")
    ]


def test_last_admin_demoting_self_is_recorded_as_access_denied(
    admin_api: Api, boss: str
) -> None:
    result = admin_api.update_profile(boss, email=BOSS, role="USER")
    assert result.error_code == "FORBIDDEN"
    assert events(admin_api, boss, "ACCESS_DENIED") == [
        ("ACCESS_DENIED", BOSS, BOSS, "last admin")
    ]


# ---- what each event carries


def test_events_carry_the_client_address_and_a_time_newest_first(
    admin_api: Api, boss: str, ann: str
) -> None:
    assert admin_api.login(ANN, WRONG).error_code == "UNAUTHENTICATED"
    recorded = nodes(admin_api, boss)
    # The API key came from the command line: no client address.
    by_clients = [node for node in recorded if node["action"] != "API_KEY_CREATED"]
    assert {node["ip"] for node in by_clients} == {"testclient"}
    times = [datetime.fromisoformat(node["at"]) for node in recorded]
    assert all(moment.tzinfo is not None for moment in times)
    assert times == sorted(times, reverse=True)


def test_action_filter_returns_only_that_action(
    admin_api: Api, boss: str, ann: str
) -> None:
    for _ in range(3):
        assert admin_api.login(ANN, WRONG).error_code == "UNAUTHENTICATED"
    assert [event[0] for event in events(admin_api, boss, "LOGIN_FAILED")] == [
        "LOGIN_FAILED"
    ] * 3
    assert events(admin_api, boss, "NO_SUCH_ACTION") == []


# ---- pagination


def pages(api: Api, token: str, first: int) -> list[list[str]]:
    """Every page's cursors, following endCursor until hasNextPage is false."""
    collected: list[list[str]] = []
    after = None
    while True:
        page = audit_log(api, token, first=first, after=after).ok()["auditLog"]
        cursors = [edge["cursor"] for edge in page["edges"]]
        collected.append(cursors)
        assert page["pageInfo"]["endCursor"] == cursors[-1]
        if not page["pageInfo"]["hasNextPage"]:
            return collected
        after = page["pageInfo"]["endCursor"]


@pytest.fixture
def eight_events(admin_api: Api, boss: str) -> list[str]:
    """Eight events of acme (its API key, a login, three sign-ups, three failed
    logins), listed newest first in one page."""
    for name in ("a", "b", "c"):
        admin_api.sign_up(f"{name}@acme.io").ok()
        assert admin_api.login(f"{name}@acme.io", WRONG).error_code == (
            "UNAUTHENTICATED"
        )
    page = audit_log(admin_api, boss, first=100).ok()["auditLog"]
    assert len(page["edges"]) == 8
    return [edge["cursor"] for edge in page["edges"]]


def test_pages_of_two_cover_every_event_once_newest_first(
    admin_api: Api, boss: str, eight_events: list[str]
) -> None:
    walked = pages(admin_api, boss, first=2)
    assert [len(page) for page in walked] == [2, 2, 2, 2]
    assert [cursor for page in walked for cursor in page] == eight_events


def test_cursor_stays_valid_while_new_events_arrive(
    admin_api: Api, boss: str, eight_events: list[str]
) -> None:
    first_page = audit_log(admin_api, boss, first=2).ok()["auditLog"]
    admin_api.sign_up("late@acme.io").ok()
    assert admin_api.login("late@acme.io", WRONG).error_code == "UNAUTHENTICATED"
    after = first_page["pageInfo"]["endCursor"]
    second_page = audit_log(admin_api, boss, first=2, after=after).ok()["auditLog"]
    assert [edge["cursor"] for edge in second_page["edges"]] == eight_events[2:4]


def test_last_page_has_no_next_page(
    admin_api: Api, boss: str, eight_events: list[str]
) -> None:
    page = audit_log(admin_api, boss, first=8).ok()["auditLog"]
    assert page["pageInfo"] == {"hasNextPage": False, "endCursor": eight_events[-1]}
    after_last = audit_log(admin_api, boss, first=2, after=eight_events[-1]).ok()
    assert after_last["auditLog"] == {
        "edges": [],
        "pageInfo": {"hasNextPage": False, "endCursor": None},
    }


def cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


BAD_CURSORS = {
    "not base64": "not a cursor!",
    "empty": "",
    "another list": cursor("user:1"),
    "no key": cursor("audit:"),
    "key not an id": cursor("audit:abc"),
    "numeric key": cursor("audit:1"),
    "negative key": cursor("audit:-1"),
    "huge number": cursor("audit:" + "9" * 40),
    "non-ASCII digits": cursor("audit:" + "\u0661" * 32),
    "injection": cursor("audit:1 OR 1=1"),
    "id with dashes": cursor(f"audit:{uuid4()}"),
    "id of no event": cursor(f"audit:{uuid4().hex}"),
}


@pytest.mark.parametrize("after", list(BAD_CURSORS.values()), ids=list(BAD_CURSORS))
def test_bad_cursor_is_bad_user_input(admin_api: Api, boss: str, after: str) -> None:
    result = audit_log(admin_api, boss, first=2, after=after)
    assert result.data is None
    assert result.error_code == "BAD_USER_INPUT"
    assert set(result.extensions["fields"]) == {"after"}


@pytest.mark.parametrize("first", [0, -1, 101])
def test_page_size_outside_1_to_100_is_bad_user_input(
    admin_api: Api, boss: str, first: int
) -> None:
    result = audit_log(admin_api, boss, first=first)
    assert result.data is None
    assert result.error_code == "BAD_USER_INPUT"
    assert set(result.extensions["fields"]) == {"first"}


# ---- tenants


def test_admin_never_sees_another_tenants_events(api: Api, admin_api: Api) -> None:
    api.sign_up("ann@x.io").ok()
    api.token("ann@x.io")
    assert api.login("ann@x.io", WRONG).error_code == "UNAUTHENTICATED"
    assert api.sign_up("eve@x.io", role="ADMIN").error_code == "FORBIDDEN"
    boss = admin_api.token(BOSS)
    actions = [event[0] for event in events(admin_api, boss)]
    assert actions == ["LOGIN_SUCCEEDED", "API_KEY_CREATED"]


def test_cursor_of_another_tenants_event_is_bad_user_input(admin_api: Api) -> None:
    globex = admin_api.tenant("globex", admin=("gus@globex.io", PASSWORD))
    gus = globex.token("gus@globex.io")
    foreign = audit_log(globex, gus, first=1).ok()["auditLog"]["pageInfo"]["endCursor"]
    result = audit_log(admin_api, admin_api.token(BOSS), first=100, after=foreign)
    assert result.data is None
    assert result.error_code == "BAD_USER_INPUT"
    assert set(result.extensions["fields"]) == {"after"}


def test_tampered_cursor_is_bad_user_input(
    admin_api: Api, boss: str, eight_events: list[str]
) -> None:
    kind, _, key = base64.urlsafe_b64decode(eight_events[3]).decode().partition(":")
    changed = key[:-1] + ("0" if key[-1] != "0" else "1")
    result = audit_log(admin_api, boss, first=2, after=cursor(f"{kind}:{changed}"))
    assert result.error_code == "BAD_USER_INPUT"
    assert set(result.extensions["fields"]) == {"after"}


ID_AND_CURSOR = """query($first: Int, $after: String) {
  auditLog(first: $first, after: $after) {
    edges { cursor node { id action } } pageInfo { hasNextPage endCursor } } }"""


def ids_and_cursors(api: Api, token: str) -> list[tuple[str, str]]:
    page = api.gql(ID_AND_CURSOR, {"first": 100}, token=token).ok()["auditLog"]
    return [(edge["node"]["id"], edge["cursor"]) for edge in page["edges"]]


def test_ids_and_cursors_are_random_and_tell_nothing_of_other_tenants(
    admin_api: Api, boss: str
) -> None:
    """Events of acme on either side of globex's: nothing in their ids or
    cursors counts globex's events (an autoincrement id would jump by 12)."""
    globex = admin_api.tenant("globex", admin=("gus@globex.io", PASSWORD))
    admin_api.sign_up("a@acme.io").ok()
    for name in "bcdef":
        globex.sign_up(f"{name}@globex.io").ok()
        assert globex.login(f"{name}@globex.io", WRONG).error_code == (
            "UNAUTHENTICATED"
        )
    admin_api.sign_up("g@acme.io").ok()
    seen = ids_and_cursors(admin_api, boss)
    assert len(seen) == 4  # key created, boss's login, two sign-ups
    for event_id, event_cursor in seen:
        assert UUID(event_id).version == 4
        assert base64.urlsafe_b64decode(event_cursor).decode() == (
            f"audit:{UUID(event_id).hex}"
        )
    assert len({event_id for event_id, _ in seen}) == len(seen)


def test_pages_cover_many_events_once_while_another_tenant_is_busy(
    admin_api: Api, boss: str
) -> None:
    globex = admin_api.tenant("globex", admin=("gus@globex.io", PASSWORD))
    for number in range(30):  # failed logins: sign-ups are limited per hour
        for api in (admin_api, globex):
            assert api.login(f"nobody{number}@x.io", WRONG).error_code == (
                "UNAUTHENTICATED"
            )
    everything = [cursor for _, cursor in ids_and_cursors(admin_api, boss)]
    assert len(everything) == 32
    walked = pages(admin_api, boss, first=7)
    assert [len(page) for page in walked] == [7, 7, 7, 7, 4]
    assert [cursor for page in walked for cursor in page] == everything


def test_revoked_api_key_is_recorded_by_its_prefix_never_its_row_id(
    admin_api: Api, boss: str
) -> None:
    # Other tenants' keys come first: a row id would count them.
    for name in ("other1", "other2", "other3"):
        new_tenant(admin_api.settings, name, None, None)
    acme = Tenant.by_name("acme")
    assert acme is not None
    key = add_api_key(acme)
    api_key = ApiKey.get(ApiKey.prefix == shown_prefix(key))
    assert revoke_api_key(api_key.id) is not None

    [node] = nodes(admin_api, boss, action="API_KEY_REVOKED")
    # The prefix alone: a random prefix may contain the id's digits by chance.
    assert node["detail"] == f"key {shown_prefix(key)}"
