"""Passkeys in a real browser: register, log in with an email, log in
discoverably, remove.

Starts `python server.py` (development, the dev tenant), sets the tenant's
relying party with `server.py tenant set` while it runs, and serves a small page
(tests/browser/passkeys.html) on http://localhost:<port> that calls the
service's GraphQL API across origins (USER_SERVICE_CORS_ORIGINS). Headless
Chromium (Debian's `chromium`, driven by Playwright's Python package, never
`playwright install`) answers navigator.credentials with a CDP virtual
authenticator: CTAP2, internal, resident keys, user verification.
"""

import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from settings import Settings
from tests.browser.test_graphiql import WAIT_MS, browser
from tests.conftest import PASSWORD, make_environ
from tests.servers import Server, Servers, free_port, run_cli

__all__ = ["browser"]  # the fixture, shared with the GraphiQL test

if TYPE_CHECKING:  # the `browser` fixture skips or fails without Playwright
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.slow

PAGE = Path(__file__).with_name("passkeys.html")
EMAIL = "ann@example.com"
VIRTUAL_AUTHENTICATOR = {
    "protocol": "ctap2",
    "transport": "internal",
    "hasResidentKey": True,
    "hasUserVerification": True,
    "isUserVerified": True,
    "automaticPresenceSimulation": True,
}


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def page_port() -> Iterator[int]:
    """The page's folder served on localhost; its port."""
    handler = partial(Quiet, directory=str(PAGE.parent))
    site = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=site.serve_forever, daemon=True)
    thread.start()
    try:
        yield site.server_address[1]
    finally:
        site.shutdown()
        site.server_close()


@pytest.fixture
def server(tmp_path: Path, page_port: int) -> Iterator[Server]:
    origin = f"http://localhost:{page_port}"
    environ = make_environ(
        tmp_path, USER_SERVICE_ENV="development", USER_SERVICE_CORS_ORIGINS=origin
    )
    servers = Servers()
    try:
        yield servers.start(environ)
    finally:
        servers.stop_all()


def call(page: "Page", function: str, *args: object) -> Any:
    """Await one of the page's functions with these arguments."""
    return page.evaluate(f"(args) => {function}(...args)", list(args))


def test_a_passkey_registers_logs_in_and_is_removed_in_chromium(
    browser: "Browser", server: Server, page_port: int
) -> None:
    origin = f"http://localhost:{page_port}"
    done = run_cli(
        server.environ,
        "tenant",
        "set",
        "dev",
        "--webauthn-rp-id",
        "localhost",
        "--webauthn-origin",
        origin,
    )
    assert done.returncode == 0, done.stderr
    api = server.dev
    api.sign_up(EMAIL, PASSWORD).ok()
    token = api.token(EMAIL, PASSWORD)

    context = browser.new_context()
    problems: list[str] = []
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.on("pageerror", lambda error: problems.append(str(error)))
        cdp = context.new_cdp_session(page)
        cdp.send("WebAuthn.enable")
        added = cdp.send(
            "WebAuthn.addVirtualAuthenticator", {"options": VIRTUAL_AUTHENTICATOR}
        )
        key = Settings.from_env(server.environ).dev_api_key
        api_url = f"http://127.0.0.1:{server.port}/graphql"
        page.goto(f"{origin}/{PAGE.name}?api={api_url}&key={key}")

        passkey = call(page, "addPasskey", token, "Virtual authenticator")
        assert passkey["name"] == "Virtual authenticator"
        stored = cdp.send(
            "WebAuthn.getCredentials", {"authenticatorId": added["authenticatorId"]}
        )["credentials"]
        assert [credential["isResidentCredential"] for credential in stored] == [True]

        with_email = call(page, "logInWithPasskey", EMAIL)
        assert with_email["user"] == {"email": EMAIL}
        assert api.me(with_email["accessToken"]).ok()["me"]["email"] == EMAIL
        discoverable = call(page, "logInWithPasskey", None)
        assert discoverable["user"] == {"email": EMAIL}

        assert call(page, "removePasskey", token, passkey["id"]) is True
        with pytest.raises(Exception, match="UNAUTHENTICATED"):
            call(page, "logInWithPasskey", None)
    finally:
        context.close()
    assert not problems, problems
