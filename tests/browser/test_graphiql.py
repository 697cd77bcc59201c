"""GraphiQL in a real browser: the page works offline and runs the whole flow.

Starts `python server.py` (development, the dev tenant), opens /graphql in
headless Chromium (Debian's `chromium`, driven by Playwright's Python package,
never `playwright install`), checks the Headers pane holds the dev key, then types
signUp, login and me into the query editor, runs them with Ctrl-Enter and the run
button, and reads the result pane. Every request the page makes must stay on the
service's loopback address: no CDN.

USER_SERVICE_UPDATE_SCREENSHOT=1 rewrites docs/graphiql.png, the screenshot kept
in the docs; otherwise the screenshot goes to the test's tmp_path.
"""

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from settings import Settings
from tests.conftest import make_environ, service_missing
from tests.servers import APP_DIR, Server, Servers

try:
    from playwright.sync_api import (
        Browser,
        ConsoleMessage,
        Locator,
        Page,
        sync_playwright,
    )
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
except ImportError:  # checked by the `browser` fixture, which skips or fails
    sync_playwright = None  # type: ignore[assignment]

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 15_000  # every wait is bounded: rendering, each run, each read
UPDATE_SCREENSHOT = os.environ.get("USER_SERVICE_UPDATE_SCREENSHOT") == "1"
DOCS_SCREENSHOT = APP_DIR / "docs" / "graphiql.png"
EMAIL = "ann@example.com"
PASSWORD = "correct-Horse-7"

QUERY_EDITOR = ".graphiql-query-editor .CodeMirror"
# Variables and Headers share the tools pane; the one not shown is `.hidden`.
TOOL_EDITOR = ".graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror"
RESULT = ".result-window .CodeMirror"
RUN_BUTTON = ".graphiql-execute-button"

SIGN_UP = f"""mutation SignUp {{
  signUp(input: {{email: "{EMAIL}", password: "{PASSWORD}"}}) {{
    id
    email
    role
  }}
}}
"""
LOGIN = f"""mutation Login {{
  login(email: "{EMAIL}", password: "{PASSWORD}") {{
    accessToken
    expiresIn
  }}
}}
"""
ME = """query Me {
  me {
    email
    role
    createdAt
  }
}
"""


@pytest.fixture
def browser() -> Iterator["Browser"]:
    if sync_playwright is None:
        service_missing(
            "the playwright package is not installed (pip install playwright)"
        )
    if not CHROMIUM.exists():
        service_missing(f"{CHROMIUM} is missing (apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=WAIT_MS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    servers = Servers()
    try:
        yield servers.start(make_environ(tmp_path, USER_SERVICE_ENV="development"))
    finally:
        servers.stop_all()


class GraphiQL:
    """The page as a person uses it: editors typed into, results read back."""

    def __init__(self, page: "Page") -> None:
        self.page = page

    def text(self, selector: str) -> str:
        """An editor's whole text, from its CodeMirror (only visible lines render)."""
        return str(self.page.locator(selector).evaluate("e => e.CodeMirror.getValue()"))

    def headers(self) -> "Locator":
        self.page.locator(".graphiql-editor-tools button", has_text="Headers").click()
        return self.page.locator(TOOL_EDITOR)

    def replace(self, editor: "Locator", text: str) -> None:
        """Select all and type `text` in one input, as a paste would.

        One insertion, not key by key: CodeMirror would close every bracket typed.
        """
        editor.click()
        self.page.keyboard.press("Control+A")
        self.page.keyboard.insert_text(text)
        typed = editor.evaluate("e => e.CodeMirror.getValue()")
        assert typed == text, f"the editor holds {typed!r}, not what was typed"

    def run(
        self, query: str, operation: str, *, with_button: bool = False
    ) -> dict[str, Any]:
        """Type `query` (one operation named `operation`), run it, return the result.

        GraphiQL parses the editor 100 ms after the last edit (debounced); run
        sooner and it sends the previous operation's name. A person is never that
        quick, a test is: so wait until GraphiQL has seen the new operation.
        """
        before = self.text(RESULT)
        editor = self.page.locator(QUERY_EDITOR)
        self.replace(editor, query)
        self.page.wait_for_function(
            """([selector, name]) =>
                document.querySelector(selector).CodeMirror.operationName === name""",
            arg=[QUERY_EDITOR, operation],
            timeout=WAIT_MS,
        )
        if with_button:
            self.page.locator(RUN_BUTTON).click()
        else:
            self.page.keyboard.press("Control+Enter")
        self.page.wait_for_function(
            """([selector, before]) => {
                const text = document.querySelector(selector).CodeMirror.getValue();
                return text.trim() !== "" && text !== before;
            }""",
            arg=[RESULT, before],
            timeout=WAIT_MS,
        )
        result: dict[str, Any] = json.loads(self.text(RESULT))
        assert not result.get("errors"), result
        data: dict[str, Any] = result["data"]
        return data


def test_graphiql_runs_sign_up_login_and_me_offline(
    browser: "Browser", server: Server, tmp_path: Path
) -> None:
    origin = f"http://127.0.0.1:{server.port}"
    dev_key = Settings.from_env(server.environ).dev_api_key
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    requests: list[str] = []
    problems: list[str] = []

    def on_console(message: "ConsoleMessage") -> None:
        # Chromium asks for /favicon.ico, which the key check refuses: harmless.
        url = message.location.get("url", "")
        if message.type == "error" and not url.endswith("/favicon.ico"):
            problems.append(f"console: {message.text} ({url})")

    context.on("request", lambda request: requests.append(request.url))
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.on("console", on_console)
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        page.goto(f"{origin}/graphql", wait_until="load")
        try:
            page.locator(QUERY_EDITOR).wait_for(state="visible")
            page.locator(RUN_BUTTON).wait_for(state="visible")
        except PlaywrightTimeout:
            pytest.fail(f"GraphiQL did not render: {problems or page.content()[:2000]}")
        graphiql = GraphiQL(page)

        # The dev key is in the Headers pane before the user types anything.
        headers = graphiql.headers()
        assert json.loads(graphiql.text(TOOL_EDITOR)) == {"X-API-Key": dev_key}

        signed_up = graphiql.run(SIGN_UP, "SignUp")["signUp"]
        assert signed_up["email"] == EMAIL
        assert signed_up["role"] == "USER"

        token = graphiql.run(LOGIN, "Login")["login"]["accessToken"]
        assert isinstance(token, str)
        assert token

        # As the first query's comment says: add the token next to the key.
        with_token = {"X-API-Key": dev_key, "Authorization": f"Bearer {token}"}
        graphiql.replace(headers, json.dumps(with_token, indent=2))
        me = graphiql.run(ME, "Me", with_button=True)["me"]
        assert me["email"] == EMAIL
        assert me["role"] == "USER"

        shot = DOCS_SCREENSHOT if UPDATE_SCREENSHOT else tmp_path / "graphiql.png"
        shot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shot))
    finally:
        context.close()

    assert not problems, problems
    assert f"{origin}/graphiql/graphiql.min.js" in requests
    # data: URLs never leave the browser; everything else must be this service.
    offsite = [
        url
        for url in requests
        if not url.startswith(f"{origin}/") and not url.startswith("data:")
    ]
    assert not offsite, f"requests beyond the service: {offsite}"
