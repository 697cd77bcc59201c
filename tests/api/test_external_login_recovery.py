"""External identities and account recovery: a squatter's link does not
survive the mailbox owner's password reset (account pre-hijacking), and an
account made by an external sign-up sets its first password with a reset."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from models import ExternalIdentity
from tests.api.test_external_login import (
    UNLINK,
    complete,
    identities,
    register,
    sign_in,
    start,
)
from tests.api.test_recovery import (
    NEW_PASSWORD,
    mail_environ,
    request_reset,
    reset,
    reset_token,
)
from tests.conftest import Api
from tests.identity_providers import authorize, running_openid_provider
from tests.mail_server import Inbox


@pytest.fixture(scope="module")
def issuer() -> Iterator[str]:
    with running_openid_provider() as issuer:
        yield issuer


@pytest.fixture
def environ(tmp_path: Path, inbox: Inbox) -> dict[str, str]:
    """Overrides conftest's: `api` mails to `inbox`."""
    return mail_environ(tmp_path, inbox.url)


def test_a_squatters_link_goes_when_the_mailbox_owner_resets_the_password(
    api: Api, issuer: str, inbox: Inbox
) -> None:
    provider = register(api, issuer, allow_sign_up=False)
    # The squatter signs up with the victim's address and links their own
    # provider account to it.
    squatter = api.user("victim@x.io")
    back = authorize(start(api, provider, token=squatter), "eve")
    complete(api, back, token=squatter).ok()
    assert sign_in(api, provider, "eve").ok()  # the squatter's way in works
    # The mailbox owner takes the account back with a reset link.
    request_reset(api, "victim@x.io").ok()
    reset(api, reset_token(inbox, "victim@x.io")).ok()
    assert ExternalIdentity.select().count() == 0
    # No longer linked, and never linked by email: the provider has not verified it.
    assert sign_in(api, provider, "eve").error_code == "EMAIL_TAKEN"


def test_an_account_without_password_sets_one_with_a_reset_and_may_unlink(
    api: Api, issuer: str, inbox: Inbox
) -> None:
    provider = register(api, issuer)
    token = sign_in(api, provider, "ann").ok()["completeExternalLogin"]["accessToken"]
    request_reset(api, "ann@x.io").ok()
    reset(api, reset_token(inbox, "ann@x.io")).ok()
    token = api.token("ann@x.io", NEW_PASSWORD)
    assert identities(api, token)[0]["subject"] == "ann"
    unlinked = api.gql(UNLINK, {"provider": provider}, token=token).ok()
    assert unlinked["unlinkExternalIdentity"]["externalIdentities"] == []
