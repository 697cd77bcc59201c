"""An MFA token lives 5 minutes (CONTRACT.md "Two-factor authentication"), tested
so that only the expiry can refuse it (issue 12, item 17).

The challenge's expiry is moved into the past in the database (no sleep), and
the code sent with it is one the service would accept: an unused recovery code,
or the TOTP code of a step confirmTotp has not spent. Each test then shows that
the very same code still works with a live challenge, so the refusal came from
the expiry and nothing else.
"""

from datetime import UTC, datetime, timedelta

from auth.totp import code_at
from models import MfaChallenge
from models.db import utcnow
from tests.conftest import Api, Result

ANN = "ann@x.io"
ENROLL = "mutation { enrollTotp { secret } }"
CONFIRM = "mutation($code: String!) { confirmTotp(code: $code) }"
VERIFY_MFA = """mutation($token: String!, $code: String!) {
  verifyMfa(mfaToken: $token, code: $code) { accessToken user { email } } }"""


def with_totp(api: Api) -> tuple[str, list[str]]:
    """Ann with two-factor on (confirmed with this step's code): secret, codes."""
    token = api.user(ANN)
    secret = api.gql(ENROLL, token=token).ok()["enrollTotp"]["secret"]
    this_step = code_at(secret, datetime.now(UTC))
    codes = api.gql(CONFIRM, {"code": this_step}, token=token).ok()["confirmTotp"]
    return secret, list(codes)


def mfa_token(api: Api) -> str:
    login = api.login(ANN)
    assert login.error_code == "MFA_REQUIRED", login.body
    return str(login.extensions["mfaToken"])


def verify(api: Api, token: str, code: str) -> Result:
    return api.gql(VERIFY_MFA, {"token": token, "code": code})


def expire_challenges() -> None:
    MfaChallenge.update(expires_at=utcnow() - timedelta(seconds=1)).execute()


def assert_expired(result: Result) -> None:
    assert result.data is None
    assert result.error_code == "UNAUTHENTICATED", result.body
    assert result.errors[0]["message"] == (
        "The MFA token is invalid or expired; log in again."
    )


def test_expired_mfa_token_is_refused_with_an_unused_recovery_code(api: Api) -> None:
    _, recovery_codes = with_totp(api)
    expired = mfa_token(api)
    expire_challenges()

    assert_expired(verify(api, expired, recovery_codes[0]))

    live = verify(api, mfa_token(api), recovery_codes[0]).ok()
    assert live["verifyMfa"]["user"] == {"email": ANN}


def test_expired_mfa_token_is_refused_with_an_unspent_totp_code(api: Api) -> None:
    secret, _ = with_totp(api)
    # confirmTotp spent this step's code; the next step's is fresh and, one
    # step of drift being allowed, accepted now.
    next_step = code_at(secret, datetime.now(UTC) + timedelta(seconds=30))
    expired = mfa_token(api)
    expire_challenges()

    assert_expired(verify(api, expired, next_step))

    live = verify(api, mfa_token(api), next_step).ok()
    assert live["verifyMfa"]["user"] == {"email": ANN}
