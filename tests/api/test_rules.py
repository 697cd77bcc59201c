"""The contract's rules for input, passwords, login and authorization, through HTTP.

IDs (C1, E3, A5...) name the lines of the security checklist a test attacks.
"""

import json
import statistics
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from app import create_app
from models import User
from models.db import close_database
from settings import Settings
from tests.conftest import PASSWORD, Api, Result, make_environ

# Rate limits may count the many failed logins of a test; these keep them out
# of the way wherever a test builds its own app.
LOOSE_LIMITS = {
    "USER_SERVICE_LOGIN_FAILURES_PER_ACCOUNT": "1000 per minute",
    "USER_SERVICE_LOGIN_FAILURES_PER_ADDRESS": "1000 per minute",
    "USER_SERVICE_SIGNUPS_PER_ADDRESS": "1000 per minute",
}
SIGN_UP = "mutation($input: SignUpInput!) { signUp(input: $input) { email role } }"
LOGIN = (
    "mutation($email: String!, $password: String!) {"
    " login(email: $email, password: $password) { accessToken } }"
)
UPDATE_PROFILE = (
    "mutation($input: UpdateProfileInput!) { updateProfile(input: $input) { city } }"
)
LONG_PASSWORD = 100 * "a" + "1!"
EMOJI_PASSWORD = 126 * "\U0001f600" + "a1"  # 128 characters, 506 UTF-8 bytes


def assert_bad_input(result: Result, *fields: str) -> None:
    """BAD_USER_INPUT naming exactly `fields`, and no data."""
    assert result.error_code == "BAD_USER_INPUT", result.body
    assert set(result.extensions["fields"]) == set(fields)
    assert result.data is None


def post_raw(api: Api, query: str, variables_json: str) -> Result:
    """POST a body written by hand: httpx refuses to encode a lone surrogate."""
    body = f'{{"query": {json.dumps(query)}, "variables": {variables_json}}}'
    response = api.client.post(
        "/graphql",
        content=body.encode(),
        headers={"X-API-Key": api.api_key, "Content-Type": "application/json"},
    )
    return Result(response.status_code, response.json(), response.headers)


def email_of_length(length: int) -> str:
    """A valid address of exactly `length` characters (labels stay under 64)."""
    email = "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * (length - 196)
    email += ".io"
    assert len(email) == length
    return email


def without_request_ids(body: dict[str, Any]) -> dict[str, Any]:
    """The body minus extensions.requestId, which differs on every request."""
    errors = [
        {
            **error,
            "extensions": {
                name: value
                for name, value in error.get("extensions", {}).items()
                if name != "requestId"
            },
        }
        for error in body.get("errors", [])
    ]
    return {**body, "errors": errors}


def stored_hash(email: str) -> str:
    """Grey-box: the password column of the dev tenant's account."""
    return str(User.get(User.email_key == email).password_hash)


def role_of(api: Api, token: str) -> str:
    return str(api.me(token).ok()["me"]["role"])


# ---- email ------------------------------------------------------------------


def test_sign_up_trims_the_email_and_login_finds_it(api: Api) -> None:
    assert api.sign_up("  ann@x.io\t").ok()["signUp"]["email"] == "ann@x.io"
    assert api.login("ann@x.io").ok()["login"]["user"]["email"] == "ann@x.io"


def test_email_of_254_characters_is_accepted(api: Api) -> None:
    email = email_of_length(254)
    assert api.sign_up(f" {email} ").ok()["signUp"]["email"] == email


def test_email_of_255_characters_is_bad_input(api: Api) -> None:
    assert_bad_input(api.sign_up(email_of_length(255)), "email")


@pytest.mark.parametrize(
    "email",
    [
        pytest.param("", id="empty"),
        pytest.param("   ", id="blank"),
        pytest.param("plainaddress", id="no at sign"),
        pytest.param("ann@", id="no domain"),
        pytest.param("@x.io", id="no local part"),
        pytest.param("ann@@x.io", id="two at signs"),
        pytest.param("ann smith@x.io", id="space inside"),
        pytest.param("ann@x", id="domain without a dot"),
        pytest.param("ann@x..io", id="empty domain label"),
        pytest.param("ann\u0000@x.io", id="NUL character"),
    ],
)
def test_sign_up_with_invalid_email_syntax_is_bad_input(api: Api, email: str) -> None:
    assert_bad_input(api.sign_up(email), "email")


@pytest.mark.parametrize(
    "variant",
    ["ann@x.io", "ANN@X.IO", "  aNn@x.Io  "],
    ids=["lower case", "upper case", "mixed case with spaces"],
)
def test_sign_up_of_an_email_in_another_case_is_email_taken(
    api: Api, variant: str
) -> None:
    api.sign_up("Ann@X.io").ok()
    result = api.sign_up(variant, "0ther-Pw!")
    assert result.error_code == "EMAIL_TAKEN"
    assert result.data is None
    assert api.login("ann@x.io", "0ther-Pw!").error_code == "UNAUTHENTICATED"


# The contract's examples of spellings that lower() kept apart but NFKC and full
# case folding make one. Ruff flags their letters as look-alikes of Latin ones
# (RUF001): that is the point here.
FINAL_SIGMA = "σας@x.io"
MEDIAL_SIGMA = "σασ@x.io"  # noqa: RUF001
CAPITALS = "ΣΑΣ@x.io"
FULLWIDTH = "ａｄｍｉｎ@a.io"  # noqa: RUF001
FOLDED_SPELLINGS = [
    pytest.param(FINAL_SIGMA, CAPITALS, id="capital sigma"),
    pytest.param(FINAL_SIGMA, MEDIAL_SIGMA, id="final sigma as medial"),
    pytest.param("admin@a.io", FULLWIDTH, id="fullwidth letters"),
    pytest.param("straße@x.io", "STRASSE@x.io", id="sharp s"),
]


@pytest.mark.parametrize(("email", "variant"), FOLDED_SPELLINGS)
def test_sign_up_of_a_case_folded_variant_is_email_taken(
    api: Api, email: str, variant: str
) -> None:
    api.sign_up(email).ok()
    result = api.sign_up(variant, "0ther-Pw!")
    assert result.error_code == "EMAIL_TAKEN"
    assert result.data is None
    assert api.login(email, "0ther-Pw!").error_code == "UNAUTHENTICATED"


@pytest.mark.parametrize(("email", "variant"), FOLDED_SPELLINGS)
def test_login_with_any_folded_spelling_reaches_the_one_account(
    api: Api, email: str, variant: str
) -> None:
    account = api.sign_up(email).ok()["signUp"]
    reached = api.login(variant).ok()["login"]["user"]
    assert (reached["id"], reached["email"]) == (account["id"], email)


def test_failed_logins_in_any_spelling_count_against_the_one_account(
    api: Api,
) -> None:
    api.sign_up("admin@a.io").ok()
    spellings = ["admin@a.io", "ADMIN@a.io", FULLWIDTH, FULLWIDTH.upper(), "Admin@A.io"]
    for spelling in spellings:  # the per-account limit: 5 per 15 minutes
        assert api.login(spelling, "wrong-Pw1!").error_code == "UNAUTHENTICATED"
    assert api.login(FULLWIDTH, PASSWORD).error_code == "RATE_LIMITED"


def test_me_shows_the_email_as_typed_at_sign_up(api: Api) -> None:
    typed = CAPITALS.replace("x.io", "X.io")
    assert api.sign_up(f" {typed} ").ok()["signUp"]["email"] == CAPITALS
    assert api.me(api.token(MEDIAL_SIGMA)).ok()["me"]["email"] == CAPITALS


def test_user_naming_themselves_in_another_spelling_edits_their_profile(
    api: Api,
) -> None:
    token = api.user(FULLWIDTH)
    updated = api.update_profile(token, email="ADMIN@a.io", city="Oslo").ok()
    assert updated["updateProfile"]["email"] == FULLWIDTH
    assert api.me(token).ok()["me"]["city"] == "Oslo"


def test_admin_finds_an_account_by_any_spelling(admin_api: Api) -> None:
    boss = admin_api.token("boss@acme.io")
    admin_api.sign_up(FINAL_SIGMA).ok()
    result = admin_api.update_profile(boss, email=CAPITALS.upper(), city="Oslo")
    assert result.ok()["updateProfile"]["email"] == FINAL_SIGMA
    found = admin_api.gql(
        "query($search: String) {"
        " users(search: $search) { edges { node { email } } } }",
        {"search": CAPITALS.split("@")[0]},
        token=boss,
    ).ok()
    assert found["users"]["edges"] == [{"node": {"email": FINAL_SIGMA}}]


def test_email_whose_folded_form_is_too_long_is_bad_input(api: Api) -> None:
    # One U+FDFA unfolds into 18 characters: 15 of them make 270, over 254.
    assert_bad_input(api.sign_up("\ufdfa" * 15 + "@x.io"), "email")


# ---- password rules -----------------------------------------------------------


@pytest.mark.parametrize(
    ("email", "password"),
    [
        pytest.param("ann@x.io", "Ab1!xyz", id="7 characters"),
        pytest.param("ann@x.io", "a" * 127 + "1!", id="129 characters"),
        pytest.param("ann@x.io", "12345678!", id="no letter"),
        pytest.param("ann@x.io", "abcdefgh!", id="no digit"),
        pytest.param("ann@x.io", "abcdefg1", id="no other character"),
        pytest.param("ann1@x.io", "ann1@x.io", id="equal to the email"),
        pytest.param("ann@x.io", "Password1!", id="common password"),
    ],
)
def test_sign_up_with_a_password_breaking_a_rule_is_bad_input(
    api: Api, email: str, password: str
) -> None:
    assert_bad_input(api.sign_up(email, password), "password")
    api.sign_up(email).ok()  # nothing was written: the email is still free


@pytest.mark.parametrize(
    "password",
    ["Ab1!xyzw", "a" * 126 + "1!", "Pässwörd1€"],
    ids=["8 characters", "128 characters", "non-ASCII letters and symbol"],
)
def test_sign_up_with_a_password_within_the_rules_can_log_in(
    api: Api, password: str
) -> None:
    api.sign_up("ann@x.io", password).ok()
    api.login("ann@x.io", password).ok()


def test_password_policy_needs_only_the_api_key(api: Api) -> None:
    result = api.gql(
        "{ passwordPolicy { minLength maxLength requiresLetter requiresDigit"
        " requiresSpecial } }"
    )
    assert result.ok() == {
        "passwordPolicy": {
            "minLength": 8,
            "maxLength": 128,
            "requiresLetter": True,
            "requiresDigit": True,
            "requiresSpecial": True,
        }
    }


# ---- C1, C2: every character counts -------------------------------------------


def test_password_of_102_characters_signs_up_and_logs_in(api: Api) -> None:
    api.sign_up("ann@x.io", LONG_PASSWORD).ok()
    assert api.login("ann@x.io", LONG_PASSWORD).ok()["login"]["user"]["email"] == (
        "ann@x.io"
    )


@pytest.mark.parametrize(
    "attempt",
    [LONG_PASSWORD[:72], LONG_PASSWORD[:-1], LONG_PASSWORD + "x"],
    ids=["first 72 characters", "last character missing", "one character more"],
)
def test_login_with_a_near_copy_of_a_long_password_is_unauthenticated(
    api: Api, attempt: str
) -> None:
    api.sign_up("ann@x.io", LONG_PASSWORD).ok()
    assert api.login("ann@x.io", attempt).error_code == "UNAUTHENTICATED"


def test_password_of_506_utf8_bytes_signs_up_and_logs_in(api: Api) -> None:
    api.sign_up("ann@x.io", EMOJI_PASSWORD).ok()
    api.login("ann@x.io", EMOJI_PASSWORD).ok()
    shorter = EMOJI_PASSWORD[1:]
    assert api.login("ann@x.io", shorter).error_code == "UNAUTHENTICATED"


def test_passwords_differing_after_a_nul_are_different_secrets(api: Api) -> None:
    api.sign_up("ann@x.io", "Abc1!\u0000xyz").ok()
    assert api.login("ann@x.io", "Abc1!\u0000zzz").error_code == "UNAUTHENTICATED"
    assert api.login("ann@x.io", "Abc1!").error_code == "UNAUTHENTICATED"
    api.login("ann@x.io", "Abc1!\u0000xyz").ok()


def test_passwords_sharing_their_first_72_bytes_are_different_secrets(
    api: Api,
) -> None:
    shared = "Ab1!" + "x" * 68
    api.sign_up("ann@x.io", shared + "11111111").ok()
    assert api.login("ann@x.io", shared + "22222222").error_code == "UNAUTHENTICATED"
    api.login("ann@x.io", shared + "11111111").ok()


# ---- C3: odd input never breaks the service -----------------------------------


@pytest.mark.parametrize(
    ("variables_json", "field"),
    [
        pytest.param(
            r'{"e": "ann@x.io", "p": "Abc1!\ud800xyz"}', "password", id="password"
        ),
        pytest.param(r'{"e": "ann\ud800@x.io", "p": "Abc1!xyz"}', "email", id="email"),
    ],
)
def test_sign_up_with_a_lone_surrogate_is_bad_input(
    api: Api, variables_json: str, field: str
) -> None:
    query = (
        "mutation($e: String!, $p: String!) {"
        " signUp(input: {email: $e, password: $p}) { id } }"
    )
    result = post_raw(api, query, variables_json)
    assert result.status == 200
    assert_bad_input(result, field)


def test_login_with_a_lone_surrogate_in_the_password_is_bad_input(api: Api) -> None:
    api.sign_up("ann@x.io").ok()
    result = post_raw(api, LOGIN, r'{"email": "ann@x.io", "password": "Abc1!\ud800"}')
    assert_bad_input(result, "password")


def test_login_with_a_lone_surrogate_in_the_email_answers_like_an_unknown_email(
    api: Api,
) -> None:
    """No account can have this email: the answer is the unknown-email one (C5)."""
    result = post_raw(api, LOGIN, r'{"email": "ann\ud800@x.io", "password": "Abc1!x"}')
    unknown = api.login("nobody@x.io", "Abc1!x")
    assert result.error_code == "UNAUTHENTICATED"
    assert without_request_ids(result.body) == without_request_ids(unknown.body)


def test_update_profile_with_a_lone_surrogate_in_the_city_is_bad_input(
    api: Api,
) -> None:
    token = api.user("ann@x.io")
    variables = r'{"input": {"email": "ann@x.io", "city": "Os\ud800lo"}}'
    response = api.client.post(
        "/graphql",
        content=f'{{"query": {json.dumps(UPDATE_PROFILE)}, "variables": {variables}}}',
        headers={
            "X-API-Key": api.api_key,
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
        },
    )
    assert_bad_input(Result(response.status_code, response.json()), "city")


def test_password_of_10000_characters_is_bad_input_for_sign_up_and_login(
    api: Api,
) -> None:
    huge = "Ab1!" * 2500
    assert_bad_input(api.sign_up("ann@x.io", huge), "password")
    assert_bad_input(api.login("ann@x.io", huge), "password")


@pytest.mark.parametrize(
    "password",
    [12345678, True, None, ["Abc1!xyz"], {"p": "Abc1!xyz"}],
    ids=["number", "boolean", "null", "list", "object"],
)
@pytest.mark.parametrize("operation", ["signUp", "login"])
def test_non_string_password_is_refused_as_bad_document_or_input(
    api: Api, operation: str, password: object
) -> None:
    if operation == "signUp":
        result = api.gql(
            SIGN_UP, {"input": {"email": "ann@x.io", "password": password}}
        )
    else:
        result = api.gql(LOGIN, {"email": "ann@x.io", "password": password})
    # A variable of the wrong type breaks the document's variable definitions;
    # BAD_USER_INPUT would fit the contract too. Never INTERNAL_SERVER_ERROR.
    assert result.error_code in {"GRAPHQL_VALIDATION_FAILED", "BAD_USER_INPUT"}, (
        result.body
    )
    assert result.data is None


# ---- C4: storage ----------------------------------------------------------------


def test_passwords_are_stored_as_salted_bcrypt_at_the_configured_cost(
    api: Api,
) -> None:
    api.sign_up("ann@x.io").ok()
    api.sign_up("bob@x.io").ok()
    ann, bob = stored_hash("ann@x.io"), stored_hash("bob@x.io")
    assert ann.startswith("$2b$04$")
    assert bob.startswith("$2b$04$")
    assert ann != bob
    assert PASSWORD not in ann


def test_bcrypt_cost_defaults_to_12(tmp_path: Path) -> None:
    environ = make_environ(tmp_path)
    del environ["USER_SERVICE_BCRYPT_COST"]
    assert Settings().bcrypt_cost == 12
    assert Settings.from_env(environ).bcrypt_cost == 12


# ---- C5, C6: login does not reveal which emails exist ---------------------------


def test_unknown_email_and_wrong_password_get_identical_answers(api: Api) -> None:
    api.sign_up("ann@x.io").ok()
    wrong_password = api.login("ann@x.io", "Wrong-pw1!")
    unknown_email = api.login("nobody@x.io", "Wrong-pw1!")
    assert wrong_password.error_code == "UNAUTHENTICATED"
    assert unknown_email.status == wrong_password.status
    assert without_request_ids(unknown_email.body) == without_request_ids(
        wrong_password.body
    )


def timed_failed_login(api: Api, email: str) -> float:
    started = time.perf_counter()
    result = api.login(email, "Wrong-pw1!")
    elapsed = time.perf_counter() - started
    assert result.error_code == "UNAUTHENTICATED", result.body
    return elapsed


def test_unknown_email_takes_about_as_long_as_a_wrong_password(tmp_path: Path) -> None:
    environ = make_environ(tmp_path, USER_SERVICE_BCRYPT_COST="10", **LOOSE_LIMITS)
    settings = Settings.from_env(environ)
    try:
        with TestClient(create_app(settings)) as client:
            api = Api(client, settings.dev_api_key, settings)
            api.sign_up("ann@x.io").ok()
            timed_failed_login(api, "warm-up@x.io")
            wrong_password: list[float] = []
            unknown_email: list[float] = []
            for attempt in range(10):
                wrong_password.append(timed_failed_login(api, "ann@x.io"))
                unknown_email.append(timed_failed_login(api, f"no{attempt}@x.io"))
    finally:
        close_database()
    ratio = statistics.median(wrong_password) / statistics.median(unknown_email)
    assert 0.5 <= ratio <= 2.0, (wrong_password, unknown_email)


# ---- profile fields -----------------------------------------------------------


@pytest.mark.parametrize("field", ["city", "organization", "designation"])
def test_profile_text_of_100_characters_is_kept_and_101_is_bad_input(
    api: Api, field: str
) -> None:
    assert_bad_input(api.sign_up("ann@x.io", **{field: "x" * 101}), field)
    assert api.sign_up("ann@x.io", **{field: "x" * 100}).ok()["signUp"][field] == (
        "x" * 100
    )


def test_update_profile_with_city_over_100_characters_is_bad_input(api: Api) -> None:
    token = api.user("ann@x.io", city="Oslo")
    assert_bad_input(
        api.update_profile(token, email="ann@x.io", city="x" * 101), "city"
    )
    assert api.me(token).ok()["me"]["city"] == "Oslo"


@pytest.mark.parametrize(
    "mobile",
    ["+4712345678", "1234567", "123456789012345", "+123456789012345"],
    ids=["with plus", "7 digits", "15 digits", "15 digits with plus"],
)
def test_mobile_of_7_to_15_digits_is_kept(api: Api, mobile: str) -> None:
    assert api.sign_up("ann@x.io", mobile=mobile).ok()["signUp"]["mobile"] == mobile


@pytest.mark.parametrize(
    "mobile",
    ["12345", "123456", "+1234567890123456", "12-34-567", "+47 123 45 678", "47+12345"],
    ids=[
        "5 digits",
        "6 digits",
        "16 digits",
        "dashes",
        "spaces inside",
        "plus inside",
    ],
)
def test_mobile_not_of_7_to_15_digits_is_bad_input(api: Api, mobile: str) -> None:
    assert_bad_input(api.sign_up("ann@x.io", mobile=mobile), "mobile")
    token = api.user("ann@x.io", mobile="+4712345678")
    assert_bad_input(
        api.update_profile(token, email="ann@x.io", mobile=mobile), "mobile"
    )


@pytest.mark.parametrize(
    "text",
    ["Os\u0000lo", "Os\nlo", "Os\u001blo", "Os\u007flo"],
    ids=["NUL", "newline", "escape", "delete"],
)
@pytest.mark.parametrize("field", ["city", "organization", "designation"])
def test_profile_text_with_a_control_character_is_bad_input(
    api: Api, field: str, text: str
) -> None:
    assert_bad_input(api.sign_up("ann@x.io", **{field: text}), field)


def test_sign_up_names_every_bad_field_at_once(api: Api) -> None:
    result = api.sign_up("not-an-email", "short", city="x" * 101, mobile="12")
    assert_bad_input(result, "email", "password", "city", "mobile")


# ---- E1: role escalation at sign-up -------------------------------------------


def test_sign_up_as_admin_without_a_token_is_forbidden(api: Api) -> None:
    assert api.sign_up("eve@x.io", role="ADMIN").error_code == "FORBIDDEN"
    assert api.login("eve@x.io").error_code == "UNAUTHENTICATED"


def test_sign_up_as_admin_with_a_user_token_is_forbidden(api: Api) -> None:
    token = api.user("ann@x.io")
    assert api.sign_up("eve@x.io", role="ADMIN", token=token).error_code == "FORBIDDEN"
    assert api.login("eve@x.io").error_code == "UNAUTHENTICATED"


def test_sign_up_as_admin_with_an_admin_token_of_another_tenant_is_unauthenticated(
    api: Api, admin_api: Api
) -> None:
    foreign_token = admin_api.token("boss@acme.io")
    result = api.sign_up("eve@x.io", role="ADMIN", token=foreign_token)
    assert result.error_code == "UNAUTHENTICATED"
    assert api.login("eve@x.io").error_code == "UNAUTHENTICATED"


def test_sign_up_as_admin_with_an_admin_token_of_the_tenant_creates_an_admin(
    admin_api: Api,
) -> None:
    boss = admin_api.token("boss@acme.io")
    created = admin_api.sign_up("second@acme.io", role="ADMIN", token=boss).ok()
    assert (created["signUp"]["email"], created["signUp"]["role"]) == (
        "second@acme.io",
        "ADMIN",
    )
    assert role_of(admin_api, admin_api.token("second@acme.io")) == "ADMIN"


def test_sign_up_with_role_user_needs_no_token(api: Api) -> None:
    assert api.sign_up("ann@x.io", role="USER").ok()["signUp"]["role"] == "USER"


# ---- E2: only declared input fields exist -------------------------------------


@pytest.mark.parametrize("extra", ["tenantId", "passwordHash", "id", "createdAt"])
def test_sign_up_with_an_undeclared_field_is_a_validation_error(
    api: Api, extra: str
) -> None:
    result = api.sign_up("eve@x.io", **{extra: "x"})
    assert result.error_code == "GRAPHQL_VALIDATION_FAILED", result.body
    assert result.data is None
    assert api.login("eve@x.io").error_code == "UNAUTHENTICATED"


@pytest.mark.parametrize("extra", ["tenantId", "passwordHash", "id"])
def test_sign_up_with_an_undeclared_literal_field_is_a_validation_error(
    api: Api, extra: str
) -> None:
    result = api.gql(
        'mutation { signUp(input: {email: "eve@x.io", password: "s3cret-Pw!",'
        f' {extra}: "x"}}) {{ id }} }}'
    )
    assert result.error_code == "GRAPHQL_VALIDATION_FAILED", result.body
    assert api.login("eve@x.io").error_code == "UNAUTHENTICATED"


@pytest.mark.parametrize("extra", ["tenantId", "passwordHash", "id", "createdAt"])
def test_update_profile_with_an_undeclared_field_is_a_validation_error(
    api: Api, extra: str
) -> None:
    token = api.user("ann@x.io", city="Oslo")
    hash_before = stored_hash("ann@x.io")
    result = api.update_profile(token, email="ann@x.io", city="Rome", **{extra: "x"})
    assert result.error_code == "GRAPHQL_VALIDATION_FAILED", result.body
    assert api.me(token).ok()["me"]["city"] == "Oslo"
    assert stored_hash("ann@x.io") == hash_before


# ---- E3: a USER edits only their own profile, never a role ---------------------


def test_user_editing_another_profile_is_forbidden(api: Api) -> None:
    api.sign_up("bob@x.io", city="Oslo").ok()
    token = api.user("ann@x.io")
    result = api.update_profile(token, email="bob@x.io", city="Rome")
    assert result.error_code == "FORBIDDEN"
    bob = api.token("bob@x.io")
    assert api.me(bob).ok()["me"]["city"] == "Oslo"


@pytest.mark.parametrize("role", ["ADMIN", "USER"])
def test_user_setting_their_own_role_is_forbidden_and_role_unchanged(
    api: Api, role: str
) -> None:
    token = api.user("ann@x.io")
    assert api.update_profile(token, email="ann@x.io", role=role).error_code == (
        "FORBIDDEN"
    )
    assert role_of(api, token) == "USER"


def test_user_editing_own_profile_changes_it(api: Api) -> None:
    token = api.user("ann@x.io")
    data = api.update_profile(
        token, email="ANN@x.io", city="Oslo", mobile="+4712345678"
    ).ok()["updateProfile"]
    assert {name: data[name] for name in ("email", "role", "city", "mobile")} == {
        "email": "ann@x.io",
        "role": "USER",
        "city": "Oslo",
        "mobile": "+4712345678",
    }


# ---- E4: an ADMIN stays inside their tenant -----------------------------------


def test_admin_editing_an_email_of_another_tenant_only_is_not_found(
    api: Api, admin_api: Api
) -> None:
    api.sign_up("ann@x.io", city="Oslo").ok()
    boss = admin_api.token("boss@acme.io")
    result = admin_api.update_profile(boss, email="ann@x.io", city="Rome", role="ADMIN")
    assert result.error_code == "NOT_FOUND"
    ann = api.me(api.token("ann@x.io")).ok()["me"]
    assert (ann["city"], ann["role"]) == ("Oslo", "USER")


def test_admin_editing_an_unknown_email_is_not_found(admin_api: Api) -> None:
    boss = admin_api.token("boss@acme.io")
    result = admin_api.update_profile(boss, email="nobody@acme.io", city="Rome")
    assert result.error_code == "NOT_FOUND"


def test_admin_edits_a_user_of_the_tenant_including_role(admin_api: Api) -> None:
    admin_api.sign_up("ann@acme.io").ok()
    boss = admin_api.token("boss@acme.io")
    data = admin_api.update_profile(
        boss, email="ann@acme.io", role="ADMIN", organization="Acme"
    ).ok()["updateProfile"]
    assert (data["role"], data["organization"]) == ("ADMIN", "Acme")


# ---- E5: a tenant keeps at least one ADMIN -------------------------------------


def test_sole_admin_demoting_self_is_forbidden(admin_api: Api) -> None:
    boss = admin_api.token("boss@acme.io")
    result = admin_api.update_profile(boss, email="boss@acme.io", role="USER")
    assert result.error_code == "FORBIDDEN"
    assert role_of(admin_api, boss) == "ADMIN"


def test_demoting_one_of_two_admins_works_and_then_the_last_is_kept(
    admin_api: Api,
) -> None:
    boss = admin_api.token("boss@acme.io")
    admin_api.sign_up("second@acme.io", role="ADMIN", token=boss).ok()
    second = admin_api.token("second@acme.io")
    demoted = admin_api.update_profile(second, email="boss@acme.io", role="USER")
    assert demoted.ok()["updateProfile"]["role"] == "USER"
    assert role_of(admin_api, boss) == "USER"  # applies to the token already issued
    last = admin_api.update_profile(second, email="second@acme.io", role="USER")
    assert last.error_code == "FORBIDDEN"
    assert role_of(admin_api, second) == "ADMIN"


# ---- E6: omitted versus explicit null -----------------------------------------


def test_update_profile_keeps_omitted_fields_and_clears_explicit_nulls(
    api: Api,
) -> None:
    token = api.user("ann@x.io", city="Oslo", organization="Acme")
    kept = api.update_profile(token, email="ann@x.io", organization="Initech").ok()
    assert (kept["updateProfile"]["city"], kept["updateProfile"]["organization"]) == (
        "Oslo",
        "Initech",
    )
    cleared = api.update_profile(token, email="ann@x.io", city=None).ok()
    assert (
        cleared["updateProfile"]["city"],
        cleared["updateProfile"]["organization"],
    ) == (None, "Initech")
    assert api.me(token).ok()["me"]["city"] is None


def test_admin_setting_role_to_null_is_bad_input(admin_api: Api) -> None:
    admin_api.sign_up("ann@acme.io").ok()
    boss = admin_api.token("boss@acme.io")
    assert_bad_input(
        admin_api.update_profile(boss, email="ann@acme.io", role=None), "role"
    )
    assert role_of(admin_api, admin_api.token("ann@acme.io")) == "USER"


def test_update_profile_moves_updated_at_forward_and_keeps_created_at(
    api: Api,
) -> None:
    created = api.sign_up("ann@x.io").ok()["signUp"]
    token = api.token("ann@x.io")
    api.update_profile(token, email="ann@x.io", city="Oslo").ok()
    now = api.gql("{ me { createdAt updatedAt } }", token=token).ok()["me"]
    assert now["createdAt"] == created["createdAt"]
    assert datetime.fromisoformat(now["updatedAt"]) > datetime.fromisoformat(
        created["updatedAt"]
    )


def test_me_without_a_token_is_unauthenticated(api: Api) -> None:
    result = api.me(None)
    assert result.error_code == "UNAUTHENTICATED"
    assert result.data is None


# ---- A5: the same email in two tenants is two accounts --------------------------


def test_same_email_in_two_tenants_is_two_separate_accounts(
    api: Api, admin_api: Api
) -> None:
    api.sign_up("ann@x.io", "Dev-pass1!", city="Oslo").ok()
    admin_api.sign_up("ann@x.io", "Acme-pass1!", city="Rome").ok()
    assert api.login("ann@x.io", "Acme-pass1!").error_code == "UNAUTHENTICATED"
    assert admin_api.login("ann@x.io", "Dev-pass1!").error_code == "UNAUTHENTICATED"
    acme_ann = admin_api.token("ann@x.io", "Acme-pass1!")
    admin_api.update_profile(acme_ann, email="ann@x.io", city="Paris").ok()
    dev_ann = api.me(api.token("ann@x.io", "Dev-pass1!")).ok()["me"]
    assert (dev_ann["city"], dev_ann["email"]) == ("Oslo", "ann@x.io")
    assert admin_api.me(acme_ann).ok()["me"]["city"] == "Paris"
