"""The operator's webhook commands, run as real processes: `webhook add` prints
the endpoint's secret last and stores it sealed, `list` shows endpoints without
it, `remove` drops one; a bad URL, event type or tenant is one line (issue 20)."""

import base64
from pathlib import Path

import pytest

from models.db import close_database, open_database
from models.webhook import EVENT_TYPES, WebhookEndpoint
from tests.conftest import make_environ
from tests.test_cli import run_cli, run_ok
from tests.test_cli_tenants import assert_refused

URL = "https://hooks.example.com/users"


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    environ = make_environ(tmp_path)
    run_ok(environ, "tenant", "create", "acme")
    return environ


def test_webhook_add_prints_a_standard_webhooks_secret_last_and_stores_it_sealed(
    environ: dict[str, str],
) -> None:
    added = run_ok(
        environ,
        "webhook",
        "add",
        "acme",
        URL,
        "--event",
        "user.created",
        "--event",
        "user.deleted",
    ).stdout
    secret = added.strip().splitlines()[-1]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    listed = run_ok(environ, "webhook", "list", "acme").stdout
    assert URL in listed
    assert "user.created user.deleted" in listed
    assert secret not in listed
    open_database(environ["USER_SERVICE_DATABASE_URL"])
    try:
        [endpoint] = WebhookEndpoint.select()
        assert secret.removeprefix("whsec_") not in endpoint.sealed_secret
    finally:
        close_database()


def test_webhook_add_without_an_event_wants_every_event_type(
    environ: dict[str, str],
) -> None:
    run_ok(environ, "webhook", "add", "acme", URL)
    assert " ".join(EVENT_TYPES) in run_ok(environ, "webhook", "list", "acme").stdout


def test_webhook_remove_drops_the_endpoint_once(environ: dict[str, str]) -> None:
    run_ok(environ, "webhook", "add", "acme", URL)
    endpoint_id = run_ok(environ, "webhook", "list", "acme").stdout.splitlines()[1]
    endpoint_id = endpoint_id.split()[0]
    assert run_ok(environ, "webhook", "remove", endpoint_id).stdout.strip() == (
        f"removed webhook endpoint {endpoint_id}"
    )
    assert URL not in run_ok(environ, "webhook", "list", "acme").stdout
    assert_refused(
        run_cli(environ, "webhook", "remove", endpoint_id), "no webhook endpoint"
    )


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        (["acme", "ftp://hooks.example.com/x"], "http:// or https://"),
        (["acme", "file:///etc/passwd"], "http:// or https://"),
        (["acme", "https://"], "http:// or https://"),
        (["acme", URL, "--event", "user.exploded"], "no event type 'user.exploded'"),
    ],
    ids=["ftp URL", "file URL", "no host", "unknown event type"],
)
def test_webhook_add_refuses_a_url_or_event_type_in_one_line(
    environ: dict[str, str], arguments: list[str], named: str
) -> None:
    assert_refused(run_cli(environ, "webhook", "add", *arguments), named, returncode=2)
    assert "acme" in run_ok(environ, "tenant", "list").stdout


def test_webhook_commands_of_an_unknown_tenant_are_refused(
    environ: dict[str, str],
) -> None:
    for action in (["add", "nobody", URL], ["list", "nobody"]):
        assert_refused(run_cli(environ, "webhook", *action), "no tenant named 'nobody'")
