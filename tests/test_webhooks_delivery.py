"""Webhook delivery under concurrency and crashes: claimers racing for the same
deliveries never share one, two server processes never send an event twice, a
server killed with SIGKILL mid-delivery delivers after its restart; and Node's
standardwebhooks verifies what the service signs (CONTRACT.md "Event webhooks")."""

import json
import time
from collections import Counter
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from app import create_app, prepare_database
from models import Action, AuditEvent, Tenant, User
from models.db import close_database
from models.webhook import WebhookDelivery
from provisioning import add_webhook, new_tenant
from settings import Settings
from tests.conftest import PASSWORD, Api, make_environ
from tests.node import node_packages, run_node
from tests.races import at_once
from tests.servers import LOOSE_LIMITS, Servers, create_tenant, run_cli
from tests.webhook_receiver import Receiver, running_receiver

STANDARD_WEBHOOKS = "standardwebhooks@1.1.1"
FAST_WEBHOOKS = {
    "USER_SERVICE_WEBHOOK_RETRY_DELAYS": "0.2,0.2,0.2,0.2,0.2",
    "USER_SERVICE_WEBHOOK_POLL_INTERVAL": "0.1",
    "USER_SERVICE_WEBHOOK_TIMEOUT": "2",
    "USER_SERVICE_WEBHOOK_LEASE": "3",
}
CLAIMERS = 8
EVENTS = 40


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as receiver:
        yield receiver


@pytest.fixture
def servers() -> Iterator[Servers]:
    started = Servers()
    yield started
    started.stop_all()


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Settings]:
    """A migrated database, no app: EVENTS accounts of tenant acme signed up,
    each with one delivery pending to one endpoint."""
    settings = Settings.from_env(make_environ(tmp_path))
    prepare_database(settings)
    new_tenant(settings, "acme")
    tenant = Tenant.by_name("acme")
    assert tenant is not None
    add_webhook(settings, tenant, "http://127.0.0.1:9/hooks", [])
    for number in range(EVENTS):
        user = User.register(tenant, f"user{number}@x.io", "not-a-hash")
        AuditEvent.record(tenant, Action.SIGNED_UP, target=user)
    yield settings
    close_database()


def claim_all(owner: str) -> list[int]:
    """Claim, a few at a time, until nothing is left; the ids claimed."""
    claimed: list[int] = []
    while batch := WebhookDelivery.claim_due(owner=owner, lease=60, limit=3):
        claimed += [delivery.id for delivery in batch]
    close_database()
    return claimed


def test_racing_claimers_never_claim_one_delivery_twice(outbox: Settings) -> None:
    claims = at_once([partial(claim_all, f"claimer-{n}") for n in range(CLAIMERS)])
    counted = Counter(delivery for claimed in claims for delivery in claimed)
    assert len(counted) == EVENTS
    assert set(counted.values()) == {1}


def test_a_claim_comes_back_once_its_lease_runs_out(outbox: Settings) -> None:
    taken = WebhookDelivery.claim_due(owner="dead", lease=0.2, limit=EVENTS)
    assert len(taken) == EVENTS
    assert WebhookDelivery.claim_due(owner="other", lease=60, limit=EVENTS) == []
    time.sleep(0.3)
    again = WebhookDelivery.claim_due(owner="other", lease=60, limit=EVENTS)
    assert len(again) == EVENTS
    # The dead claimer's late answer counts for nothing: the claim is no longer its.
    assert not taken[0].finish(owner="dead", status="204", delivered=True, delays=())
    assert WebhookDelivery.get_by_id(taken[0].id).delivered_at is None


@pytest.mark.slow
def test_two_server_processes_send_each_event_once(
    tmp_path: Path, servers: Servers, receiver: Receiver
) -> None:
    environ = make_environ(tmp_path, **LOOSE_LIMITS, **FAST_WEBHOOKS)
    api_key = create_tenant(environ, "acme", "boss@acme.io")
    secret = webhook_add(environ, "acme", receiver.url)
    first, second = servers.start(environ), servers.start(environ)
    apis = [first.api(api_key), second.api(api_key)]
    for number in range(20):
        apis[number % 2].sign_up(f"user{number}@x.io").ok()
    arrived = receiver.wait_for(20)
    ids = [one.id for one in arrived]
    assert len(set(ids)) == 20
    emails = {one.verified(secret)["data"]["user"]["email"] for one in arrived}
    assert emails == {f"user{number}@x.io" for number in range(20)}
    assert len(receiver.received) == 20


@pytest.mark.slow
def test_a_server_killed_mid_delivery_delivers_after_its_restart(
    tmp_path: Path, servers: Servers, receiver: Receiver
) -> None:
    environ = make_environ(tmp_path, **FAST_WEBHOOKS)
    api_key = create_tenant(environ, "acme", "boss@acme.io")
    secret = webhook_add(environ, "acme", receiver.url)
    receiver.holds_left = 1  # the first post is received, never answered
    server = servers.start(environ)
    server.api(api_key).sign_up("ann@x.io").ok()
    [held] = receiver.wait_for(1)
    servers.kill(server)  # between the commit and a recorded delivery
    servers.stop(server)
    receiver.released.set()
    servers.start(environ)
    held_again, delivered = receiver.wait_for(2)
    assert held_again == held
    assert delivered.id == held.id
    assert delivered.verified(secret)["data"]["user"]["email"] == "ann@x.io"


def test_node_standardwebhooks_verifies_a_delivery(
    tmp_path: Path, receiver: Receiver
) -> None:
    folder = node_packages(STANDARD_WEBHOOKS)
    settings = Settings.from_env(make_environ(tmp_path, **FAST_WEBHOOKS))
    with TestClient(create_app(settings)) as client:
        api = Api(client, settings.dev_api_key, settings)
        dev = Tenant.by_name("dev")
        assert dev is not None
        secret = add_webhook(settings, dev, receiver.url, [])[1]
        api.sign_up("ann@x.io", PASSWORD).ok()
        [delivery] = receiver.wait_for(1)
    close_database()
    headers = json.dumps(delivery.headers)
    verified = run_node(folder, "verify_webhook.mjs", secret, headers, delivery.body)
    assert (verified.returncode, verified.stdout.strip()) == (0, "user.created")
    tampered = delivery.body.replace("ann@x.io", "eve@x.io")
    refused = run_node(folder, "verify_webhook.mjs", secret, headers, tampered)
    assert refused.returncode == 1, refused.stdout


def webhook_add(environ: dict[str, str], tenant: str, url: str) -> str:
    """`python server.py webhook add`; the secret it prints last."""
    done = run_cli(environ, "webhook", "add", tenant, url)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]
