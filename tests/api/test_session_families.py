"""Login families and their refresh tokens under the second-round amendments
(issue 12, items 14 and 15; CONTRACT.md "Amendments (second round)"):

- a family has at most one live refresh token: a retired token presented
  within the grace window gets a fresh pair that replaces the live one, so ten
  presentations, one after another or at once, leave one live token, and every
  earlier one is reuse once the window has passed;
- USER_SERVICE_MAX_SESSIONS_PER_USER: a login past it ends the least recently
  used session of the account.

The grace window is passed by moving the retirement times back in the
database, not by sleeping. Runs on PostgreSQL as well, where concurrent
refreshes of one family take turns on the session's row.
"""

from collections.abc import Iterator
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from app import create_app
from auth.opaque import digest
from models import RefreshToken, Session, User
from models.db import close_database, utcnow
from settings import Settings
from tests.conftest import Api, Result, make_environ
from tests.races import at_once

ANN = "ann@x.io"
PRESENTATIONS = 10
GRACE = 10  # USER_SERVICE_REFRESH_REUSE_GRACE's default, in seconds
MAX_SESSIONS = 3

REFRESH = """mutation($token: String!) {
  refreshSession(refreshToken: $token) { accessToken refreshToken } }"""


# ---- helpers ---------------------------------------------------------------------


def login_pair(api: Api, email: str = ANN) -> dict[str, Any]:
    return dict(api.login(email).ok()["login"])


def refresh(api: Api, refresh_token: str) -> Result:
    return api.gql(REFRESH, {"token": refresh_token})


def works(api: Api, access_token: str) -> bool:
    return not api.me(access_token).errors


def unauthenticated(result: Result) -> bool:
    return result.data is None and result.error_code == "UNAUTHENTICATED"


def live_refresh_digests(email: str = ANN) -> dict[str, set[str]]:
    """Each live session of the account, with the digests of its unretired tokens."""
    user = User.get(User.email == email)
    families: dict[str, set[str]] = {}
    for session in Session.live_of(user):
        tokens = RefreshToken.select().where(
            (RefreshToken.session == session) & RefreshToken.retired_at.is_null()
        )
        families[str(session.id)] = {token.digest for token in tokens}
    return families


def pass_the_grace_window() -> None:
    """Every retired token was retired longer ago than the grace window."""
    RefreshToken.update(retired_at=utcnow() - timedelta(seconds=GRACE + 1)).where(
        RefreshToken.retired_at.is_null(False)
    ).execute()


# ---- item 14: one live refresh token per family ----------------------------------


def test_token_presented_ten_times_within_the_grace_window_leaves_one_live_token(
    api: Api,
) -> None:
    api.sign_up(ANN).ok()
    first = login_pair(api)

    pairs = [
        refresh(api, first["refreshToken"]).ok()["refreshSession"]
        for _ in range(PRESENTATIONS)
    ]

    newest = pairs[-1]
    assert list(live_refresh_digests().values()) == [{digest(newest["refreshToken"])}]
    pass_the_grace_window()
    assert unauthenticated(refresh(api, pairs[3]["refreshToken"]))  # reuse: ends all
    assert unauthenticated(refresh(api, newest["refreshToken"]))
    assert not works(api, newest["accessToken"])
    assert live_refresh_digests() == {}


def test_after_the_grace_window_only_the_newest_of_ten_pairs_refreshes(
    api: Api,
) -> None:
    api.sign_up(ANN).ok()
    first = login_pair(api)
    pairs = [
        refresh(api, first["refreshToken"]).ok()["refreshSession"]
        for _ in range(PRESENTATIONS)
    ]
    pass_the_grace_window()

    latest = refresh(api, pairs[-1]["refreshToken"]).ok()["refreshSession"]

    assert works(api, latest["accessToken"])
    for earlier in [*pairs[:-1], first]:
        assert unauthenticated(refresh(api, earlier["refreshToken"]))
    assert not works(api, latest["accessToken"])


def test_retired_token_presented_ten_times_at_once_leaves_one_live_token(
    api: Api,
) -> None:
    api.sign_up(ANN).ok()
    first = login_pair(api)
    refresh(api, first["refreshToken"]).ok()  # the other tab, a moment before
    # Ten more tabs now present the retired token at the same instant: each is
    # in the grace window, and each fresh pair replaces the family's live token.

    results = at_once([partial(refresh, api, first["refreshToken"])] * PRESENTATIONS)

    pairs = [result.ok()["refreshSession"] for result in results]
    (live,) = live_refresh_digests().values()
    assert len(live) == 1
    (survivor,) = [pair for pair in pairs if digest(pair["refreshToken"]) in live]
    pass_the_grace_window()
    latest = refresh(api, survivor["refreshToken"]).ok()["refreshSession"]
    assert works(api, latest["accessToken"])
    others = [pair for pair in pairs if pair is not survivor]
    assert unauthenticated(refresh(api, others[0]["refreshToken"]))
    assert not works(api, latest["accessToken"])


# ---- item 15: at most USER_SERVICE_MAX_SESSIONS_PER_USER sessions ------------------


@pytest.fixture
def capped_api(tmp_path: Path) -> Iterator[Api]:
    environ = make_environ(
        tmp_path, USER_SERVICE_MAX_SESSIONS_PER_USER=str(MAX_SESSIONS)
    )
    settings = Settings.from_env(environ)
    with TestClient(create_app(settings)) as client:
        yield Api(client, settings.dev_api_key, settings)
    close_database()


def test_login_past_the_cap_ends_the_least_recently_used_session(
    capped_api: Api,
) -> None:
    api = capped_api
    api.sign_up(ANN).ok()
    oldest, *others = [login_pair(api) for _ in range(MAX_SESSIONS)]

    newest = login_pair(api)

    assert not works(api, oldest["accessToken"])
    assert unauthenticated(refresh(api, oldest["refreshToken"]))
    for pair in [*others, newest]:
        assert works(api, pair["accessToken"])
    assert len(live_refresh_digests()) == MAX_SESSIONS


def test_session_refreshed_lately_outlives_an_older_unused_one(
    capped_api: Api,
) -> None:
    api = capped_api
    api.sign_up(ANN).ok()
    first, second, third = [login_pair(api) for _ in range(MAX_SESSIONS)]
    refreshed = refresh(api, first["refreshToken"]).ok()["refreshSession"]

    fourth = login_pair(api)

    assert not works(api, second["accessToken"])
    assert unauthenticated(refresh(api, second["refreshToken"]))
    for access_token in (
        first["accessToken"],
        refreshed["accessToken"],
        third["accessToken"],
        fourth["accessToken"],
    ):
        assert works(api, access_token)
    assert refresh(api, refreshed["refreshToken"]).ok()
