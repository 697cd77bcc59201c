"""signUp, login, me and updateProfile: the contract's rules, through HTTP."""

from playhouse.test_utils import count_queries

from tests.conftest import Api


def test_sign_up_returns_the_new_user(api: Api) -> None:
    user = api.sign_up(" Ann@X.io ", city="Oslo", mobile="+4712345678").ok()["signUp"]
    assert user["email"] == "Ann@x.io"
    assert user["role"] == "USER"
    assert (user["city"], user["mobile"], user["organization"]) == (
        "Oslo",
        "+4712345678",
        None,
    )


def test_login_then_me(api: Api) -> None:
    api.sign_up("ann@x.io").ok()
    payload = api.login("ann@x.io").ok()["login"]
    assert payload["tokenType"] == "Bearer"
    assert payload["expiresIn"] == 900
    me = api.me(payload["accessToken"]).ok()["me"]
    assert me["email"] == "ann@x.io"


def test_email_is_one_account_regardless_of_case(api: Api) -> None:
    api.sign_up("Ann@X.io").ok()
    assert api.sign_up("ann@x.io").error_code == "EMAIL_TAKEN"
    assert api.login("ANN@x.IO").ok()["login"]["user"]["email"] == "Ann@x.io"


def test_me_costs_one_query_however_many_users_there_are(api: Api) -> None:
    """The hot path: the API key with the user and live session the token names,
    read together by index.

    The key's last-used time is written at most once a minute, so not here.
    """
    for name in ("bob", "cy", "dee"):
        api.sign_up(f"{name}@x.io").ok()
    token = api.user("ann@x.io")
    api.me(token).ok()  # warm: the tenant is read once per process
    with count_queries() as counter:
        assert api.me(token).ok()["me"]["email"] == "ann@x.io"
    assert counter.count == 1, [sql for sql, _ in counter.get_queries()]
