"""Two-factor authentication through HTTP, with real codes computed from the secret."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
import pytest

from auth.totp import code_at
from tests.conftest import PASSWORD, Api

ENROLL = "mutation { enrollTotp { secret otpauthUri qrCodeSvg } }"
CONFIRM = "mutation($code: String!) { confirmTotp(code: $code) }"
VERIFY = """mutation($token: String!, $code: String!) {
  verifyMfa(mfaToken: $token, code: $code) {
    accessToken refreshToken user { email mfaEnabled } } }"""
DISABLE = """mutation($password: String!, $code: String!) {
  disableTotp(password: $password, code: $code) }"""
RESET = 'mutation { resetMfa(email: "ann@acme.io") }'


def now_code(secret: str, *, steps: int = 0) -> str:
    """The code of this step (or one near it). confirmTotp spends the current
    step's code, so logins right after it use the next one."""
    return code_at(secret, datetime.now(UTC) + timedelta(seconds=30 * steps))


def enroll(api: Api, token: str) -> tuple[str, list[str]]:
    """Turn two-factor on; return the secret and the recovery codes."""
    secret = api.gql(ENROLL, token=token).ok()["enrollTotp"]["secret"]
    codes = api.gql(CONFIRM, {"code": now_code(secret)}, token=token).ok()[
        "confirmTotp"
    ]
    return secret, codes


def mfa_token(api: Api, email: str) -> str:
    result = api.login(email)
    assert result.error_code == "MFA_REQUIRED", result.body
    assert result.data is None
    return str(result.extensions["mfaToken"])


def verify(api: Api, token: str, code: str) -> Any:
    return api.gql(VERIFY, {"token": token, "code": code})


def test_enroll_returns_secret_uri_with_tenant_issuer_and_qr_svg(
    admin_api: Api,
) -> None:
    token = admin_api.user("ann@acme.io")
    enrollment = admin_api.gql(ENROLL, token=token).ok()["enrollTotp"]
    uri = enrollment["otpauthUri"]
    assert uri.startswith("otpauth://totp/acme:ann%40acme.io?secret=")
    assert "issuer=acme" in uri
    assert pyotp.parse_uri(uri).secret == enrollment["secret"]
    assert enrollment["qrCodeSvg"].startswith("<svg")
    # Nothing is on until confirmed.
    assert (
        admin_api.login("ann@acme.io").ok()["login"]["user"]["email"] == "ann@acme.io"
    )
    assert admin_api.gql("{ me { mfaEnabled } }", token=token).ok() == {
        "me": {"mfaEnabled": False}
    }


def test_confirm_with_a_wrong_code_enables_nothing(api: Api) -> None:
    token = api.user("ann@x.io")
    api.gql(ENROLL, token=token).ok()
    result = api.gql(CONFIRM, {"code": "000000"}, token=token)
    assert result.error_code == "BAD_USER_INPUT"
    assert list(result.extensions["fields"]) == ["code"]
    assert api.login("ann@x.io").ok()


def test_confirm_returns_ten_distinct_recovery_codes(api: Api) -> None:
    token = api.user("ann@x.io")
    _, codes = enroll(api, token)
    assert len(codes) == len(set(codes)) == 10
    assert api.gql("{ me { mfaEnabled } }", token=token).ok() == {
        "me": {"mfaEnabled": True}
    }


def test_login_needs_the_second_factor_then_gives_the_usual_pair(api: Api) -> None:
    secret, _ = enroll(api, api.user("ann@x.io"))
    mfa = mfa_token(api, "ann@x.io")
    payload = verify(api, mfa, now_code(secret, steps=1)).ok()["verifyMfa"]
    assert payload["user"] == {"email": "ann@x.io", "mfaEnabled": True}
    assert payload["refreshToken"]
    assert api.me(payload["accessToken"]).ok()["me"]["email"] == "ann@x.io"


def test_a_used_code_is_refused_when_replayed(api: Api) -> None:
    secret, _ = enroll(api, api.user("ann@x.io"))
    confirmed_with = now_code(secret)
    assert verify(api, mfa_token(api, "ann@x.io"), confirmed_with).error_code == (
        "UNAUTHENTICATED"
    )
    code = now_code(secret, steps=1)  # one step of drift is allowed
    verify(api, mfa_token(api, "ann@x.io"), code).ok()
    assert verify(api, mfa_token(api, "ann@x.io"), code).error_code == "UNAUTHENTICATED"


def test_a_code_two_steps_away_is_refused(api: Api) -> None:
    secret, _ = enroll(api, api.user("ann@x.io"))
    result = verify(api, mfa_token(api, "ann@x.io"), now_code(secret, steps=3))
    assert result.error_code == "UNAUTHENTICATED"


def test_each_recovery_code_works_once(api: Api) -> None:
    _, codes = enroll(api, api.user("ann@x.io"))
    assert verify(api, mfa_token(api, "ann@x.io"), codes[0].lower()).ok()
    assert (
        verify(api, mfa_token(api, "ann@x.io"), codes[0]).error_code
        == "UNAUTHENTICATED"
    )
    assert verify(api, mfa_token(api, "ann@x.io"), codes[1]).ok()


def test_an_mfa_token_works_once(api: Api) -> None:
    _, codes = enroll(api, api.user("ann@x.io"))
    mfa = mfa_token(api, "ann@x.io")
    verify(api, mfa, codes[0]).ok()
    assert verify(api, mfa, codes[1]).error_code == "UNAUTHENTICATED"


def test_a_foreign_tenants_mfa_token_is_refused(api: Api, admin_api: Api) -> None:
    secret, _ = enroll(api, api.user("ann@x.io"))
    mfa = mfa_token(api, "ann@x.io")
    code = now_code(secret, steps=1)
    assert verify(admin_api, mfa, code).error_code == "UNAUTHENTICATED"
    assert verify(api, mfa, code).ok()  # still good in its own tenant


@pytest.mark.parametrize(
    "token", ["", "junk", "x" * 5000], ids=["empty", "junk", "huge"]
)
def test_junk_mfa_tokens_are_unauthenticated(api: Api, token: str) -> None:
    assert verify(api, token, "123456").error_code == "UNAUTHENTICATED"


def test_guessing_codes_hits_the_rate_limit(api: Api) -> None:
    secret, _ = enroll(api, api.user("ann@x.io"))
    mfa = mfa_token(api, "ann@x.io")
    wrong = f"{(int(now_code(secret)) + 500_000) % 1_000_000:06d}"
    answers = [verify(api, mfa, wrong).error_code for _ in range(6)]
    assert answers == ["UNAUTHENTICATED"] * 5 + ["RATE_LIMITED"]
    assert verify(api, mfa, now_code(secret)).error_code == "RATE_LIMITED"


def test_several_verify_mfa_fields_in_one_document_are_refused(api: Api) -> None:
    query = (
        'mutation { a: verifyMfa(mfaToken: "x", code: "1") { accessToken }'
        ' b: verifyMfa(mfaToken: "x", code: "2") { accessToken } }'
    )
    assert api.gql(query).error_code == "GRAPHQL_VALIDATION_FAILED"


def test_disable_needs_password_and_code_and_ends_other_sessions(api: Api) -> None:
    token = api.user("ann@x.io")
    secret, recovery = enroll(api, token)
    other = verify(api, mfa_token(api, "ann@x.io"), recovery[0]).ok()["verifyMfa"]
    current = verify(api, mfa_token(api, "ann@x.io"), recovery[1]).ok()
    current_token = current["verifyMfa"]["accessToken"]
    code = now_code(secret, steps=1)
    wrong_password = api.gql(
        DISABLE, {"password": "wr0ng-Pass!", "code": code}, token=current_token
    )
    assert wrong_password.error_code == "UNAUTHENTICATED"
    wrong_code = api.gql(
        DISABLE, {"password": PASSWORD, "code": "000000"}, token=current_token
    )
    assert wrong_code.error_code == "UNAUTHENTICATED"
    done = api.gql(DISABLE, {"password": PASSWORD, "code": code}, token=current_token)
    assert done.ok() == {"disableTotp": True}
    assert api.me(other["accessToken"]).error_code == "UNAUTHENTICATED"
    assert api.me(current_token).ok()
    assert api.login("ann@x.io").ok()  # no second factor any more


def test_admin_resets_a_users_second_factor(admin_api: Api) -> None:
    secret, _ = enroll(admin_api, admin_api.user("ann@acme.io"))
    mfa = mfa_token(admin_api, "ann@acme.io")
    ann = verify(admin_api, mfa, now_code(secret, steps=1)).ok()
    boss = admin_api.token("boss@acme.io")
    assert admin_api.gql(RESET, token=boss).ok() == {"resetMfa": True}
    assert admin_api.me(ann["verifyMfa"]["accessToken"]).error_code == "UNAUTHENTICATED"
    assert admin_api.login("ann@acme.io").ok()


def test_user_cannot_reset_second_factor(admin_api: Api) -> None:
    token = admin_api.user("ann@acme.io")
    assert admin_api.gql(RESET, token=token).error_code == "FORBIDDEN"


def test_admin_cannot_reset_another_tenants_user(api: Api, admin_api: Api) -> None:
    enroll(api, api.user("ann@acme.io"))  # in the dev tenant
    boss = admin_api.token("boss@acme.io")
    assert admin_api.gql(RESET, token=boss).error_code == "NOT_FOUND"
    assert mfa_token(api, "ann@acme.io")


def test_totp_secret_is_sealed_at_rest(api: Api) -> None:
    from models import User

    secret, _ = enroll(api, api.user("ann@x.io"))
    stored = User.get(User.email_key == "ann@x.io").totp_secret
    assert stored is not None
    assert secret not in stored
    assert stored.startswith("gAAAA")  # a Fernet token
