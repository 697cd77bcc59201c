"""Event webhooks through the real app (CONTRACT.md "Event webhooks"; issue 20):
each change a tenant's endpoint asked for arrives signed per Standard Webhooks
at a real HTTP receiver on loopback, retried with the same id until answered,
in order per user, and to its own tenant's endpoints only."""

import json
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import WebhookVerificationError

from models import Tenant, User
from models.webhook import EVENT_TYPES, WebhookDelivery, WebhookEvent
from provisioning import add_webhook
from settings import Settings
from tests.api.test_account_lifecycle import (
    BOSS,
    CHANGE_URL,
    DELETE_USER,
    change_token,
    confirm,
    request_change,
)
from tests.api.test_recovery import mail_environ
from tests.api.test_roles import ADD, DEFINE_GROUP, DEFINE_ROLE, GRANT
from tests.conftest import PASSWORD, Api
from tests.mail_server import Inbox
from tests.races import at_once
from tests.test_readme import code_blocks, section
from tests.webhook_receiver import Received, Receiver, running_receiver

ANN, NEW, BOB = "ann@x.io", "ann.new@x.io", "bob@x.io"
WRONG = "wrong-Pw1!"
# Retries at once and often, so a test waits seconds, not minutes.
FAST_WEBHOOKS = {
    "USER_SERVICE_WEBHOOK_RETRY_DELAYS": "0.2,0.2,0.2,0.2,0.2,0.2,0.2,0.2",
    "USER_SERVICE_WEBHOOK_POLL_INTERVAL": "0.1",
    "USER_SERVICE_WEBHOOK_TIMEOUT": "2",
    "USER_SERVICE_WEBHOOK_LEASE": "3",
}
SET_ACTIVE = """mutation($email: String!, $active: Boolean!) {
  setUserActive(email: $email, active: $active) { email active } }"""
DELETE_ROLE = "mutation($name: String!) { deleteRole(name: $name) }"
DELETE_GROUP = "mutation($name: String!) { deleteGroup(name: $name) }"
REVOKE_SESSIONS = "mutation($email: String!) { revokeSessions(email: $email) }"
FORBIDDEN_KEYS = ("password", "hash", "secret", "token")


@pytest.fixture
def environ(tmp_path: Path, inbox: Inbox) -> dict[str, str]:
    """Overrides conftest's: fast retries, and mail (for email changes) to `inbox`."""
    return mail_environ(
        tmp_path, inbox.url, USER_SERVICE_EMAIL_CHANGE_URL=CHANGE_URL, **FAST_WEBHOOKS
    )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as receiver:
        yield receiver


def register(settings: Settings, tenant_name: str, url: str, *events: str) -> str:
    """`webhook add`, as the command does it; the endpoint's secret."""
    tenant = Tenant.by_name(tenant_name)
    assert tenant is not None
    return add_webhook(settings, tenant, url, list(events))[1]


def user_id(api: Api, token: str) -> str:
    return str(api.gql("{ me { id } }", token=token).ok()["me"]["id"])


def deliveries_of(event_type: str) -> list[WebhookDelivery]:
    return list(
        WebhookDelivery.select()
        .join(WebhookEvent)
        .where(WebhookEvent.type == event_type)
    )


def wait_until(condition: Any, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "not within the wait"
        time.sleep(0.05)


def every_event_of_ann(admin_api: Api, inbox: Inbox) -> dict[str, str]:
    """Cause each event type once, for ANN; what must never show in a payload."""
    boss = admin_api.token(BOSS)
    admin_api.sign_up(ANN).ok()  # user.created
    login = admin_api.login(ANN).ok()["login"]
    ann = login["accessToken"]
    admin_api.update_profile(ann, email=ANN, city="Oslo").ok()  # user.updated
    request_change(admin_api, ann).ok()
    confirm(admin_api, change_token(inbox)).ok()  # user.updated (email)
    admin_api.gql(
        DEFINE_ROLE, {"name": "auditor", "permissions": ["reports:read"]}, token=boss
    ).ok()
    admin_api.gql(GRANT, {"e": NEW, "r": "auditor"}, token=boss).ok()  # roles_changed
    hashed = str(User.get(User.email == NEW).password_hash)
    admin_api.gql(SET_ACTIVE, {"email": NEW, "active": False}, token=boss).ok()
    admin_api.gql(SET_ACTIVE, {"email": NEW, "active": True}, token=boss).ok()
    for _ in range(6):  # past the limit of 5: user.locked, once
        admin_api.login(NEW, WRONG)
    admin_api.gql(REVOKE_SESSIONS, {"email": NEW}, token=boss).ok()
    admin_api.gql(DELETE_USER, {"email": NEW}, token=boss).ok()  # user.deleted
    return {
        "password": PASSWORD,
        "wrong password": WRONG,
        "password hash": hashed,
        "access token": ann,
        "refresh token": login["refreshToken"],
        "admin token": boss,
        "api key": admin_api.api_key,
    }


def assert_holds_no_secret(received: Received, secrets: dict[str, str]) -> None:
    for name, secret in secrets.items():
        assert secret not in received.body, f"{received.type} holds the {name}"

    def keys(value: Any) -> Iterator[str]:
        if isinstance(value, dict):
            for key, inner in value.items():
                yield key
                yield from keys(inner)
        elif isinstance(value, list):
            for inner in value:
                yield from keys(inner)

    for key in keys(received.payload):
        assert not any(word in key.lower() for word in FORBIDDEN_KEYS), key


def test_every_event_type_arrives_signed_in_order_and_holds_no_secret(
    admin_api: Api, settings: Settings, receiver: Receiver, inbox: Inbox
) -> None:
    secret = register(settings, "acme", receiver.url)
    secrets = every_event_of_ann(admin_api, inbox)
    arrived = receiver.wait_for(len(EVENT_TYPES) + 1)
    assert [one.type for one in arrived] == [
        "user.created",
        "user.updated",
        "user.updated",
        "user.roles_changed",
        "user.deactivated",
        "user.reactivated",
        "user.locked",
        "user.sessions_revoked",
        "user.deleted",
    ]
    payloads = [one.verified(secret) for one in arrived]
    tenant = Tenant.by_name("acme")
    assert tenant is not None
    ann_id = payloads[0]["data"]["user"]["id"]
    for payload in payloads:
        assert payload["data"]["tenant"] == str(tenant.id)
        assert payload["data"]["user"]["id"] == ann_id
    created, _, email_changed, roles_changed, deactivated = (
        payload["data"]["user"] for payload in payloads[:5]
    )
    assert (created["email"], created["role"], created["roles"]) == (
        ANN,
        "USER",
        ["USER"],
    )
    assert email_changed["email"] == NEW
    assert roles_changed["roles"] == ["USER", "auditor"]
    assert deactivated["active"] is False
    assert payloads[-1]["data"] == {"tenant": str(tenant.id), "user": {"id": ann_id}}
    secrets["webhook secret"] = secret
    for one in arrived:
        assert_holds_no_secret(one, secrets)
    assert len(set(receiver.ids())) == len(arrived)


def test_a_deleted_account_leaves_only_its_id_in_the_outbox(
    admin_api: Api, settings: Settings, receiver: Receiver, inbox: Inbox
) -> None:
    receiver.failures_left = 1000  # nothing is delivered: every event stays
    register(settings, "acme", receiver.url)
    every_event_of_ann(admin_api, inbox)
    bodies = [event.body for event in WebhookEvent.select()]
    assert len(bodies) == len(EVENT_TYPES) + 1
    for body in bodies:
        assert ANN not in body
        assert NEW not in body
        assert set(json.loads(body)["data"]["user"]) == {"id"}


def test_an_endpoint_gets_only_the_event_types_it_names(
    admin_api: Api, settings: Settings, receiver: Receiver
) -> None:
    secret = register(settings, "acme", receiver.url, "user.deleted")
    boss = admin_api.token(BOSS)
    admin_api.sign_up(ANN).ok()
    admin_api.gql(DELETE_USER, {"email": ANN}, token=boss).ok()
    [deleted] = receiver.wait_for(1)
    assert deleted.verified(secret)["type"] == "user.deleted"
    assert deliveries_of("user.created") == []


def test_an_endpoint_never_receives_another_tenants_events(
    api: Api, admin_api: Api, settings: Settings, receiver: Receiver
) -> None:
    with running_receiver() as other:
        register(settings, "acme", receiver.url)
        register(settings, "dev", other.url)
        admin_api.sign_up(ANN).ok()
        api.sign_up(BOB).ok()
        [acme_event] = receiver.wait_for(1)
        [dev_event] = other.wait_for(1)
        # Later events reach each receiver after these: none came meanwhile.
        admin_api.sign_up("carl@x.io").ok()
        api.sign_up("dora@x.io").ok()
        acme_events, dev_events = receiver.wait_for(2), other.wait_for(2)
    acme, dev = Tenant.by_name("acme"), Tenant.by_name("dev")
    assert acme is not None
    assert dev is not None
    assert {one.payload["data"]["tenant"] for one in acme_events} == {str(acme.id)}
    assert {one.payload["data"]["tenant"] for one in dev_events} == {str(dev.id)}
    assert [one.payload["data"]["user"]["email"] for one in acme_events] == [
        ANN,
        "carl@x.io",
    ]
    assert acme_event.id != dev_event.id


def test_a_receiver_that_is_down_then_fails_gets_the_event_again_with_the_same_id(
    admin_api: Api, settings: Settings
) -> None:
    receiver = Receiver()  # nothing listens on its port yet
    secret = register(settings, "acme", receiver.url)
    admin_api.sign_up(ANN).ok()
    wait_until(lambda: deliveries_of("user.created")[0].attempts >= 2)
    receiver.failures_left = 2  # up, but answering 503 twice
    receiver.start()
    try:
        arrived = receiver.wait_for(3)
        [delivery] = deliveries_of("user.created")
        wait_until(lambda: WebhookDelivery.get_by_id(delivery.id).delivered_at)
    finally:
        receiver.stop()
    assert len({one.id for one in arrived}) == 1
    assert [one.verified(secret)["type"] for one in arrived] == ["user.created"] * 3
    done = WebhookDelivery.get_by_id(delivery.id)
    assert done.next_attempt_at is None
    assert done.last_status == "204"


def test_events_of_one_user_wait_for_the_earlier_one(
    admin_api: Api, settings: Settings, receiver: Receiver
) -> None:
    receiver.failures_left = 4  # the first event is refused a few times
    register(settings, "acme", receiver.url)
    token = admin_api.user(ANN)
    for city in ("A", "B", "C"):
        admin_api.update_profile(token, email=ANN, city=city).ok()
    arrived = receiver.wait_for(4 + 4)
    cities = [one.payload["data"]["user"]["city"] for one in arrived]
    assert cities == [None] * 5 + ["A", "B", "C"]
    ids = [one.id for one in arrived]
    assert ids[:5] == [ids[0]] * 5


def test_events_of_racing_grants_each_see_every_change_committed_before_them(
    admin_api: Api, settings: Settings, receiver: Receiver
) -> None:
    """Grants touch no row of the account, so nothing else makes them wait:
    the account is locked when an event is stored, and each event, read after
    the lock, holds every grant that committed before it."""
    boss = admin_api.token(BOSS)
    admin_api.sign_up(ANN).ok()
    names = [f"role-{n}" for n in range(8)]
    for name in names:
        role = {"name": name, "permissions": ["reports:read"]}
        admin_api.gql(DEFINE_ROLE, role, token=boss).ok()
    register(settings, "acme", receiver.url, "user.roles_changed")
    grants = at_once(
        [
            partial(admin_api.gql, GRANT, {"e": ANN, "r": name}, token=boss)
            for name in names
        ]
    )
    assert [grant.error_code for grant in grants] == [None] * len(names)
    events = WebhookEvent.select().order_by(WebhookEvent.id)
    held = [json.loads(event.body)["data"]["user"]["roles"] for event in events]
    # USER, then one more granted role in each event: in the order they commit.
    assert [len(roles) for roles in held] == list(range(2, len(names) + 2)), held


def test_a_redirect_is_not_followed_but_retried(
    admin_api: Api, settings: Settings, receiver: Receiver
) -> None:
    with running_receiver() as elsewhere:
        receiver.redirect_to = elsewhere.url
        register(settings, "acme", receiver.url)
        admin_api.sign_up(ANN).ok()
        receiver.wait_for(2)
        assert elsewhere.received == []
    [delivery] = deliveries_of("user.created")
    assert delivery.delivered_at is None


def test_a_receiver_that_does_not_answer_in_time_gets_the_event_again(
    admin_api: Api, settings: Settings, receiver: Receiver
) -> None:
    receiver.holds_left = 1  # the first request is never answered in time
    register(settings, "acme", receiver.url)
    admin_api.sign_up(ANN).ok()
    first, second = receiver.wait_for(2)
    assert first.id == second.id
    [delivery] = deliveries_of("user.created")
    wait_until(lambda: WebhookDelivery.get_by_id(delivery.id).delivered_at)
    assert WebhookDelivery.get_by_id(delivery.id).attempts == 2


def test_deleting_a_role_or_group_tells_the_webhooks_of_every_holder(
    admin_api: Api, settings: Settings, receiver: Receiver
) -> None:
    boss = admin_api.token(BOSS)
    admin_api.sign_up(ANN).ok()
    admin_api.sign_up(BOB).ok()
    role = {"name": "auditor", "permissions": ["reports:read"]}
    admin_api.gql(DEFINE_ROLE, role, token=boss).ok()
    admin_api.gql(GRANT, {"e": ANN, "r": "auditor"}, token=boss).ok()
    admin_api.gql(DEFINE_GROUP, {"n": "team", "r": ["auditor"]}, token=boss).ok()
    admin_api.gql(ADD, {"e": BOB, "g": "team"}, token=boss).ok()
    register(settings, "acme", receiver.url, "user.roles_changed")
    admin_api.gql(DELETE_ROLE, {"name": "auditor"}, token=boss).ok()
    admin_api.gql(DELETE_GROUP, {"name": "team"}, token=boss).ok()
    users = [one.payload["data"]["user"] for one in receiver.wait_for(3)]
    told = sorted((user["email"], user["roles"], user["groups"]) for user in users)
    assert told == [
        (ANN, ["USER"], []),
        (BOB, ["USER"], []),
        (BOB, ["USER"], ["team"]),
    ]


def test_the_readme_python_recipe_verifies_a_delivery_and_drops_its_repeat(
    admin_api: Api, settings: Settings, receiver: Receiver
) -> None:
    secret = register(settings, "acme", receiver.url)
    admin_api.sign_up(ANN).ok()
    [delivery] = receiver.wait_for(1)
    [recipe] = code_blocks(section("## Event webhooks"), "python")
    namespace: dict[str, Any] = {}
    exec(recipe.replace("whsec_…", secret), namespace)  # noqa: S102  # our README
    body = delivery.body.encode()
    assert namespace["receive"](body, delivery.headers)["type"] == "user.created"
    assert namespace["receive"](body, delivery.headers) is None
    forged = body.replace(ANN.encode(), b"eve@x.io")
    with pytest.raises(WebhookVerificationError):
        namespace["receive"](forged, delivery.headers)


def test_a_change_that_is_undone_sends_no_event(
    admin_api: Api, settings: Settings, receiver: Receiver
) -> None:
    register(settings, "acme", receiver.url)
    boss = admin_api.token(BOSS)
    # The last holder of roles:manage: both changes are rolled back.
    assert admin_api.gql(DELETE_USER, {"email": BOSS}, token=boss).error_code == (
        "FORBIDDEN"
    )
    refused = admin_api.gql(SET_ACTIVE, {"email": BOSS, "active": False}, token=boss)
    assert refused.error_code == "FORBIDDEN"
    admin_api.sign_up(ANN).ok()
    assert [one.type for one in receiver.wait_for(1)] == ["user.created"]
    assert [event.type for event in WebhookEvent.select()] == ["user.created"]
