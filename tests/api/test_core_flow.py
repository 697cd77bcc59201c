"""signUp, login, me and updateProfile: the contract's rules, through HTTP."""

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
