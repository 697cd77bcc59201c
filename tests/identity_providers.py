"""OpenID Providers on loopback for the sign-in tests: a real one (panva's
oidc-provider in Node, driven through its login and consent pages), a hostile
one that signs whatever ID token a test crafts with its own key, and one that
accepts connections and never answers.
"""

import base64
import contextlib
import hashlib
import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx2
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.node import SCRIPTS, node_packages

OIDC_PROVIDER = "oidc-provider@9.13.3"
APP_CALLBACK = "https://app.example/auth/callback"
START_SECONDS = 30.0
HTTP_SECONDS = 10.0
CLIENT_SECRET = "test-client-secret-of-the-service"
CONFIDENTIAL, PUBLIC = "user-service", "user-service-spa"
# The provider's users: who they are, and whether it vouches for their email.
ACCOUNTS = {
    "ann": {"email": "ann@x.io", "email_verified": True},
    "bob": {"email": "bob@x.io", "email_verified": True},
    "boss": {"email": "boss@acme.io", "email_verified": True},
    "eve": {"email": "victim@x.io", "email_verified": False},
    "vic": {"email": "victim@x.io", "email_verified": True},
}


@contextlib.contextmanager
def running_openid_provider() -> Iterator[str]:
    """oidc-provider on a free loopback port; yields its issuer."""
    folder = node_packages(OIDC_PROVIDER)
    config = {
        "clients": [
            {
                "client_id": CONFIDENTIAL,
                "client_secret": CLIENT_SECRET,
                "redirect_uris": [APP_CALLBACK],
            },
            {
                "client_id": PUBLIC,
                "redirect_uris": [APP_CALLBACK],
                "token_endpoint_auth_method": "none",
            },
        ],
        "accounts": ACCOUNTS,
    }
    process = subprocess.Popen(
        ["node", str(SCRIPTS / "oidc_provider.mjs"), json.dumps(config)],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        yield issuer_of(process)
    finally:
        process.kill()
        process.wait(timeout=START_SECONDS)
        assert process.stdout is not None
        process.stdout.close()


def issuer_of(process: "subprocess.Popen[str]") -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line.startswith("listening "):
            return line.split()[1]
        if not line and process.poll() is not None:
            break
    raise RuntimeError("oidc-provider did not start")


class _Form(HTMLParser):
    """The first form of a page: its action and its inputs' names and values."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "form" and self.action is None:
            self.action = named.get("action") or ""
        elif tag == "input" and named.get("name"):
            self.fields[str(named["name"])] = named.get("value") or ""


def authorize(authorization_url: str, account: str) -> dict[str, str]:
    """Go through the provider's pages as `account` would in a browser; return
    the query the provider sends back to the frontend (code, state, iss)."""
    with httpx2.Client(timeout=HTTP_SECONDS, follow_redirects=False) as browser:
        response = browser.get(authorization_url)
        for _ in range(20):
            if response.is_redirect:
                location = urljoin(str(response.url), response.headers["location"])
                if location.startswith(APP_CALLBACK):
                    query = parse_qs(urlsplit(location).query)
                    return {name: values[0] for name, values in query.items()}
                response = browser.get(location)
                continue
            assert response.status_code == 200, response.text
            form = _Form()
            form.feed(response.text)
            assert form.action is not None, response.text
            answers = {**form.fields, "login": account, "password": "any"}
            response = browser.post(
                urljoin(str(response.url), form.action), data=answers
            )
    raise AssertionError("the provider never sent the browser back")


def query_of(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass
class HostileIssuer:
    """An issuer on loopback that publishes its own key and answers every code
    with the ID token a test crafted (`claims`, `header`, `signed_with`)."""

    url: str = ""
    key: RSAKey = field(
        default_factory=lambda: RSAKey.generate_key(
            2048, parameters={"kid": "hostile-1"}, private=True
        )
    )
    claims: dict[str, Any] = field(default_factory=dict)
    header: dict[str, Any] = field(default_factory=dict)
    signed_with: RSAKey | None = None
    token_requests: list[dict[str, str]] = field(default_factory=list)
    jwks_requests: int = 0
    discovery_requests: int = 0
    # The discovery document: overrides of its fields, or a redirect elsewhere.
    metadata: dict[str, Any] = field(default_factory=dict)
    discovery_redirect: str | None = None
    # What the token endpoint answers instead of a token: status and body.
    token_answer: tuple[int, bytes] | None = None

    def id_token(self) -> str:
        header = {"alg": "RS256", "kid": self.key.kid, **self.header}
        return jwt.encode(header, self.claims, self.signed_with or self.key)

    def good_claims(self, *, client_id: str, nonce: str) -> dict[str, Any]:
        now = int(time.time())
        return {
            "iss": self.url,
            "aud": client_id,
            "sub": "hostile-subject",
            "iat": now,
            "exp": now + 300,
            "nonce": nonce,
            "email": "ann@x.io",
            "email_verified": True,
        }


def _handler(issuer: HostileIssuer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/.well-known/openid-configuration":
                issuer.discovery_requests += 1
                if issuer.discovery_redirect:
                    self.send_response(302)
                    self.send_header("location", issuer.discovery_redirect)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                self._json(
                    {
                        "issuer": issuer.url,
                        "authorization_endpoint": f"{issuer.url}/authorize",
                        "token_endpoint": f"{issuer.url}/token",
                        "jwks_uri": f"{issuer.url}/jwks",
                        **issuer.metadata,
                    }
                )
            elif self.path == "/jwks":
                issuer.jwks_requests += 1
                self._json({"keys": [issuer.key.as_dict(private=False)]})
            else:
                self.send_error(404)

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            form = parse_qs(self.rfile.read(length).decode())
            issuer.token_requests.append({k: v[0] for k, v in form.items()})
            if issuer.token_answer is not None:
                status, body = issuer.token_answer
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            token = {"access_token": "x", "token_type": "Bearer"}
            self._json({**token, "id_token": issuer.id_token()})

        def _json(self, body: dict[str, Any]) -> None:
            encoded = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(encoded)))
            self.end_headers()
            self.wfile.write(encoded)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

    return Handler


@contextlib.contextmanager
def running_hostile_issuer() -> Iterator[HostileIssuer]:
    issuer = HostileIssuer()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(issuer))
    issuer.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield issuer
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def hanging_issuer() -> Iterator[str]:
    """An issuer URL whose server accepts connections and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                accepted.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for connection in accepted:
            connection.close()
        listener.close()
